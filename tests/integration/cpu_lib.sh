# Helpers for the CPU integration tests: sourced after tests/lib.sh.

# run_pair NAME OUTDIR BIN ARGS...: runs BIN unprofiled and under the
# preload (with the current KILN_* environment and KILN_OUT=OUTDIR); checks
# that stdout and the exit status are identical. Leaves the profiled run's
# stderr in the file named by $ERR.
run_pair() {
  local name=$1 out=$2; shift 2
  local plain_out prof_out plain_rc prof_rc
  ERR=$(mktemp "$T/stderr.XXXXXX")
  if ! command -v "$1" >/dev/null 2>&1; then
    fail "$name: program changed under kiln" "no such program: $1 (not built?)"
    return
  fi
  plain_out=$("$@" 2>/dev/null); plain_rc=$?
  prof_out=$(KILN_OUT=$out LD_PRELOAD=$LIBKILN "$@" 2>"$ERR"); prof_rc=$?
  if [ "$plain_out" = "$prof_out" ] && [ "$plain_rc" = "$prof_rc" ]; then
    pass "$name: same stdout and exit status ($plain_rc) under kiln"
  else
    fail "$name: program changed under kiln" "rc $plain_rc vs $prof_rc; stdout '$plain_out' vs '$prof_out'"
  fi
}

# meta_field FILE KEY: a number from a meta.json.
meta_field() { sed -n "s/^ *\"$2\": \([0-9.]*\),*$/\1/p" "$1"; }

# one FILE_GLOB: the single file matching, or fail.
one() { local f; f=$(ls $1 2>/dev/null | head -n 1); echo "$f"; }

# share_ok NAME FILE REGEX EXPECTED TOL
# The share of REGEX in the program's own frames: a sample taken in the
# kernel counts for the user stack that entered it (its "[kernel];..."
# suffix is set aside), as the shapes below are built in user code.
user_share() {
  awk -v re="$2" '{ n = $NF; t += n; s = $0; sub(/ [0-9]+$/, "", s); sub(/;\[kernel\].*$/, "", s); if (s ~ re) m += n }
    END { if (t == 0) print "nan"; else printf "%.1f\n", 100 * m / t }' "$1"
}
share_ok() {
  local got; got=$(user_share "$2" "$3")
  if within "$got" "$4" "$5"; then pass "$1: $got% (expected $4 +- $5)"
  else fail "$1" "share of /$3/ is $got%, expected $4 +- $5"; fi
}
