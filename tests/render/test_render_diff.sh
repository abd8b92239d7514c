#!/usr/bin/env bash
# Differential profiles: kiln diff's difffolded lines, -n normalisation
# (exact: no change at the root), and the differential flame graph as
# flamegraph.pl draws it: widths from AFTER, each frame red where its own
# count grew, blue where it shrank, white when unchanged (its own change
# in the tooltip); --negate swaps the hues only (Gregg's recipe).
source "$(dirname "$0")/../lib.sh"
IN="$(cd "$(dirname "$0")/input" && pwd)"

"$KILN" diff "$IN/before.folded" "$IN/after.folded" > "$T/d.folded"
check_eq diff_exit 0 $?
check diff_line_format awk 'NF < 3 || $(NF-1) !~ /^[0-9]+$/ || $NF !~ /^[0-9]+$/ { exit 1 }' "$T/d.folded"
check_eq diff_before_total "$(folded_total "$IN/before.folded")" "$(awk '{ s += $(NF-1) } END { print s }' "$T/d.folded")"
check_eq diff_after_total "$(folded_total "$IN/after.folded")" "$(awk '{ s += $NF } END { print s }' "$T/d.folded")"
check_eq diff_only_before "main;io;write 10 0" "$(grep '^main;io;write ' "$T/d.folded")"
check_eq diff_only_after "main;gc 0 12" "$(grep '^main;gc ' "$T/d.folded")"
"$KILN" diff -n "$IN/before.folded" "$IN/after.folded" > "$T/dn.folded"
nb=$(awk '{ s += $(NF-1) } END { print s }' "$T/dn.folded")
check_eq diff_normalized_total_exact "$(folded_total "$IN/after.folded")" "$nb"
check diff_normalized_integers awk '$(NF-1) !~ /^[0-9]+$/ { exit 1 }' "$T/dn.folded"
# Exact beyond double precision: counts near 2^62 scaled and rounded by
# the largest remainders still add up to AFTER's total to the unit.
printf 'a;x 4611686018427387905\na;y 3\n' > "$T/big_before.folded"
printf 'a;x 1\na;y 4611686018427387903\n' > "$T/big_after.folded"
"$KILN" diff -n "$T/big_before.folded" "$T/big_after.folded" > "$T/big.folded"
check_eq diff_normalized_exact_uint64 "a;x 4611686018427387901 1
a;y 3 4611686018427387903" "$(cat "$T/big.folded")"
"$KILN" flamegraph "$T/dn.folded" > "$T/dn.svg"
check_eq diff_normalized_root_white 'fill="rgb(255,255,255)"' "$(grep '<title>all (' "$T/dn.svg" | grep -o 'fill="[^"]*"')"
check_eq diff_normalized_no_root_delta 0 "$(grep -c '<title>all ([^)]*;' "$T/dn.svg")"
"$KILN" diff "$IN/before.folded" "$IN/diff.folded" > /dev/null 2> "$T/dd.err"
check_eq diff_refuses_diff_input 1 $?

"$KILN" flamegraph "$T/d.folded" > "$T/d.svg"
check diff_svg_xml xmllint --noout "$T/d.svg"
fill() { grep "<title>$1 (" "$2" | grep -o 'fill="[^"]*"' | head -1; }
check diff_grew_red grep -q 'fill="rgb(255,' <(fill mul "$T/d.svg")
check diff_shrank_blue grep -q ',255)"' <(fill lex "$T/d.svg")
check diff_same_white grep -q 'rgb(255,255,255)' <(fill add "$T/d.svg")
# Own change, not the subtree's: main has no samples of its own, so it stays
# white however much its callees changed; eval's tooltip shows its own 0.00%.
check_eq diff_parent_own_change 'fill="rgb(255,255,255)"' "$(fill main "$T/d.svg")"
check diff_parent_own_tooltip grep -q '<title>eval (125 samples, 65.10%; 0.00%)' "$T/d.svg"
check diff_width_after grep -q '<title>mul (60 samples' "$T/d.svg"
check diff_delta_tooltip grep -q '<title>mul (60 samples, [0-9.]*%; +[0-9.]*%)' "$T/d.svg"
# The largest change gets the full colour.
check diff_max_intensity grep -q 'fill="rgb(255,0,0)"' "$T/d.svg"
"$KILN" flamegraph --negate "$T/d.folded" > "$T/dneg.svg"
check diff_negate_widths_stay grep -q '<title>mul (60 samples' "$T/dneg.svg"
check diff_negate_hue grep -q 'fill="rgb(255,' <(fill lex "$T/dneg.svg")
check diff_negate_xml xmllint --noout "$T/dneg.svg"
# Gregg's recipe: diff AFTER BEFORE, --negate: BEFORE's widths, and the
# frames that shrank from BEFORE to AFTER still blue.
"$KILN" diff "$IN/after.folded" "$IN/before.folded" | "$KILN" flamegraph --negate > "$T/recipe.svg"
check diff_recipe_width_before grep -q '<title>lex (40 samples' "$T/recipe.svg"
check diff_recipe_shrank_blue grep -q ',255)"' <(fill lex "$T/recipe.svg")
check diff_recipe_grew_red grep -q 'fill="rgb(255,' <(fill mul "$T/recipe.svg")
