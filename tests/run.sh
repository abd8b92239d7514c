#!/usr/bin/env bash
# Runs every test: unit binaries (build/tests/unit/test_*), then the scripts
# tests/integration/test_*.sh and tests/render/test_*.sh. Each prints one
# "PASS name" or "FAIL name: why" line per check; a test that exits non-zero
# without printing a FAIL counts as one failure. Ends with "N passed, N failed".
# TESTS='pattern' runs only the tests whose file name matches the glob.
set -u
cd "$(dirname "$0")/.."
export KILN_BUILD=${KILN_BUILD:-build}
pattern=${TESTS:-*}
passed=0 failed=0
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT

run_one() {
  local name=$1; shift
  local out="$log/out" rc
  local start=$SECONDS
  timeout 600 "$@" >"$out" 2>&1
  rc=$?
  local p f
  p=$(grep -c '^PASS ' "$out")
  f=$(grep -c '^FAIL ' "$out")
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "FAIL $name: exited with status $rc" >>"$out"
    f=1
  fi
  passed=$((passed + p)); failed=$((failed + f))
  if [ "$f" -ne 0 ]; then
    echo "== $name: $p passed, $f failed ($((SECONDS - start))s)"
    sed 's/^/   /' "$out" | tail -n 60
  else
    echo "== $name: $p passed ($((SECONDS - start))s)"
  fi
}

for t in "$KILN_BUILD"/tests/unit/test_*; do
  [ -x "$t" ] || continue
  case "$(basename "$t")" in $pattern) run_one "unit/$(basename "$t")" "$t" ;; esac
done
for t in tests/integration/test_*.sh tests/render/test_*.sh tests/real/test_*.sh; do
  [ -f "$t" ] || continue
  case "$(basename "$t")" in $pattern) run_one "${t#tests/}" bash "$t" ;; esac
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
