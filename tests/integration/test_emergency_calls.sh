# Emergency dumps (_exit, fatal signals, an exit signal with no collector to
# hand the dump to) call no malloc, no stdio formatting, no strerror or
# gmtime_r, nothing of the loader's and take no lock: count_calls.so,
# preloaded after libkiln.so, sees every such call of the thread that ends
# the process once the program arms it (a normal exit, the control, does
# make such calls). KILN_UNWIND=fp: libunwind in the SIGPROF handler takes
# its own locks (the sampler's business, not the dump's).
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/cpu_lib.sh"
SRC="$(dirname "$0")/emergency"
export KILN_UNWIND=fp
if ! cc -O1 -fPIC -shared -o "$T/count_calls.so" "$SRC/count_calls.c" -ldl ||
   ! cc -O1 -o "$T/ending" "$SRC/ending.c" -ldl; then
  fail "emergency calls: build the test programs" "cc failed"
  exit 0
fi
ulimit -c 0

# ends MODE KILN_MODE [ENV...]: runs ending under kiln + the counter; sets
# RC, CALLS (the counted calls, one word each) and D.
ends() {
  local mode=$1 kmode=$2; shift 2
  D="$T/$mode-${kmode/,/_}$*"; D=${D// /_}
  env "$@" KILN_MODE=$kmode KILN_OUT=$D LD_PRELOAD="$LIBKILN $T/count_calls.so" "$T/ending" "$mode" \
    >/dev/null 2>"$T/err"
  RC=$?
  CALLS=$(sed -n 's/^count-calls: //p' "$T/err" | sort | uniq -c | awk '{ printf "%s%s x%s", s, $2, $1; s = ", " }')
}

ends exit cpu,alloc
if [ -n "$CALLS" ]; then pass "control: a normal exit's dump is seen calling ($CALLS)"
else fail "control: the counter sees nothing" "$(head -3 "$T/err")"; fi

for mode in _exit segv abort term; do
  "$T/ending" $mode >/dev/null 2>&1; want=$?
  for kmode in cpu,alloc alloc "cpu,alloc KILN_INTERVAL=30"; do
    [ $mode = term ] && [ "$kmode" != alloc ] && continue # with a collector: a normal dump there
    set -- $kmode
    ends $mode "$@"
    name="$mode ($kmode)"
    check_eq "$name: exit status unchanged" "$want" "$RC"
    check_eq "$name: no malloc, stdio, strerror, gmtime, loader call or lock in the dump" "" "$CALLS"
    reason=$([ $mode = _exit ] && echo _exit || echo exit-signal)
    m=$(ls "$D"/ending.*.meta.json 2>/dev/null | grep -v 'Z-' | head -n 1)
    if [ -n "$m" ] && grep -q "\"dump_reason\": \"$reason\"" "$m" && [ -s "$(ls "$D"/ending.*.alloc_count.folded | grep -v 'Z-' | head -n 1)" ]; then
      pass "$name: profile written ($reason)"
    else fail "$name: profile" "$(ls "$D" 2>/dev/null | tr '\n' ' ')"; fi
  done
done
# The last interval set of an emergency is named by kiln_fmt_utc, as
# gmtime_r names its until_unix.
m=$(ls "$T"/_exit-cpu_allocKILN_INTERVAL=30/ending.*Z-0001.meta.json 2>/dev/null | head -n 1)
tag=$(basename "$m" | sed -n 's/.*\.\([0-9]\{8\}T[0-9]\{6\}Z\)-0001\.meta\.json/\1/p')
want=$(python3 -c 'import sys, time; print(time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(int(float(sys.argv[1])))))' \
  "$(meta_field "$m" until_unix)" 2>/dev/null)
check_eq "emergency interval set: tag is gmtime_r's date of its until_unix" "$want" "$tag"
