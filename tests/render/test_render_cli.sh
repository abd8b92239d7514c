#!/usr/bin/env bash
# The kiln command line: help, version, usage errors (one kiln: line, exit
# 2), planned commands, palettes and option values.
source "$(dirname "$0")/../lib.sh"
IN="$(cd "$(dirname "$0")/input" && pwd)"

"$KILN" --help > "$T/help" ; check_eq help_exit 0 $?
for c in record flamegraph diff top tree convert leaks push; do
  check "help_lists_$c" grep -q "^  $c " "$T/help"
done
"$KILN" --version > "$T/version"; check_eq version_exit 0 $?
check version_text grep -qE '^kiln [0-9]+\.[0-9]+\.[0-9]+$' "$T/version"
for c in record flamegraph diff top tree convert leaks push; do
  "$KILN" "$c" --help > "$T/h_$c"; check_eq "help_${c}_exit" 0 $?
  check "help_${c}_usage" grep -q "^usage: kiln $c" "$T/h_$c"
done

usage_error() { # NAME ARGS...: exit 2 with one kiln: line on stderr
  local name=$1; shift
  "$KILN" "$@" > /dev/null 2> "$T/err"
  local rc=$?
  if [ "$rc" = 2 ] && [ "$(wc -l < "$T/err")" = 1 ] && grep -q '^kiln: ' "$T/err"; then
    pass "$name"
  else
    fail "$name" "exit $rc, stderr: $(cat "$T/err")"
  fi
}
usage_error unknown_command frobnicate
usage_error unknown_global_option --frob
usage_error unknown_option flamegraph --frob "$IN/basic.folded"
usage_error unknown_short_option top -x "$IN/basic.folded"
usage_error missing_value flamegraph --width
usage_error bad_width flamegraph --width abc "$IN/basic.folded"
usage_error bad_palette flamegraph --colors rainbow "$IN/basic.folded"
usage_error bad_minwidth flamegraph --minwidth -3 "$IN/basic.folded"
usage_error bad_top_n top -n many "$IN/basic.folded"
usage_error diff_one_file diff "$IN/before.folded"
usage_error convert_no_to convert "$IN/basic.folded"
usage_error convert_bad_to convert --to json "$IN/basic.folded"
usage_error record_no_cmd record
usage_error record_bad_unwind record --unwind dwarf -- true
usage_error leaks_no_args leaks
usage_error push_no_url push
"$KILN" > /dev/null 2>&1; check_eq no_args_exit 2 $?

for p in hot mem io red green blue aqua yellow purple orange; do
  "$KILN" flamegraph --colors "$p" "$IN/basic.folded" > "$T/p.svg"
  check "palette_$p" xmllint --noout "$T/p.svg"
done
# --hash: one colour per name wherever the name appears.
"$KILN" flamegraph --hash "$IN/basic.folded" > "$T/hash.svg"
n=$(grep -A0 '<title>strlen ' "$T/hash.svg" | grep -o 'fill="[^"]*"' | sort -u | wc -l)
check_eq hash_stable_colour 1 "$n"
# Titles with markup are escaped.
"$KILN" flamegraph --title '<b>&"x"' --subtitle "it's" "$IN/basic.folded" > "$T/t.svg"
check title_escaped xmllint --noout "$T/t.svg"
check title_text grep -q '&lt;b&gt;&amp;&quot;x&quot;' "$T/t.svg"
