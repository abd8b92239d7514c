#!/usr/bin/env bash
# The SVG as flamegraph.pl draws it (FlameGraph's own rules, checked here by
# construction): one colour per name from the palette's line, the multi-hue
# palettes and perf's annotations, grey separators, the options flamegraph.pl
# documents (also with one dash), trailing spaces kept in names, simplified
# names, and kiln top's note on a two-count input.
source "$(dirname "$0")/../lib.sh"
IN="$(cd "$(dirname "$0")/input" && pwd)"
fill() { grep "<title>$1 (" "$2" | grep -o 'fill="[^"]*"' | sort -u | tr '\n' ' ' | sed 's/ $//'; }

# Default colours: Perl's srand(sum of the name's characters); rand(1),
# one value v for all channels of the hot palette (205+50v, 230v, 55v).
"$KILN" flamegraph "$IN/basic.folded" > "$T/b.svg"
expect=$(perl -e '$h = unpack("%32W*", "main"); srand($h); $v = rand(1);
  printf "fill=\"rgb(%d,%d,%d)\"", 205 + int(50 * $v), int(230 * $v), int(55 * $v)')
check_eq colour_of_name "$expect" "$(fill main "$T/b.svg")"
printf 'main;a;strlen 5\nmain;b;strlen 7\nmain;c;x;strlen 3\n' > "$T/same.folded"
"$KILN" flamegraph "$T/same.folded" > "$T/same.svg"
check_eq one_colour_per_name 1 "$(grep '<title>strlen (' "$T/same.svg" | grep -o 'fill="[^"]*"' | sort -u | wc -l)"
check_eq same_in_two_graphs "$(fill strlen "$T/same.svg" | cut -d' ' -f1)" "$(fill strlen "$T/b.svg")"
# The palette's line: red 205-255, green 0-230 in step, blue 0-55.
bad=$(grep -o 'fill="rgb([0-9,]*)"' "$T/b.svg" | tr -dc '0-9,\n' | awk -F, '{ v = ($1 - 205) / 50; if ($1 < 205 || $2 > 230 || $3 > 55 || ($2 - int(230 * v)) ^ 2 > 25) print }' | wc -l)
check_eq hot_on_line 0 "$bad"

# Annotations: stripped from titles and labels, used for colour.
printf 'main;tcp_v4_rcv_[k] 10\nmain;Interp_[j] 10\nmain;inl_[i] 10\nmain;java/lang/Thread.run 10\nmain;std::vector::push 10\nmain;other 10\n' > "$T/j.folded"
"$KILN" flamegraph --colors java "$T/j.folded" > "$T/j.svg"
check_eq annotation_stripped 0 "$(grep -c '_\[[kjiw]\]' <(grep -o '<title>[^<]*</title>\|<text[^>]*>[^<]*</text>' "$T/j.svg"))"
hue() { fill "$1" "$T/j.svg" | tr -dc '0-9,' | awk -F, -v want="$2" '
  { r = $1; g = $2; b = $3
    if (r >= 190 && b == 0 && g < r) k = "orange"; else if (g > r && g > b) k = "green"
    else if (g == b && g > r) k = "aqua"; else if (r == g && b < r) k = "yellow"
    else if (r > g && g == b) k = "red"; else k = "?"
    exit !(k == want) }'; }
check java_kernel_orange hue tcp_v4_rcv orange
check java_jit_green hue Interp green
check java_inline_aqua hue inl aqua
check java_package_green hue java/lang/Thread.run green
check java_cxx_yellow hue std::vector::push yellow
check java_system_red hue other red
for p in java js perl wakeup chain; do
  "$KILN" flamegraph --colors "$p" "$T/j.folded" > "$T/p.svg"
  check "palette_$p" xmllint --noout "$T/p.svg"
done
printf 'main;sleep;--;waker;wake_up 10\nmain;run 10\n' > "$T/c.folded"
"$KILN" flamegraph --colors chain "$T/c.folded" > "$T/c.svg"
check_eq chain_separator_grey 'fill="rgb(160,160,160)"' "$(fill -- "$T/c.svg")"
check chain_waker_aqua grep -q 'fill="rgb([0-9]*,\([0-9]*\),\1)"' <(fill waker "$T/c.svg")
check chain_offcpu_blue grep -q ',2[0-5][0-9])"' <(fill sleep "$T/c.svg")
printf 'main;a;-;b 10\n' > "$T/s.folded"
"$KILN" flamegraph "$T/s.folded" > "$T/s.svg"
check_eq dash_separator_grey 'fill="rgb(200,200,200)"' "$(fill - "$T/s.svg")"

# Options flamegraph.pl documents, and its single-dash spelling.
"$KILN" flamegraph -title Hello -width=600 --fonttype "DejaVu Sans" --encoding iso-8859-1 \
  --bgcolors blue "$IN/basic.folded" > "$T/o.svg"
check_eq single_dash_exit 0 $?
check single_dash_title grep -q '<text id="title" x="300.00" y="24.00">Hello</text>' "$T/o.svg"
check fonttype grep -q 'font-family: DejaVu Sans;' "$T/o.svg"
check encoding grep -q '^<?xml version="1.0" encoding="iso-8859-1" standalone="no"?>' "$T/o.svg"
check bgcolors grep -q 'stop-color="#e0e0ff"' "$T/o.svg"
"$KILN" flamegraph --bgcolors '#123456' "$IN/basic.folded" | grep -c 'stop-color="#123456"' > "$T/flat"
check_eq bgcolors_flat 2 "$(cat "$T/flat")"
"$KILN" flamegraph --total 2100 "$IN/basic.folded" > "$T/total.svg"
check total_halves grep -q "<title>main (980 samples, 46.67%)" "$T/total.svg"
"$KILN" flamegraph --random "$IN/basic.folded" > "$T/r1.svg"; "$KILN" flamegraph --random "$IN/basic.folded" > "$T/r2.svg"
check random_stable cmp -s "$T/r1.svg" "$T/r2.svg"
printf 'main\tclass=hot\thref=x.html\ntitle_me\ttitle=custom tip\n' > "$T/attrs"
printf 'main;title_me 5\n' > "$T/a.folded"
"$KILN" flamegraph --nameattr "$T/attrs" "$T/a.folded" > "$T/attrs.svg"
check nameattr_attrs grep -q '<g class="hot" href="x.html">' "$T/attrs.svg"
check nameattr_title grep -q '<title>custom tip</title>' "$T/attrs.svg"
(cd "$T" && "$KILN" flamegraph --cp "$IN/basic.folded" > cp1.svg && test -s palette.map &&
  sed -i 's/^main->.*/main->rgb(1,2,3)/' palette.map && "$KILN" flamegraph --cp "$IN/basic.folded" > cp2.svg)
check_eq cp_reads_map 'fill="rgb(1,2,3)"' "$(fill main "$T/cp2.svg")"
check cp_writes_map grep -q '^strlen->rgb(' "$T/palette.map"
"$KILN" flamegraph --bgcolors purple "$IN/basic.folded" > /dev/null 2>&1; check_eq bgcolors_bad 2 $?

# Trailing spaces: one blank before the count, the rest stays in the name
# (perf's "std::function<bool " is one frame wherever it is).
printf 'a;std::function<bool  5\na;std::function<bool ;x 3\n' > "$T/sp.folded"
"$KILN" flamegraph "$T/sp.folded" > "$T/sp.svg"
check_eq trailing_space_one_node 1 "$(grep -c '<title>std::function&lt;bool  (8 samples' "$T/sp.svg")"

# Simplified names: parameters and template arguments dropped, merged.
printf 'main;ns::Map<int, std::string>::find(int const&) const 5\nmain;ns::Map<long, char>::find(long const&) const 3\nmain;operator() 1\n' > "$T/sn.folded"
"$KILN" flamegraph --short-names "$T/sn.folded" > "$T/sn.svg"
check short_names_merged grep -q '<title>ns::Map::find (8 samples' "$T/sn.svg"
check short_names_operator grep -q '<title>operator() (1 samples' "$T/sn.svg"

# kiln top on a diff file says which counts it shows.
"$KILN" top "$IN/diff.folded" > /dev/null 2> "$T/top.err"
check top_diff_note grep -q 'two counts per line' "$T/top.err"

# Fractional counts (kept in thousandths) through --short-names (frames
# renamed and merged keep the unit) and --total (given in the input's unit).
printf 'main;f(int) 0.5\nmain;f(long) 1.25\nmain;g 2\n' > "$T/frac.folded"
"$KILN" flamegraph --short-names "$T/frac.folded" > "$T/frac.svg"
check_eq fraction_short_names_merged '<title>f (1.75 samples, 46.67%)</title>' "$(grep -o '<title>f ([^<]*</title>' "$T/frac.svg")"
"$KILN" flamegraph --total 10 "$T/frac.folded" > "$T/fract.svg"
check_eq fraction_total_root '<title>all (10 samples, 100%)</title>' "$(grep -o '<title>all ([^<]*</title>' "$T/fract.svg")"
check_eq fraction_total_share '<title>main (3.75 samples, 37.50%)</title>' "$(grep -o '<title>main ([^<]*</title>' "$T/fract.svg")"
