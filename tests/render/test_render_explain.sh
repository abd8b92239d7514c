#!/usr/bin/env bash
# kiln explain on constructed profiles, one per shape and culprit family
# (exact shares by construction), on heap profiles (sites), and on real
# profiles of the examples under the preload (shapes: a plateau per
# template instance; recursion: recursion stairs).
source "$(dirname "$0")/../lib.sh"
IN="$(cd "$(dirname "$0")" && pwd)/input/explain"

# has NAME FILE LINE: explain's output of FILE has LINE (fixed string).
has() {
  local out
  out=$("$KILN" explain -n 0 "$IN/$2" 2>&1)
  if grep -qF -- "$3" <<<"$out"; then pass "$1"; else fail "$1" "no '$3' in: $(head -c 400 <<<"$out")"; fi
}
has explain_plateau plateau.folded " 60.0%  plateau: tokenize spends 60.0% of the total in its own code"
has explain_plateau_caller plateau.folded "called from parse (100%)"
has explain_plateau_ranked plateau.folded "  1.  60.0%  plateau: tokenize"
has explain_dispatcher dispatcher.folded "wide base, narrow tops: dispatch (90.0%) spreads its time over 10 callees, none above 9.0%"
has explain_peaks peaks.folded "3 similar peaks under run: stage_a 30.0%, stage_b 28.0%, stage_c 25.0%"
has explain_spike spike.folded "deep narrow spike: 41 frames deep"
has explain_recursion recursion.folded "recursion: fib calls itself up to 5 deep, 65.0% of the total"
has explain_recursion_callers recursion.folded "called from solve (100%)"
has explain_alloc families.folded "memory allocation: 25.0% of the total (mostly malloc)"
has explain_strings families.folded "string work: 15.0% of the total (mostly memcpy)"
has explain_locks families.folded "lock contention: 10.0% of the total (mostly pthread_mutex_lock)"
has explain_hashing families.folded "hashing: 9.0% of the total"
has explain_serialization families.folded "serialization: 8.0% of the total (mostly json_dumps)"
has explain_interpreter families.folded "interpreter loop: 7.0% of the total (mostly _PyEval_EvalFrameDefault)"
has explain_cxx families.folded "C++ runtime: 6.0% of the total (mostly __dynamic_cast)"
has explain_kernel families.folded "kernel time: 15.0% of the total, by system call: __libc_pread64 15.0%"
has explain_family_fix families.folded "fix: shorten critical sections"
# The runtime's own time (its marker frames): a family of its own, never a
# plateau of the program.
printf 'main;work 80\nmain;[kiln] 12\nmain;alloc;[kiln: allocation tracking] 8\n' > "$T/own.folded"
out=$("$KILN" explain -n 0 "$T/own.folded")
check explain_kiln_own_time grep -qF "kiln's own time: 20.0% of the total (mostly [kiln])" <<<"$out"
check_eq explain_kiln_no_plateau "" "$(grep -F 'plateau: [kiln' <<<"$out")"
out=$("$KILN" explain -n 0 "$IN/families.folded")
check_eq explain_no_plateau_for_members "" "$(grep -E 'plateau: (_int_malloc|memcpy|__lll_lock_wait)' <<<"$out")"
has explain_alloc_site app.7.alloc_bytes.folded "allocating site: build_index, 73.3% of the total"
has explain_alloc_site_nested app.7.alloc_bytes.folded "allocating site: grow, 15.7% of the total"
has explain_leak_site app.7.leak_bytes.folded "leaking site: cache_put, 75.0% of the total"
has explain_unit app.7.alloc_bytes.folded "allocated bytes: 955 bytes"

# Bad input: one kiln: line, exit 1; usage: exit 2.
"$KILN" explain "$T/missing.folded" > /dev/null 2> "$T/err"; rc=$?
check_eq explain_missing_exit 1 "$rc"
check_eq explain_missing_one_line 1 "$(wc -l < "$T/err")"
"$KILN" explain > /dev/null 2>&1; check_eq explain_usage_exit 2 $?

# Real profiles: the examples under the preload.
KILN_OUT="$T/shapes" LD_PRELOAD="$LIBKILN" "$EX/shapes" > /dev/null 2>&1
out=$("$KILN" explain "$T/shapes")
if grep -q 'plateau: geo::Grid<double>::relax(int) spends' <<<"$out" &&
   grep -q 'plateau: geo::Grid<float>::relax(int) spends' <<<"$out"; then
  pass explain_real_shapes_plateaus
else
  fail explain_real_shapes_plateaus "$out"
fi
KILN_OUT="$T/rec" LD_PRELOAD="$LIBKILN" "$EX/recursion" 60 > /dev/null 2>&1
out=$("$KILN" explain "$T/rec")
if grep -qE 'recursion: [a-z_]+ calls itself up to [0-9]+ deep' <<<"$out"; then
  pass explain_real_recursion
else
  fail explain_real_recursion "$out"
fi
has explain_temp_site app.7.temp_count.folded "temporary allocations: reply, 60.0% of the total"
has explain_temp_fix app.7.temp_count.folded "allocated and freed almost at once"
