#!/usr/bin/env bash
# The renderer on awkward input: malformed lines (reported with FILE:LINE,
# summarised past ten, fatal with --strict), no valid line, stdin and merged
# files, output files that appear whole or not at all, very deep and very
# wide profiles, binary garbage.
source "$(dirname "$0")/../lib.sh"
IN="$(cd "$(dirname "$0")/input" && pwd)"

# Malformed lines: one kiln: line each, the rest still drawn.
"$KILN" flamegraph "$IN/bad.folded" > "$T/bad.svg" 2> "$T/bad.err"
check_eq bad_input_exit 0 $?
check bad_input_lines grep -q "^kiln: .*bad.folded:3: negative count" "$T/bad.err"
check bad_input_empty_stack grep -q "bad.folded:5: empty stack" "$T/bad.err"
check bad_input_nan grep -q "bad.folded:4: count is not a number" "$T/bad.err"
check_eq bad_input_err_count 4 "$(wc -l < "$T/bad.err")"
check bad_input_xml xmllint --noout "$T/bad.svg"
check bad_input_total grep -q '<title>all (17 samples, 100%)' "$T/bad.svg"

# --strict: fatal, nothing written.
"$KILN" flamegraph --strict -o "$T/strict.svg" "$IN/bad.folded" 2> "$T/strict.err"
check_eq strict_exit 1 $?
check_eq strict_no_file no "$([ -e "$T/strict.svg" ] && echo yes || echo no)"
check strict_message grep -q "bad.folded:2: .*(--strict)" "$T/strict.err"

# Many bad lines: ten shown, then a count.
for i in $(seq 1 40); do echo "broken line $i x"; done > "$T/many.folded"
echo "main;ok 1" >> "$T/many.folded"
"$KILN" top "$T/many.folded" > /dev/null 2> "$T/many.err"
check_eq many_bad_exit 0 $?
check_eq many_bad_shown 11 "$(wc -l < "$T/many.err")"
check many_bad_summary grep -q "40 malformed lines skipped" "$T/many.err"

# No valid line: a clear error, non-zero exit, no output file.
printf 'garbage\n\n   \n' > "$T/none.folded"
"$KILN" flamegraph -o "$T/none.svg" "$T/none.folded" 2> "$T/none.err"
check_eq no_valid_exit 1 $?
check no_valid_message grep -q "no valid folded line" "$T/none.err"
check_eq no_valid_no_file no "$([ -e "$T/none.svg" ] && echo yes || echo no)"
: > "$T/empty.folded"
"$KILN" top "$T/empty.folded" > /dev/null 2>&1
check_eq empty_file_exit 1 $?
"$KILN" flamegraph "$T/missing.folded" > /dev/null 2> "$T/missing.err"
check_eq missing_file_exit 1 $?
check missing_file_message grep -q "missing.folded: cannot open" "$T/missing.err"

# -o replaces a file whole; a failed run leaves the old one untouched and
# no temporary file behind.
echo old > "$T/keep.svg"
"$KILN" flamegraph -o "$T/keep.svg" "$T/none.folded" 2>/dev/null
check_eq failed_run_keeps_old old "$(cat "$T/keep.svg")"
"$KILN" flamegraph -o "$T/keep.svg" "$IN/basic.folded"
check o_replaces xmllint --noout "$T/keep.svg"
check_eq no_temp_left 1 "$(ls "$T" | grep -c '^keep\.svg')"
"$KILN" flamegraph -o "$T/nodir/x.svg" "$IN/basic.folded" 2> "$T/nodir.err"
check_eq unwritable_exit 1 $?
check unwritable_message grep -q "nodir/x.svg: cannot create" "$T/nodir.err"

# stdin equals the file; several files merge.
"$KILN" flamegraph < "$IN/basic.folded" > "$T/stdin.svg"
"$KILN" flamegraph "$IN/basic.folded" > "$T/file.svg"
check stdin_same_as_file cmp -s "$T/stdin.svg" "$T/file.svg"
"$KILN" flamegraph - < "$IN/basic.folded" > "$T/dash.svg"
check dash_is_stdin cmp -s "$T/dash.svg" "$T/file.svg"
cat "$IN/before.folded" "$IN/after.folded" > "$T/both.folded"
"$KILN" top -n 0 "$IN/before.folded" "$IN/after.folded" > "$T/merged.top"
"$KILN" top -n 0 "$T/both.folded" > "$T/cat.top"
check merged_files cmp -s "$T/merged.top" "$T/cat.top"
# Unsorted input gives the same graph as sorted input.
sort "$IN/basic.folded" | "$KILN" flamegraph > "$T/sorted.svg"
check order_independent cmp -s "$T/sorted.svg" "$T/file.svg"
# CRLF line ends and trailing blanks are accepted.
sed 's/$/\r/' "$IN/basic.folded" | "$KILN" flamegraph > "$T/crlf.svg" 2> "$T/crlf.err"
check crlf_same cmp -s "$T/crlf.svg" "$T/file.svg"

# A very deep stack (no recursion limit in the tool) and a very long name.
python3 -c '
import sys
sys.stdout.write(";".join("f%d" % i for i in range(200000)) + " 5\n")
sys.stdout.write("main;" + "x" * 1000000 + " 3\n")' > "$T/deep.folded"
"$KILN" flamegraph --minwidth 0 "$T/deep.folded" > "$T/deep.svg" 2> "$T/deep.err"
check_eq deep_exit 0 $?
check deep_xml xmllint --noout --huge "$T/deep.svg"
"$KILN" tree "$T/deep.folded" > /dev/null
check_eq deep_tree_exit 0 $?
"$KILN" convert --to pprof -o "$T/deep.pb.gz" "$T/deep.folded"
check_eq deep_pprof_exit 0 $?

# A wide profile (60000 leaves) and a bushy one (300 chains of 80 frames,
# all wider than 0.1 px): the default minwidth keeps the SVG to a few MB.
python3 -c '
import random
r = random.Random(7)
for i in range(60000):
    print("main;%s;leaf_%d %d" % (r.choice(["a","b","c"]), i, r.randint(1, 9)))' > "$T/wide.folded"
"$KILN" flamegraph "$T/wide.folded" > "$T/wide.svg"
check wide_small_svg test "$(stat -c %s "$T/wide.svg")" -lt 6000000
check wide_xml xmllint --noout "$T/wide.svg"
"$KILN" flamegraph --minwidth 0 "$T/wide.folded" > "$T/wide_all.svg" 2>/dev/null
check_eq wide_explicit_minwidth 60005 "$(grep -c '<g>' "$T/wide_all.svg")"
python3 -c '
for i in range(300):
    print(";".join("chain%d_f%d" % (i, d) for d in range(80)) + " 10")' > "$T/bushy.folded"
"$KILN" flamegraph "$T/bushy.folded" > "$T/bushy.svg" 2> "$T/bushy.err"
check bushy_budget test "$(grep -c '<g>' "$T/bushy.svg")" -le 16000
check bushy_small_svg test "$(stat -c %s "$T/bushy.svg")" -lt 6000000
check bushy_note grep -q "left out to keep the SVG small" "$T/bushy.err"
"$KILN" flamegraph --minwidth 0.1 "$T/bushy.folded" > "$T/bushy_all.svg" 2>/dev/null
check_eq bushy_explicit_minwidth 24001 "$(grep -c '<g>' "$T/bushy_all.svg")"

# Binary garbage: never a crash; XML stays valid for what parses.
head -c 200000 /dev/urandom > "$T/random.bin"
printf 'main;\x00nul;\xc0\x80overlong 3\n' >> "$T/random.bin"
"$KILN" flamegraph "$T/random.bin" > "$T/random.svg" 2>/dev/null
rc=$?
check random_no_crash test "$rc" -le 1
if [ "$rc" = 0 ]; then check random_xml xmllint --noout "$T/random.svg"; fi

# Fractional counts and huge counts.
printf 'a;b 0.5\na;c 1.25\nbig 123456789012345\n' | "$KILN" flamegraph > "$T/frac.svg"
check frac_xml xmllint --noout "$T/frac.svg"
check big_commas grep -q 'big (123,456,789,012,345 samples' "$T/frac.svg"
