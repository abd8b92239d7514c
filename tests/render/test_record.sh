#!/usr/bin/env bash
# kiln record end to end: runs examples/cpu_split (a 60/30/10 split over
# work60, work30, work10) under the real libkiln.so and checks the files,
# the listing and the top table; then the environment it sets, the exit
# status rules, signal forwarding and the error paths.
source "$(dirname "$0")/../lib.sh"
SPLIT="$EX/cpu_split"

# Error paths first: they need no runtime.
mkdir -p "$T/bin" && cp "$KILN" "$T/bin/kiln"
"$T/bin/kiln" record -o "$T/nolib" -- true > /dev/null 2> "$T/nolib.err"
check_eq record_no_lib_exit 1 $?
check record_no_lib_message grep -q "^kiln: record: libkiln.so not found" "$T/nolib.err"

if [ ! -f "$LIBKILN" ] || [ ! -x "$SPLIT" ]; then
  fail record_prerequisites "need $LIBKILN and $SPLIT (make; make examples)"
  exit 0
fi

"$KILN" record -o "$T/run" -- /nonexistent/program > /dev/null 2> "$T/noexec.err"
check_eq record_cannot_run_exit 127 $?
check_eq record_cannot_run_one_line 1 "$(grep -c '^kiln: ' "$T/noexec.err")"
check record_cannot_run_message grep -q "cannot run '/nonexistent/program'" "$T/noexec.err"

# Statically linked programs: LD_PRELOAD cannot work; kiln says so once and
# runs them anyway. Dynamic programs, scripts and static programs that carry
# the runtime (they read KILN_OUT: a string stands in for libkiln.a) do not warn.
mkdir -p "$T/static"
printf 'int main(void) { return 3; }\n' > "$T/static/st.c"
printf '#include <stdio.h>\nint main(void) { puts("KILN_OUT"); return 0; }\n' > "$T/static/sk.c"
if cc -static -o "$T/static/st" "$T/static/st.c" 2> /dev/null &&
   cc -static -o "$T/static/sk" "$T/static/sk.c" 2> /dev/null; then
  "$KILN" record -o "$T/static/out" -- "$T/static/st" > /dev/null 2> "$T/static.err"
  check_eq record_static_exit_status 3 $?
  check_eq record_static_one_line 1 "$(grep -c 'statically linked' "$T/static.err")"
  check record_static_message grep -q "^kiln: record: $T/static/st is statically linked: LD_PRELOAD cannot load libkiln.so into it, so no profile will be written for it; running it anyway (to profile it, build it dynamically linked with libkiln.a and call kiln_start()" "$T/static.err"
  (PATH="$T/static:$PATH" "$KILN" record -o "$T/static/out" -- st > /dev/null 2> "$T/static_path.err")
  check record_static_via_path grep -q "^kiln: record: $T/static/st is statically linked" "$T/static_path.err"
  "$KILN" record -o "$T/static/out" -- "$T/static/sk" > /dev/null 2> "$T/static_kiln.err"
  check_eq record_static_with_runtime_no_warning 0 "$(grep -c 'statically linked' "$T/static_kiln.err")"
  printf '#!/bin/sh\nexit 0\n' > "$T/static/script" && chmod +x "$T/static/script"
  "$KILN" record -o "$T/static/out" -- "$T/static/script" > /dev/null 2> "$T/static_script.err"
  check_eq record_script_no_warning 0 "$(grep -c 'statically linked' "$T/static_script.err")"
  "$KILN" record -o "$T/static/out" -- true > /dev/null 2> "$T/dynamic.err"
  check_eq record_dynamic_no_warning 0 "$(grep -c 'statically linked' "$T/dynamic.err")"
else
  echo "note: static-binary checks skipped: cc -static does not link here"
fi

# The real thing.
"$KILN" record -F 499 -o "$T/split" -- "$SPLIT" > "$T/split.out" 2> "$T/split.err"
check_eq record_exit_status 0 $?
check record_program_stdout grep -q "rounds" "$T/split.out"
folded=$(ls "$T/split"/cpu_split.*.cpu.folded 2>/dev/null | head -1)
check record_cpu_folded test -s "$folded"
check record_meta_json test -s "$(ls "$T/split"/cpu_split.*.meta.json 2>/dev/null | head -1)"
check record_lists_folded grep -q "^kiln: wrote $T/split/cpu_split\.[0-9]*\.cpu\.folded" "$T/split.err"
check record_lists_meta grep -q "^kiln: wrote $T/split/cpu_split\.[0-9]*\.meta\.json" "$T/split.err"
check record_top_table grep -q "top functions by self" "$T/split.err"
check record_top_total_table grep -q "top functions by total" "$T/split.err"
# total% column of the by-self table for each work function.
share() { awk -v f="$1" '$5 == f { sub(/%/, "", $4); print $4; exit }' "$T/split.err"; }
for pair in work60:60 work30:30 work10:10; do
  f=${pair%%:*} want=${pair##*:}
  got=$(share "$f")
  if [ -n "$got" ] && within "$got" "$want" 8; then pass "record_share_$f"; else fail "record_share_$f" "got '$got'%, want $want% +-8"; fi
done
# The table is kiln top's.
"$KILN" top -n 10 "$folded" > "$T/top.txt"
check record_table_is_top grep -qF "$(sed -n 3p "$T/top.txt")" "$T/split.err"

# Environment: LD_PRELOAD prepended, KILN_* set; default directory.
(cd "$T" && LD_PRELOAD=libm.so.6 "$KILN" record -F 123 --unwind fp --alloc -- \
   sh -c 'echo "P=$LD_PRELOAD"; echo "H=$KILN_HZ"; echo "U=$KILN_UNWIND"; echo "M=$KILN_MODE"; echo "O=$KILN_OUT"' \
   > "$T/env.out" 2> /dev/null)
check_eq record_env_preload "P=$(readlink -f "$LIBKILN") libm.so.6" "$(grep '^P=' "$T/env.out")"
check_eq record_env_hz H=123 "$(grep '^H=' "$T/env.out")"
check_eq record_env_unwind U=fp "$(grep '^U=' "$T/env.out")"
check_eq record_env_mode M=cpu,alloc "$(grep '^M=' "$T/env.out")"
check record_default_dir grep -q '^O=kiln-sh-[0-9]\{8\}-[0-9]\{6\}' "$T/env.out"
check record_default_dir_created test -d "$T/$(sed -n 's/^O=//p' "$T/env.out")"

# Exit status: the program's, 128+N when killed by signal N.
"$KILN" record -o "$T/st" -- sh -c 'exit 7' > /dev/null 2>&1
check_eq record_exit_code_passed 7 $?
"$KILN" record -o "$T/sig" -- sh -c 'kill -USR1 $$' > /dev/null 2>&1
check_eq record_killed_by_signal 138 $?

# Signals sent to kiln reach the program.
"$KILN" record -o "$T/fwd" -- sleep 30 > /dev/null 2>&1 &
kpid=$!
sleep 1
kill -TERM "$kpid"
wait "$kpid"
check_eq record_forwards_sigterm 143 $?

# Sets written while the program ran are one line per process, not a line
# per file (a stand-in writes three sets the way the runtime names them).
"$KILN" record -o "$T/sets" -- sh -c 'for s in 0001 0002 0003; do
    p="$KILN_OUT/app.77.20261121T120000Z-$s"; echo "main;f 1" > "$p.cpu.folded"; echo "{}" > "$p.meta.json"
  done' > /dev/null 2> "$T/sets.err"
check_eq record_sets_exit 0 $?
check record_sets_one_line grep -q "^kiln: wrote 3 profile sets of app.77 while it ran in $T/sets (20261121T120000Z-0001 to 20261121T120000Z-0003): 'kiln top $T/sets' reads the run" "$T/sets.err"
check_eq record_sets_files_not_listed 0 "$(grep -c "wrote $T/sets/app\.77\." "$T/sets.err")"
check_eq record_sets_no_table 0 "$(grep -c "app\.77\..*top functions" "$T/sets.err")"

# The run's report: written into the directory, its path the last line.
check record_report_written test -s "$T/split/report.html"
check_eq record_report_path_last "kiln: report: $T/split/report.html (open it in a browser)" "$(tail -n 1 "$T/split.err")"
# A run that wrote no profile with a count gets no report and no message
# (a statically linked program: kiln cannot be loaded into it, so not even
# one sample of start-up can land by chance, as it can in `true`).
"$KILN" record -o "$T/none" -- /sbin/ldconfig -p > /dev/null 2> "$T/none.err"
check_eq record_report_not_for_nothing 0 "$(grep -c 'report' "$T/none.err")"
