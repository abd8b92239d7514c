#!/usr/bin/env bash
# kiln leaks beyond the golden files: exit status (--error-exitcode, the
# category rules, --fail-possible), bad input, and kiln record --alloc's
# summary, with and without allocation files (a stand-in libkiln.so that
# writes nothing).
source "$(dirname "$0")/../lib.sh"
IN="$(cd "$(dirname "$0")/input" && pwd)"

status() { "$KILN" leaks "$@" > "$T/out" 2> "$T/err"; echo $?; }
check_eq leaks_exit_default 0 "$(status "$IN/leaks")"
check_eq leaks_error_exitcode 7 "$(status --error-exitcode 7 "$IN/leaks")"
check_eq leaks_none_exit 0 "$(status --error-exitcode 7 "$IN/leaks_none")"
check leaks_none_says_no_leaks grep -q '^total: no leaks' "$T/out"
check_eq leaks_categories_definite 9 "$(status --error-exitcode 9 "$IN/leaks_categories")"

# Categories: only definitely lost fails, possibly lost with --fail-possible.
mkdir -p "$T/possible" "$T/reachable"
printf 'main;pool;malloc 64\n' > "$T/possible/p.1.possible_bytes.folded"
printf 'main;pool;malloc 1\n' > "$T/possible/p.1.possible_count.folded"
printf 'main;init;malloc 32\n' > "$T/reachable/r.2.reachable_bytes.folded"
: > "$T/reachable/r.2.definite_bytes.folded"
check_eq leaks_possible_passes 0 "$(status --error-exitcode 5 "$T/possible")"
check_eq leaks_fail_possible 5 "$(status --error-exitcode 5 --fail-possible "$T/possible")"
check_eq leaks_reachable_passes 0 "$(status --error-exitcode 5 --fail-possible "$T/reachable")"
check leaks_reachable_summary grep -q '^   still reachable: 32 bytes in ? blocks' "$T/out"
# Categories win over the plain pair of the same process.
printf 'main;pool;malloc 64\n' > "$T/possible/p.1.leak_bytes.folded"
status "$T/possible" > /dev/null
check leaks_categories_first grep -q 'are possibly lost (site 1 of 1)' "$T/out"
check_eq leaks_categories_one_section 1 "$(grep -c '^== ' "$T/out")"

# Bad input: one kiln: line (per bad line), exit 1, nothing half printed.
one_line_error() { # NAME WANT_REGEX ARGS...
  local name=$1 want=$2; shift 2
  local rc; rc=$(status "$@")
  if [ "$rc" = 1 ] && grep -q "$want" "$T/err" && [ ! -s "$T/out" ]; then pass "$name"
  else fail "$name" "exit $rc, stderr: $(head -3 "$T/err")"; fi
}
one_line_error leaks_missing_file '^kiln: .*nope: cannot open' "$T/nope"
mkdir -p "$T/empty"
one_line_error leaks_dir_without_leaks '^kiln: .*empty: no \*.leak_bytes' "$T/empty"
one_line_error leaks_differential 'differential profile' "$IN/diff.folded"
mkdir -p "$T/bad"
printf 'main;a 10\nmain;b ten\n' > "$T/bad/x.3.leak_bytes.folded"
printf 'main;a 1\n' > "$T/bad/x.3.leak_count.folded"
status "$T/bad" > /dev/null
check leaks_bad_line_located grep -q "^kiln: $T/bad/x.3.leak_bytes.folded:2: count is not a number" "$T/err"
check leaks_bad_line_skipped grep -q '^10 bytes in 1 blocks' "$T/out"
printf 'garbage\n' > "$T/bad/y.4.leak_bytes.folded"
one_line_error leaks_no_valid_line 'y.4.leak_bytes.folded: no valid folded line' "$T/bad/y.4.leak_bytes.folded"
"$KILN" leaks > /dev/null 2>&1; check_eq leaks_no_args_usage 2 $?
"$KILN" leaks --error-exitcode 300 "$IN/leaks" > /dev/null 2>&1; check_eq leaks_bad_exitcode_usage 2 $?

# kiln record --alloc with a stand-in libkiln.so that writes nothing.
mkdir -p "$T/bin"
cp "$KILN" "$T/bin/kiln"
echo 'int kiln_stand_in;' > "$T/stand_in.c"
if cc -shared -fPIC -o "$T/bin/libkiln.so" "$T/stand_in.c" 2> /dev/null; then
  "$T/bin/kiln" record --alloc -o "$T/rec" -- true > /dev/null 2> "$T/rec.err"
  check_eq record_alloc_missing_exit 0 $?
  check record_alloc_missing_message grep -q '^kiln: record: no allocation profile was written' "$T/rec.err"
else
  fail record_alloc_stand_in "cannot build a stand-in libkiln.so"
fi
# ... and with the real runtime, when it writes allocation profiles.
if [ -f "$LIBKILN" ]; then
  "$KILN" record --alloc -o "$T/real" -- true > /dev/null 2> "$T/real.err"
  if ls "$T/real"/*.leak_bytes.folded > /dev/null 2>&1; then
    check record_alloc_leak_header grep -q '^== true\.[0-9]*: .* are still allocated at exit' "$T/real.err"
    check record_alloc_top grep -qE 'top allocating functions by self|alloc_bytes.folded: no allocations$' "$T/real.err"
  else
    check record_alloc_says_missing grep -q 'no allocation profile was written' "$T/real.err"
  fi
fi
