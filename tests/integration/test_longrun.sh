# Long-running programs under the preload: interval sets that add up,
# on-demand dumps, profiles on _exit and fatal signals (status, signal and
# the program's handler unchanged), kill -9, the health report, pprof.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/cpu_lib.sh"
export KILN_QUIET=1
ulimit -c 0
PPROF="$B/pprof"

# tgkill_collector PID SIG: the dump signal to kiln's own thread only.
tgkill_collector() {
  local tid i
  # kiln's thread may not be there yet on a busy machine: wait for it.
  for i in $(seq 1 100); do
    tid=$(grep -l '^kiln-collector$' /proc/"$1"/task/*/comm 2>/dev/null | head -n 1 | cut -d/ -f5)
    [ -n "$tid" ] && break
    sleep 0.05
  done
  [ -n "$tid" ] || return 1
  /usr/bin/python3 -c "import ctypes,sys; sys.exit(ctypes.CDLL(None).syscall(234, $1, $tid, $2) != 0)"
}
# set_ok DIR META: every file the meta lists exists, and folded ones parse.
set_ok() {
  local f
  for f in $(sed -n 's/.*"files": \[\(.*\)\].*/\1/p' "$2" | tr -d '",'); do
    [ -f "$1/$f" ] || return 1
    case $f in *.folded) grep -qvE '^.+ [0-9]+$' "$1/$f" && return 1 ;; esac
  done
  return 0
}
sum_kind() { cat "$@" 2>/dev/null | awk '{ t += $NF } END { print t + 0 }'; }
# exit_file DIR KIND: the untagged (whole-run) file of that kind.
exit_file() { ls "$1"/*."$2".folded | grep -v 'Z-[0-9]*\.' | head -n 1; }

# Intervals: cpu,alloc, 1 s, a 4 s server run.
d="$T/interval"
KILN_MODE=cpu,alloc KILN_INTERVAL=1 run_pair "server with KILN_INTERVAL=1" "$d" "$EX/server" 4
n=$(ls "$d"/server.*.*T*Z-*.meta.json 2>/dev/null | wc -l)
[ "$n" -ge 4 ] && pass "interval: $n sets for a 4 s run (the last at exit)" || fail "interval: sets" "$n"
bad=0; for m in "$d"/server.*T*Z-*.meta.json; do set_ok "$d" "$m" || bad=$((bad + 1)); done
check_eq "interval: every set whole (meta lists only files that exist and parse)" 0 "$bad"
check_eq "interval: CPU deltas add up to the exit total" "$(sum_kind "$(exit_file "$d" cpu)")" \
  "$(sum_kind "$d"/server.*T*Z-*.cpu.folded)"
check_eq "interval: allocation deltas add up to the exit total" "$(sum_kind "$(exit_file "$d" alloc_count)")" \
  "$(sum_kind "$d"/server.*T*Z-*.alloc_count.folded)"
mem=$(for m in $(ls "$d"/server.*T*Z-*.meta.json | sort); do sed -n 's/.*"profiler_memory_bytes": \([0-9]*\).*/\1/p' "$m"; done)
spread=$(echo "$mem" | tail -n +2 | awk 'NR == 1 { lo = hi = $1 } { if ($1 < lo) lo = $1; if ($1 > hi) hi = $1 } END { printf "%.3f", (hi - lo) / (lo ? lo : 1) }')
within "$spread" 0 0.05 && pass "interval: profiler memory flat after the first interval (spread $spread)" ||
  fail "interval: profiler memory grows" "$(echo $mem)"
grep -q '"interval_mode": "delta"' "$(ls "$d"/server.*T*Z-0001.meta.json)" && pass "interval: delta mode by default" ||
  fail "interval: mode" "not delta"
if [ -x "$PPROF" ]; then
  m=$(ls "$d"/server.*T*Z-0002.cpu.pb.gz); f=${m%.cpu.pb.gz}.cpu.folded
  tot=$("$PPROF" -top -sample_index=samples "$m" 2>/dev/null | sed -n 's/.*of \([0-9]*\) total.*/\1/p' | head -n 1)
  check_eq "interval: pprof of a set read by pprof, same total as its folded file" "$(sum_kind "$f")" "$tot"
  "$PPROF" -top -sample_index=inuse_space "$(ls "$d"/server.*T*Z-0002.heap.pb.gz)" >/dev/null 2>&1 &&
    pass "interval: heap pprof read by pprof" || fail "interval: heap pprof" "pprof failed"
else
  fail "interval: pprof" "build/pprof missing"
fi
KILN_MODE=cpu KILN_INTERVAL=1 KILN_INTERVAL_MODE=cumulative run_pair "server, cumulative intervals" "$T/cum" "$EX/server" 3
last=$(ls "$T"/cum/server.*T*Z-*.cpu.folded | sort | tail -n 1)
check_eq "interval (cumulative): the last set holds the whole run" "$(sum_kind "$(exit_file "$T/cum" cpu)")" "$(sum_kind "$last")"

# On-demand: the dump signal to kiln's thread while workers are in malloc
# and a reader is blocked in read(2): sets written, no EINTR, same output.
d="$T/ondemand"
want=$("$EX/server" 5 2>/dev/null)
out=$(KILN_MODE=cpu,alloc KILN_DUMP_SIGNAL=USR2 KILN_OUT=$d LD_PRELOAD=$LIBKILN "$EX/server" 5 2>/dev/null &
      pid=$!; sleep 0.6; for i in 1 2 3; do tgkill_collector $pid 12; sleep 0.5; done; wait $pid)
check_eq "dump signal: output unchanged (no EINTR in the program)" "$want" "$out"
check_eq "dump signal: one set per signal" 3 "$(grep -l '"dump_reason": "signal"' "$d"/*.meta.json 2>/dev/null | wc -l)"
bad=0; for m in "$d"/server.*T*Z-*.meta.json; do set_ok "$d" "$m" || bad=$((bad + 1)); done
check_eq "dump signal: sets whole" 0 "$bad"
# A program that handles the signal itself keeps it.
KILN_DUMP_SIGNAL=SEGV KILN_QUIET= run_pair "KILN_DUMP_SIGNAL=SEGV refused" "$T/badsig" "$EX/cpu_split" 2
grep -q "^kiln: KILN_DUMP_SIGNAL=SEGV" "$ERR" && pass "KILN_DUMP_SIGNAL=SEGV: one kiln: line" || fail "bad dump signal" "$(cat "$ERR")"

# Endings: _exit, SIGSEGV with the program's handler, plain SIGSEGV, abort.
for mode in _exit segv segv-plain abort; do
  d="$T/end-$mode"
  run_pair "crasher $mode: status unchanged" "$d" "$EX/crasher" $mode
  "$EX/crasher" $mode 2>"$T/plain.err" >/dev/null
  KILN_OUT="$T/end2-$mode" LD_PRELOAD=$LIBKILN "$EX/crasher" $mode 2>"$T/kiln.err" >/dev/null
  check_eq "crasher $mode: program's stderr unchanged" "$(cat "$T/plain.err")" "$(grep -v '^kiln:' "$T/kiln.err")"
  m=$(one "$d/crasher.*.meta.json")
  reason=$([ $mode = _exit ] && echo _exit || echo exit-signal)
  grep -q "\"dump_reason\": \"$reason\"" "$m" 2>/dev/null && pass "crasher $mode: profile written ($reason)" ||
    fail "crasher $mode: profile" "$(cat "$m" 2>/dev/null | head -3)"
  share_ok "crasher $mode: the work before the end is in it" "$(one "$d/crasher.*.cpu.folded")" "main;crunch$" 100 2
done

# kill -9 with intervals: what was written is whole and readable.
d="$T/killed"
KILN_MODE=cpu,alloc KILN_INTERVAL=1 KILN_OUT=$d LD_PRELOAD=$LIBKILN "$EX/server" 20 >/dev/null 2>&1 &
# Killed once two sets are there (however loaded the machine), mid-run.
pid=$!
for i in $(seq 300); do [ "$(ls "$d"/*.meta.json 2>/dev/null | wc -l)" -ge 2 ] && break; sleep 0.1; done
kill -9 $pid; wait $pid 2>/dev/null
n=$(ls "$d"/*.meta.json 2>/dev/null | wc -l)
[ "$n" -ge 2 ] && pass "kill -9: $n interval sets survive" || fail "kill -9: sets" "$n"
bad=0; for m in "$d"/*.meta.json; do set_ok "$d" "$m" || bad=$((bad + 1)); done
check_eq "kill -9: every set whole" 0 "$bad"
[ -x "$PPROF" ] && "$PPROF" -top "$(ls "$d"/*.cpu.pb.gz | sort | tail -n 1)" >/dev/null 2>&1 &&
  pass "kill -9: the last interval's pprof reads" || fail "kill -9: pprof" "unreadable"

# Health: a module without frame pointers under fp; another SIGPROF
# handler; another allocator.
KILN_UNWIND=fp run_pair "health: fp on a no-FP binary" "$T/h1" "$EX/shapes"
grep -q '"shapes: [0-9]*% of stacks end here: build it with -fno-omit-frame-pointer' "$(one "$T/h1/shapes.*.meta.json")" &&
  pass "health: names the module without frame pointers, with the hint" || fail "health: fp hint" "$(grep -A8 health "$(one "$T/h1/shapes.*.meta.json")")"
# (With the perf timer kiln sends no SIGPROF and samples on: the warning
# is for the signal timers.)
KILN_TIMER=posix run_pair "health: own SIGPROF handler" "$T/h2" "$EX/own_sigprof"
grep -q 'another SIGPROF handler' "$(one "$T/h2/own_sigprof.*.meta.json")" && pass "health: warns about another SIGPROF handler" ||
  fail "health: SIGPROF warning" "missing"
KILN_MODE=alloc run_pair "health: jemalloc" "$T/h3" "$EX/allocator_check.jemalloc"
grep -q 'another allocator: libjemalloc' "$(one "$T/h3/allocator_check*.meta.json")" && pass "health: names another allocator" ||
  fail "health: allocator" "missing"
run_pair "health: a clean run" "$T/h4" "$EX/cpu_split" 10
grep -q '"warnings": \[\]' "$(one "$T/h4/cpu_split.*.meta.json")" && pass "health: no warning on a healthy run" ||
  fail "health: clean run" "$(grep -A8 health "$(one "$T/h4/cpu_split.*.meta.json")")"

# Bad values.
for bad in KILN_INTERVAL=0 KILN_INTERVAL=abc KILN_INTERVAL_MODE=sometimes KILN_DUMP_SIGNAL=KILL; do
  ( export "$bad" KILN_QUIET=; run_pair "bad $bad" "$T/bad" "$EX/cpu_split" 2 >"$T/o"; cp "$ERR" "$T/e" ); cat "$T/o"
  grep -q "^kiln: ${bad%%=*}=" "$T/e" && pass "bad $bad: one kiln: line" || fail "bad $bad" "$(cat "$T/e")"
done
