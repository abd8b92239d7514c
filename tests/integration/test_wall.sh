# Wall mode (KILN_MODE=wall): every thread, running or blocked, with the
# stack it runs or waits in; waits end in "[wait: SYSCALL]"; shares of
# programs whose waiting is known by construction; no EINTR; idle threads
# cost little; a real server unchanged; perf's view of the same waits.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/cpu_lib.sh"
export KILN_QUIET=1

# share FILE WHOLE PART: percentage of the counts of lines matching WHOLE
# that also match PART (the thread's time spent there).
share() {
  awk -v w="$2" -v p="$3" '{ n = $NF; s = $0; sub(/ [0-9]+$/, "", s); if (s ~ w) { t += n; if (s ~ p) m += n } }
    END { if (t == 0) print "nan"; else printf "%.1f\n", 100 * m / t }' "$1"
}
# count FILE REGEX: the counts of the lines matching REGEX.
count() {
  awk -v re="$2" '{ n = $NF; s = $0; sub(/ [0-9]+$/, "", s); if (s ~ re) m += n } END { print m + 0 }' "$1"
}
# measured STDERR_FILE: the waiting share the example measured itself.
measured() { sed -n 's/.*measured waiting share \([0-9.]*\)%.*/\1/p' "$1" | head -n 1; }

# 1. split: a thread computes 10 ms, then polls 10 ms. The example clocks
# its phases (on a loaded machine the ideal 50/50 moves: a wake-up can
# wait for a CPU); kiln's wait share is within 5 points of that, and the
# whole thread is there: its samples add up to its wall time. At 250 Hz,
# where looks are close enough to tell a wake-up from a preemption.
for bin in wall_waits wall_waits.fp; do
  d="$T/split-$bin"
  KILN_MODE=wall KILN_WALL_HZ=250 run_pair "$bin split" "$d" "$EX/$bin" split 2
  f=$(one "$d/$bin.*.wall.folded")
  m=$(measured "$ERR")
  got=$(share "$f" ";split_worker;" ";split_worker;wait_phase;")
  if [ -n "$m" ] && within "$got" "$m" 5; then
    pass "$bin split: waiting $got% of split_worker (it measured $m%; 50% unloaded)"
  else fail "$bin split: waiting share" "kiln $got%, measured ${m:-none}"; fi
  poll=$(count "$f" ";split_worker;wait_phase;poll;\\[wait: poll\\]$")
  work=$(count "$f" ";split_worker;spin_for(;[^[]*)?$")
  if [ "$poll" -gt 0 ] && [ "$work" -gt 0 ]; then
    pass "$bin split: blocked stack ends in [wait: poll] ($poll), running ones as in the CPU profile ($work)"
  else fail "$bin split: stack shapes" "poll $poll, running $work"; fi
  worker=$(count "$f" ";split_worker;") main=$(count "$f" "^_start;.*;main;main_sleep;")
  if within "$worker" 500 50 && within "$main" 500 50; then
    pass "$bin split: both threads whole: worker $worker, main $main samples of 500 (2 s at 250 Hz)"
  else fail "$bin split: samples per thread" "worker $worker, main $main, expected 500 each"; fi
  sleep_share=$(share "$f" "^_start;.*;main;" "main_sleep;nanosleep;clock_nanosleep;\\[wait: clock_nanosleep\\]$")
  if within "$sleep_share" 100 10; then pass "$bin split: main thread in nanosleep: $sleep_share% [wait: clock_nanosleep]"
  else fail "$bin split: main thread sleeping" "$sleep_share%"; fi
done

# 2. A producer sleeps 4 ms, then hands an item to a consumer through a
# condition variable; the consumer computes 1 ms on it: it waits in futex
# about 75% of the time, the producer sleeps nearly all of it.
for bin in wall_waits wall_waits.fp; do
  d="$T/condvar-$bin"
  KILN_MODE=wall KILN_WALL_HZ=250 run_pair "$bin condvar" "$d" "$EX/$bin" condvar 2
  f=$(one "$d/$bin.*.wall.folded")
  m=$(measured "$ERR")
  got=$(share "$f" ";consumer;" ";consumer;pthread_cond_wait;")
  if [ -n "$m" ] && within "$got" "$m" 5; then
    pass "$bin condvar: consumer waiting $got% (it measured $m%)"
  else fail "$bin condvar: consumer's waiting share" "kiln $got%, measured ${m:-none}"; fi
  fut=$(count "$f" ";consumer;pthread_cond_wait;.*\\[wait: futex\\]$")
  [ "$fut" -gt 0 ] && pass "$bin condvar: the consumer's wait ends in [wait: futex] ($fut)" ||
    fail "$bin condvar: [wait: futex]" "none"
  got=$(share "$f" ";producer;" ";producer;produce_pause;nanosleep;clock_nanosleep;\\[wait: (clock_nanosleep|cpu)\\]$")
  if within "$got" 100 8; then pass "$bin condvar: producer sleeping $got% (about 98% by construction)"
  else fail "$bin condvar: producer's sleeping share" "$got%"; fi
done

# 3. 200 threads idle for the whole run (100 on a condition variable, 100
# in epoll_wait): each one's wait is whole; the CPU they cost kiln is
# reported (exact CPU time, so a bound far above it is safe to assert).
d="$T/idle"
KILN_MODE=wall run_pair "idle 200 threads" "$d" "$EX/wall_waits" idle 1 200
f=$(one "$d/wall_waits.*.wall.folded")
cond=$(count "$f" ";idle_on_cond;pthread_cond_wait;.*\\[wait: futex\\]$")
ep=$(count "$f" ";idle_in_epoll;epoll_wait;\\[wait: epoll_wait\\]$")
if within "$cond" 9900 500 && within "$ep" 9900 500; then
  pass "idle: 100 threads x 1 s x 99 Hz in each wait: futex $cond, epoll_wait $ep (9900 each)"
else fail "idle: idle threads' samples" "futex $cond, epoll_wait $ep, expected 9900 each"; fi
m=$(one "$d/wall_waits.*.meta.json")
wall_cpu=$(meta_field "$m" profiler_cpu_seconds)
wall_proc=$(sed -n 's/.*cpu_seconds //p' "$ERR")
d2="$T/idle-cpu"
mkdir -p "$d2"
KILN_MODE=cpu KILN_OUT="$d2" LD_PRELOAD="$LIBKILN" "$EX/wall_waits" idle 1 200 >/dev/null 2>"$T/idle-cpu.err"
cpu_cpu=$(meta_field "$(one "$d2/wall_waits.*.meta.json")" profiler_cpu_seconds)
cpu_proc=$(sed -n 's/.*cpu_seconds //p' "$T/idle-cpu.err")
plain_proc=$("$EX/wall_waits" idle 1 200 2>&1 >/dev/null | sed -n 's/.*cpu_seconds //p')
probes=$(meta_field "$m" wall_probes)
if awk -v w="$wall_cpu" 'BEGIN { exit !(w < 0.5) }'; then
  pass "idle: 1 s, 200 idle threads: kiln's thread used $wall_cpu s of CPU in wall mode, $cpu_cpu s in cpu mode; the process $wall_proc s, $cpu_proc s, $plain_proc s without kiln ($probes /proc looks)"
else fail "idle: profiler CPU" "$wall_cpu s in wall mode (cpu mode $cpu_cpu s)"; fi

# 4. The EINTR storm (blocking calls SA_RESTART does not restart, in tight
# loops) under wall mode: no signal is sent, the program sees no EINTR.
d="$T/eintr"
KILN_MODE=wall run_pair "eintr_storm in wall mode: no EINTR" "$d" "$EX/eintr_storm" 1
f=$(one "$d/eintr_storm*.wall.folded")
n=$(grep -c '\[wait: ' "$f")
[ "$n" -ge 5 ] && pass "eintr_storm: $n waiting stacks ($(grep -o '\[wait: [a-z_0-9]*\]' "$f" | sort -u | tr '\n' ' '))" ||
  fail "eintr_storm: waiting stacks" "$n"

# Workers that block every signal, a main thread reading SIGPROF from a
# signalfd, files opened up to RLIMIT_NOFILE 32: no signal reaches it, it
# opens as many files and sees as many descriptors as without kiln.
KILN_MODE=wall run_pair "sigblock_threads in wall mode: no signal, no descriptor of kiln's" "$T/sigblock" \
  "$EX/sigblock_threads"

# 5. Threads blocked before the profiler started (a program that calls
# kiln_start late): no switch of theirs was ever seen, they are found.
d="$T/late"
mkdir -p "$d"
out=$("$EX/wall_late" "$d" 2>"$T/late.err")
check_eq "wall_late: runs as without kiln" "wall_late: ok" "$out"
f=$(one "$d/wall_late.*.wall.folded")
r=$(count "$f" ";blocked_reader;read;\\[wait: read\\]$") w=$(count "$f" ";blocked_waiter;pthread_cond_wait;.*\\[wait: futex\\]$")
if [ "$r" -ge 30 ] && [ "$w" -ge 30 ]; then
  pass "wall_late: waits begun before the start: [wait: read] $r, [wait: futex] $w samples (0.6 s: 59 at most)"
else fail "wall_late: early waits" "read $r, futex $w"; fi

# 6. cpu,wall: both profiles; the running part of wall is the CPU profile
# at the wall rate.
d="$T/both"
KILN_MODE=cpu,wall KILN_HZ=999 run_pair "cpu,wall split" "$d" "$EX/wall_waits" split 1
fc=$(one "$d/wall_waits.*.cpu.folded") fw=$(one "$d/wall_waits.*.wall.folded")
c=$(count "$fc" ";split_worker;") r=$(awk '$0 ~ /;split_worker;/ && $0 !~ /\[wait: / { s += $NF } END { print s + 0 }' "$fw")
exp=$(awk -v c="$c" 'BEGIN { printf "%d", c * 99 / 999 }')
if [ -n "$fc" ] && within "$r" "$exp" $((exp / 10 + 2)); then
  pass "cpu,wall: worker's running wall samples $r = its CPU samples $c x 99/999 ($exp)"
else fail "cpu,wall: running samples" "wall $r vs cpu $c (expected $exp)"; fi
grep -q '"mode": "cpu,wall"' "$(one "$d/wall_waits.*.meta.json")" && pass "cpu,wall: meta mode" ||
  fail "cpu,wall: meta mode" "$(grep '"mode"' "$d"/*.meta.json)"

# 7. A bad KILN_WALL_HZ: one line, the program runs unprofiled.
out=$(KILN_WALL_HZ=5000 KILN_MODE=wall KILN_OUT="$T/bad" LD_PRELOAD="$LIBKILN" "$EX/wall_waits" split 0.1 2>"$T/bad.err")
if [ "$out" = "split: done, eintr 0" ] && grep -q '^kiln: KILN_WALL_HZ=5000: expected' "$T/bad.err" && [ ! -e "$T/bad" ]; then
  pass "KILN_WALL_HZ=5000: one kiln: line, program unchanged"
else fail "bad KILN_WALL_HZ" "$(cat "$T/bad.err")"; fi

# 8. Unprivileged (perf_event_paranoid 2: no kernel samples): the waits
# come from /proc, which a process may read of its own threads.
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
  # A directory of its own, as $T is root's alone.
  d=$(mktemp -d "${TMPDIR:-/tmp}/kiln-wall-nobody.XXXXXX")
  chmod 777 "$d"
  setpriv --reuid=nobody --regid=nogroup --clear-groups \
    env KILN_MODE=wall KILN_OUT="$d" LD_PRELOAD="$LIBKILN" "$EX/wall_waits" split 1 >/dev/null 2>"$T/nobody.err"
  f=$(one "$d/wall_waits.*.wall.folded")
  p=$(count "$f" ";split_worker;wait_phase;poll;\\[wait: poll\\]$")
  if [ "$p" -gt 0 ] && ! grep -q 'wall:' "$T/nobody.err"; then
    pass "unprivileged (uid nobody, perf_event_paranoid $(cat /proc/sys/kernel/perf_event_paranoid)): [wait: poll] $p samples, no warning"
  else fail "unprivileged wall mode" "poll $p; $(cat "$T/nobody.err")"; fi
  rm -rf "$d"
fi

# 9. A real server: redis-server on loopback under a small load, in wall
# mode: the clients' output and its exit status are unchanged, and its
# event loop's wait (epoll_wait in aeMain) is in the profile.
if command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null; then
  redis_run() { # DIR PRELOAD: prints the clients' output; the server's status in $T/redis.rc
    local port; port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    mkdir -p "$1"
    env KILN_MODE=wall KILN_OUT="$1" LD_PRELOAD="$2" redis-server --port "$port" --bind 127.0.0.1 --save "" \
      --appendonly no --dir "$1" --logfile "$1/redis.log" --loglevel warning &
    local pid=$! i
    for i in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
    redis-benchmark -p "$port" -n 3000 -c 4 -t set,get -q >/dev/null 2>&1
    redis-cli -p "$port" set wall kiln; redis-cli -p "$port" get wall; redis-cli -p "$port" dbsize
    sleep 0.5
    redis-cli -p "$port" shutdown nosave >/dev/null 2>&1
    wait "$pid"; echo $? >"$T/redis.rc"
  }
  plain=$(redis_run "$T/redis-plain" "")
  plain_rc=$(cat "$T/redis.rc")
  prof=$(redis_run "$T/redis-wall" "$LIBKILN")
  prof_rc=$(cat "$T/redis.rc")
  check_eq "redis-server in wall mode: same client output and exit status ($plain_rc)" "$plain/$plain_rc" "$prof/$prof_rc"
  f=$(one "$T/redis-wall/redis-server.*.wall.folded")
  ep=$(share "$f" "^" "aeMain;.*epoll_wait;\\[wait: epoll_wait\\]$")
  bg=$(grep -c 'bioProcessBackgroundJobs;.*\[wait: futex\]' "$f")
  if awk -v e="$ep" 'BEGIN { exit !(e > 5) }' && [ "$bg" -gt 0 ]; then
    pass "redis-server: event loop waiting in epoll_wait ($ep% of all threads' time), background threads in futex"
  else fail "redis-server: wait stacks" "epoll_wait $ep%, bio futex stacks $bg"; fi
fi

# 10. perf's view of the same run: perf trace's per-thread summary of
# system call times; the worker's poll time as a share of its life is
# kiln's [wait: poll] share (kiln's [wait: cpu] after a wake-up included,
# as perf counts a call until it returns). Only poll is traced: tracing
# every call slows kiln's own looks (clock reads, /proc) as well.
if [ "$(id -u)" = 0 ] && command -v perf >/dev/null; then
  d="$T/peer"
  mkdir -p "$d"
  perf trace -s -e poll -o "$T/trace.txt" -- env KILN_MODE=wall KILN_WALL_HZ=250 KILN_OUT="$d" LD_PRELOAD="$LIBKILN" \
    "$EX/wall_waits" split 2 >/dev/null 2>&1
  f=$(one "$d/wall_waits.*.wall.folded")
  if [ -n "$f" ] && [ -s "$T/trace.txt" ]; then
    # The worker is the thread whose poll calls take the time.
    pt=$(awk '$1 == "poll" && $4 + 0 > best { best = $4 } END { printf "%.1f\n", best / 20 }' "$T/trace.txt")
    k=$(share "$f" ";split_worker;" ";split_worker;wait_phase;poll;")
    if within "$k" "$pt" 5; then pass "perf trace agrees: worker in poll $pt% of 2 s, kiln $k%"
    else fail "perf trace: poll share" "perf $pt%, kiln $k%"; fi
  fi
fi
