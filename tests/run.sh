#!/usr/bin/env bash
# Runs every test: unit binaries (build/tests/unit/test_*), then the scripts
# tests/integration/test_*.sh and tests/render/test_*.sh. Each prints one
# "PASS name" or "FAIL name: why" line per check; a test that exits non-zero
# without printing a FAIL counts as one failure. Ends with "N passed, N failed".
# TESTS='pattern' runs only the tests whose file name matches the glob.
#
# Independent test files run KILN_TEST_JOBS at a time (default: nproc), each
# into its own log; the logs are printed in the usual order as they complete.
# The files that measure time or CPU shares against the clock (KILN_SERIAL
# below) run afterwards, one at a time, with no other test competing.
set -u
cd "$(dirname "$0")/.."
export KILN_BUILD=${KILN_BUILD:-build}
pattern=${TESTS:-*}
jobs=${KILN_TEST_JOBS:-$(nproc 2>/dev/null || echo 1)}
[ "$jobs" -ge 1 ] 2>/dev/null || jobs=1
# CPU-time ratios between processes, interval counts over a wall-clock span:
# a loaded machine changes what they measure, so they run alone.
KILN_SERIAL=${KILN_SERIAL:-'test_cpu_process.sh test_cpu_profile.sh test_cpu_linked.sh test_cpu_kernel.sh test_longrun.sh test_real.sh test_wall.sh'}
passed=0 failed=0
log=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$log"' EXIT

names=() cmds=() serial=()
add() { # add NAME SERIAL COMMAND...
  names+=("$1"); serial+=("$2"); shift 2
  cmds+=("$(printf '%q ' "$@")")
}
for t in "$KILN_BUILD"/tests/unit/test_*; do
  [ -x "$t" ] || continue
  case "$(basename "$t")" in $pattern) add "unit/$(basename "$t")" 0 "$t" ;; esac
done
for t in tests/integration/test_*.sh tests/render/test_*.sh tests/real/test_*.sh; do
  [ -f "$t" ] || continue
  case "$(basename "$t")" in
    $pattern)
      s=0
      case " $KILN_SERIAL " in *" $(basename "$t") "*) s=1 ;; esac
      add "${t#tests/}" "$s" bash "$t" ;;
  esac
done
total=${#names[@]}

# Job I: output in $log/I.out, then its status in $log/I.rc (written last:
# the job is over once it exists) and its seconds in $log/I.time.
start_job() {
  local i=$1
  (
    start=$SECONDS
    eval "timeout 600 ${cmds[$i]}" > "$log/$i.out" 2>&1 < /dev/null
    rc=$?
    echo $((SECONDS - start)) > "$log/$i.time"
    echo "$rc" > "$log/$i.rc"
  ) &
}

report() {
  local i=$1 name=${names[$1]} out="$log/$1.out" rc p f
  rc=$(cat "$log/$i.rc")
  p=$(grep -c '^PASS ' "$out")
  f=$(grep -c '^FAIL ' "$out")
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "FAIL $name: exited with status $rc" >> "$out"
    f=1
  fi
  passed=$((passed + p)); failed=$((failed + f))
  if [ "$f" -ne 0 ]; then
    echo "== $name: $p passed, $f failed ($(cat "$log/$i.time")s)"
    grep '^FAIL ' "$out" | sed 's/^/   /' # the failures first, however long the output
    sed 's/^/   /' "$out" | tail -n 40
  else
    echo "== $name: $p passed ($(cat "$log/$i.time")s)"
  fi
}

# Parallel part: every non-serial file, at most $jobs at once; reports go
# out in list order (serial files are reported in their place once run).
next=0 shown=0 running=0
flush() {
  while [ "$shown" -lt "$total" ]; do
    if [ "${serial[$shown]}" = 1 ] && [ ! -f "$log/$shown.rc" ]; then
      # run it now, alone, once everything before it has been started
      [ "$next" -lt "$total" ] && return
      wait
      running=0
      start_job "$shown"
      wait
    fi
    [ -f "$log/$shown.rc" ] || return
    report "$shown"
    shown=$((shown + 1))
  done
}
while [ "$next" -lt "$total" ]; do
  if [ "${serial[$next]}" = 1 ]; then
    next=$((next + 1))
    continue
  fi
  if [ "$running" -ge "$jobs" ]; then
    wait -n 2>/dev/null || true
    running=$((running - 1))
    flush
  fi
  start_job "$next"
  running=$((running + 1))
  next=$((next + 1))
done
while [ "$shown" -lt "$total" ]; do
  if [ "${serial[$shown]}" != 1 ] && [ ! -f "$log/$shown.rc" ]; then
    wait -n 2>/dev/null || sleep 0.1
  fi
  flush
done
wait

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
