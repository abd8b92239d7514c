# Exit signals (SIGINT, SIGTERM, SIGHUP, SIGQUIT) at their default action:
# the profile is written (dump_reason exit-signal) and the process ends as
# the signal would (status, core flag); a handler or SIG_IGN of the
# program's stays its own; `kiln record` forwards the signal and reports.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/cpu_lib.sh"
export KILN_QUIET=1
PY=/usr/bin/python3

# meta_has DIR GLOB TEXT: the meta file of GLOB in DIR contains TEXT.
meta_has() { grep -q "$3" "$(one "$1/$2.*.meta.json")" 2>/dev/null; }
# profile_ok NAME DIR PROG SIG: PROG's exit-signal profile with samples.
profile_ok() {
  local m f
  m=$(one "$2/$3.*.meta.json"); f=$(one "$2/$3.*.cpu.folded")
  if [ -n "$m" ] && grep -q '"dump_reason": "exit-signal"' "$m" && grep -q "\"fatal_signal\": $4," "$m" &&
     [ -s "$f" ]; then
    pass "$1: profile written (exit-signal $4, $(folded_total "$f") samples)"
  else
    fail "$1: profile" "$(ls "$2" 2>/dev/null | tr '\n' ' ') $(grep -E 'reason|fatal' "$m" 2>/dev/null | tr -d '\n')"
  fi
}

# timeout(1) sends SIGTERM: status 124 as unprofiled, 143 with --preserve-status.
d="$T/timeout"
KILN_OUT=$d LD_PRELOAD=$LIBKILN timeout 1 "$EX/cpu_split" 200 >/dev/null 2>&1; rc=$?
check_eq "timeout 1: timeout's status unchanged" 124 "$rc"
profile_ok "timeout 1" "$d" cpu_split 15
grep -q 'main;work60;spin' "$(one "$d/cpu_split.*.cpu.folded")" && pass "timeout 1: the work is in it" ||
  fail "timeout 1: stacks" "$(head -3 "$(one "$d/cpu_split.*.cpu.folded")")"
d="$T/timeout-ps"
KILN_OUT=$d LD_PRELOAD=$LIBKILN timeout --preserve-status 1 "$EX/cpu_split" 200 >/dev/null 2>&1; rc=$?
check_eq "timeout --preserve-status: killed by SIGTERM (143)" 143 "$rc"

# waitstatus: runs ARGS with SIGINT/SIGQUIT at their default and core dumps
# allowed, sends SIG after DELAY s, prints "signal N core C" or "exit N".
waitstatus() {
  local sig=$1 delay=$2; shift 2
  (cd "$T" && "$PY" - "$sig" "$delay" "$@" <<'EOF'
import os, resource, signal, subprocess, sys, time
sig, delay, argv = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3:]
def pre():
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
p = subprocess.Popen(argv, preexec_fn=pre, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
time.sleep(delay)
os.kill(p.pid, sig)
_, st = os.waitpid(p.pid, 0)
if os.WIFSIGNALED(st):
    print("signal %d core %d" % (os.WTERMSIG(st), 1 if os.WCOREDUMP(st) else 0))
else:
    print("exit %d" % os.WEXITSTATUS(st))
EOF
  ) 2>&1; rm -f "$T"/core*
}

# kill -INT / -TERM / -HUP / -QUIT: the same end as unprofiled, core flag too.
for s in INT:2 TERM:15 HUP:1 QUIT:3; do
  name=${s%%:*} num=${s##*:}
  want=$(waitstatus "$num" 0.5 "$EX/cpu_split" 200)
  d="$T/kill-$name"
  got=$(KILN_OUT=$d LD_PRELOAD=$LIBKILN waitstatus "$num" 0.8 "$EX/cpu_split" 200)
  check_eq "kill -$name: ends as unprofiled ($want)" "$want" "$got"
  profile_ok "kill -$name" "$d" cpu_split "$num"
done

# A program with threads, the signal landing on any of them.
d="$T/threads"
got=$(KILN_OUT=$d LD_PRELOAD=$LIBKILN waitstatus 15 0.8 "$EX/threads" 4000000000)
check_eq "kill -TERM, threaded program: killed by it" "signal 15 core 0" "$got"
profile_ok "kill -TERM, threaded program" "$d" threads 15

# Allocation profiling alone (no collector thread): written by the
# signal's thread in emergency mode.
d="$T/alloc-only"
got=$(KILN_MODE=alloc KILN_OUT=$d LD_PRELOAD=$LIBKILN waitstatus 2 0.8 "$EX/server" 20)
check_eq "kill -INT, KILN_MODE=alloc: killed by it" "signal 2 core 0" "$got"
m=$(one "$d/server.*.meta.json")
if grep -q '"dump_reason": "exit-signal"' "$m" 2>/dev/null && [ -s "$(one "$d/server.*.alloc_bytes.folded")" ]; then
  pass "kill -INT, KILN_MODE=alloc: allocation profile written"
else fail "kill -INT, KILN_MODE=alloc: profile" "$(ls "$d" 2>/dev/null)"; fi

# Python re-raises SIGINT with its default action after KeyboardInterrupt.
if [ -x "$PY" ]; then
  d="$T/py"
  run_pair "python KeyboardInterrupt" "$d" "$PY" -c 'import time
t = time.time()
while time.time() - t < 0.3: pass
raise KeyboardInterrupt'
  check_eq "python KeyboardInterrupt: status 130" 130 "$(KILN_OUT=$T/py2 LD_PRELOAD=$LIBKILN "$PY" -c 'raise KeyboardInterrupt' 2>/dev/null; echo $?)"
  m=$(one "$d/python3*.meta.json")
  grep -q '"dump_reason": "exit-signal"' "$m" 2>/dev/null && grep -q '"fatal_signal": 2,' "$m" &&
    pass "python KeyboardInterrupt: profile written (exit-signal 2)" || fail "python KeyboardInterrupt: profile" "$(ls "$d")"
  # Its own handler stays its own: handled, then a normal exit.
  d="$T/pyhandler"
  run_pair "python's own SIGINT handler" "$d" "$PY" -c 'import os, signal
signal.signal(signal.SIGINT, lambda *a: print("handled"))
os.kill(os.getpid(), signal.SIGINT)
print("after")'
  meta_has "$d" 'python3*' '"dump_reason": "exit"' && pass "python's own SIGINT handler: a normal exit profile" ||
    fail "python's own handler: profile" "$(ls "$d")"
  # SIG_IGN stays SIG_IGN in the kernel: it survives exec (the exec'd
  # program reads its dispositions at start).
  SHOW='import signal; print([str(signal.getsignal(s)) for s in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM)])'
  run_pair "SIG_IGN survives exec" "$T/ign" "$PY" -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
os.kill(os.getpid(), signal.SIGTERM)
os.execv(sys.executable, [sys.executable, "-c", sys.argv[1]])' "$SHOW"
  run_pair "nohup: SIGHUP ignored in the program" "$T/nohup" nohup "$PY" -c "$SHOW"
fi
# A handler installed later (a shell's trap) gets the signal.
run_pair "trap installed later" "$T/trap" bash -c 'trap "echo trapped" TERM; kill -TERM $$; echo after'
# The program asks what is installed: its own view (the default).
run_pair "sigaction query sees SIG_DFL" "$T/query" "$PY" -c 'import signal
print(signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP))'

# kiln record: SIGINT sent to kiln is passed on; the profile is listed.
d="$T/record"
"$KILN" record -o "$d" -- "$EX/cpu_split" 200 >/dev/null 2>"$T/record.err" &
pid=$!
sleep 1
kill -INT $pid
wait $pid; rc=$?
check_eq "kiln record, SIGINT: status 130" 130 "$rc"
if grep -q "killed by signal 2" "$T/record.err" && grep -q "wrote .*cpu_split\.[0-9]*\.cpu\.folded" "$T/record.err" &&
   ! grep -q "no profile written" "$T/record.err"; then
  pass "kiln record, SIGINT: says what ended the program and lists the profile"
else fail "kiln record, SIGINT: report" "$(head -5 "$T/record.err")"; fi
profile_ok "kiln record, SIGINT" "$d" cpu_split 2
