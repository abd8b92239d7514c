# Shared helpers for the shell tests: sourced, not run.
# Each check prints "PASS name" or "FAIL name: why"; the runner counts them.
KILN_BUILD=${KILN_BUILD:-build}
KILN_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
B="$KILN_ROOT/$KILN_BUILD"
case "$KILN_BUILD" in /*) B=$KILN_BUILD ;; esac
LIBKILN="$B/libkiln.so"
KILN="$B/kiln"
EX="$B/examples"
T=$(mktemp -d "${TMPDIR:-/tmp}/kiln-test.XXXXXX")
trap 'rm -rf "$T"' EXIT
export KILN_QUIET=${KILN_QUIET:-}

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: ${2:-}"; }
# check NAME COMMAND...: passes when COMMAND succeeds.
check() {
  local name=$1; shift
  if "$@"; then pass "$name"; else fail "$name" "command failed: $*"; fi
}
# check_eq NAME EXPECTED ACTUAL
check_eq() {
  if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "expected '$2', got '$3'"; fi
}
# folded_total FILE: sum of the counts in a folded file.
folded_total() { awk '{ s += $NF } END { print s + 0 }' "$1"; }
# folded_share FILE REGEX: percentage (integer, rounded) of the counts whose
# stack matches REGEX.
folded_share() {
  awk -v re="$2" '{ n = $NF; t += n; s = $0; sub(/ [0-9]+$/, "", s); if (s ~ re) m += n }
    END { if (t == 0) print "nan"; else printf "%.1f\n", 100 * m / t }' "$1"
}
# within A B TOL: |A - B| <= TOL (floats).
within() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= t) }'; }
