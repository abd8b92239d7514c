#!/usr/bin/env bash
# Directory operands: a DIR stands for the run of each process in it, from
# the runtime's set names (hand-written here): the exit set when there is
# one, else the sum of delta interval sets, else the latest cumulative set;
# snapshot kinds (live) take the latest set; a set without its meta.json is
# still being written and is left out; other folded names are read as they
# are. Then the same DIR through tree, flamegraph, convert and diff.
source "$(dirname "$0")/../lib.sh"

# set DIR PROG.PID TAG MODE STACK COUNT [KIND]: one set's KIND file (cpu)
# and, unless MODE is "partial", its meta.json.
set_file() {
  local p="$1/$2.$3"
  mkdir -p "$1"
  echo "$5 $6" > "$p.${7:-cpu}.folded"
  [ "$4" = partial ] ||
    printf '{\n  "dump_reason": "interval",\n  "interval_mode": "%s"\n}\n' "$4" > "$p.meta.json"
}
# top_count ARGS... FUNCTION: the self count kiln top gives FUNCTION.
top_self() {
  local f=${*: -1}
  "$KILN" top -n 0 "${@:1:$#-1}" | awk -v f="$f" '$5 == f { print $1 }'
}

D=$T/delta
set_file "$D" app.10 20261121T100000Z-0001 delta "main;a" 5
set_file "$D" app.10 20261121T100001Z-0002 delta "main;a" 7
set_file "$D" app.10 20261121T100002Z-0003 partial "main;a" 1000
check_eq sets_delta_sum 12 "$(top_self "$D" a)"
check_eq sets_one_interval 7 "$(top_self "$D/app.10.20261121T100001Z-0002.cpu.folded" a)"
check_eq sets_glob_merges 12 "$(top_self "$D"/app.10.*-000[12].cpu.folded a)"

C=$T/cumulative
set_file "$C" app.11 20261121T100000Z-0001 cumulative "main;b" 5
set_file "$C" app.11 20261121T100001Z-0002 cumulative "main;b" 9
check_eq sets_cumulative_latest 9 "$(top_self "$C" b)"

E=$T/exit
set_file "$E" app.12 20261121T100000Z-0001 delta "main;c" 5
echo "main;c 40" > "$E/app.12.cpu.folded"
check_eq sets_exit_set_is_the_run 40 "$(top_self "$E" c)"

S=$T/snapshot
set_file "$S" app.13 20261121T100000Z-0001 delta "main;d" 100 live_bytes
set_file "$S" app.13 20261121T100001Z-0002 delta "main;d" 30 live_bytes
set_file "$S" app.13 20261121T100001Z-0002 delta "main;e" 3
check_eq sets_snapshot_latest 30 "$(top_self --kind live_bytes "$S" d)"
check_eq sets_kind_default_cpu 3 "$(top_self "$S" e)"

# Two processes and a hand-named file in one directory: all merged.
M=$T/mixed
set_file "$M" app.20 20261121T100000Z-0001 delta "main;f" 1
set_file "$M" app.20 20261121T100001Z-0002 delta "main;f" 2
set_file "$M" my.app.v2.21 20261121T100000Z-0001 cumulative "main;f" 4
set_file "$M" my.app.v2.21 20261121T100001Z-0002 cumulative "main;f" 8
echo "main;f 16" > "$M/hand.cpu.folded"
check_eq sets_mixed_sum 27 "$(top_self "$M" f)"

# Errors: no file of the kind, an unknown kind.
"$KILN" top --kind alloc_bytes "$D" > /dev/null 2> "$T/nokind.err"
check_eq sets_no_kind_exit 1 $?
check sets_no_kind_message grep -q "^kiln: $D: no \*\.alloc_bytes\.folded file in this directory" "$T/nokind.err"
"$KILN" top --kind bogus "$D" > /dev/null 2>&1
check_eq sets_bad_kind_usage 2 $?

# The other readers take a DIR the same way.
check sets_tree grep -q "main" <("$KILN" tree "$D")
"$KILN" flamegraph -o "$T/d.svg" "$D"
check sets_flamegraph grep -q '12 samples' "$T/d.svg"
"$KILN" convert --to speedscope -o "$T/d.json" "$D"
check sets_convert grep -q '"a"' "$T/d.json"
check_eq sets_diff "main;a 12 0 main;b 0 9" "$("$KILN" diff "$D" "$C" 2> /dev/null | sort | tr "\n" " " | sed "s/ $//")"
