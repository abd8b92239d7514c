#!/usr/bin/env bash
# kiln report without a browser: the page is self-contained, its data (read
# back from the embedded JSON) holds every kind with the folded files'
# exact totals, kernel share, pruning with an exact top table, diff totals,
# escaping that cannot close the script, and the error paths.
source "$(dirname "$0")/../lib.sh"
HERE="$(cd "$(dirname "$0")" && pwd)"
IN="$HERE/input"
J() { python3 "$HERE/report_json.py" "$@"; }

"$KILN" report -o "$T/cat.html" "$IN/leaks_categories"
check_eq report_exit 0 $?
check_eq report_no_network 0 "$(grep -Eci 'https?://|<link|@import|<script[^>]*src=|<img' "$T/cat.html")"
check_eq report_two_scripts 2 "$(grep -o '</script>' "$T/cat.html" | wc -l)"
want=$(ls "$IN/leaks_categories" | sed -n 's/^svc\.400\.\(.*\)\.folded$/\1/p' | sort | tr '\n' ' ')
check_eq report_every_kind "$want" "$(J "$T/cat.html" '" ".join(sorted(k["kind"] for k in d["kinds"])) + " "')"
bad=0
for f in "$IN"/leaks_categories/*.folded; do
  kind=$(basename "$f" .folded); kind=${kind#svc.400.}
  got=$(J "$T/cat.html" "[k['total'] for k in d['kinds'] if k['kind'] == '$kind'][0]")
  [ "$got" = "$(folded_total "$f")" ] || { bad=1; echo "# $kind: $got vs $(folded_total "$f")"; }
done
check_eq report_kind_totals 0 "$bad"
check_eq report_units '["bytes", "blocks"]' "$(J "$T/cat.html" '[k["unit"] for k in d["kinds"] if k["kind"] in ("definite_bytes", "definite_count")]')"
check_eq report_process_label '["svc [400]"]' "$(J "$T/cat.html" '[p["label"] for p in d["procs"]]')"
check_eq report_leak_text 1 "$(J "$T/cat.html" '1 if "definitely lost" in d.get("leaks", "") else 0')"

# Kernel time: stacks with [kernel] (shared_decisions.md) or perf's _[k].
printf 'main;do_io;__libc_pread64;[kernel];ksys_pread64_[k] 20\nmain;work 70\nmain;tcp_v4_rcv_[k] 5\nmain;fault;[kernel] 5\n' > "$T/k.cpu.folded"
"$KILN" report -o "$T/k.html" "$T/k.cpu.folded"
check_eq report_kernel_share 0.3 "$(J "$T/k.html" 'd["kinds"][0]["kernel"]')"

# Exact counts: past 2^53 every digit reaches the page's data; fractional
# input as thousandths, written back in the input's unit.
printf 'main;f 9007199254740993\nmain;g 2\n' > "$T/big.cpu.folded"
"$KILN" report -o "$T/big.html" "$T/big.cpu.folded"
check_eq report_exact_uint64 1 "$(grep -c '"total":9007199254740995,' "$T/big.html")"
printf 'main;f 0.5\nmain;g 1.25\n' > "$T/frac.cpu.folded"
"$KILN" report -o "$T/frac.html" "$T/frac.cpu.folded"
check_eq report_fraction_total 1.75 "$(J "$T/frac.html" 'd["kinds"][0]["total"]')"
check_eq report_fraction_selfs '[0, 0, 0, 0.5, 1.25]' "$(J "$T/frac.html" 'sorted(d["kinds"][0]["self"])')"
# A diff whose AFTER brings fractions: BEFORE's counts in the same unit.
printf 'main;f 3\n' > "$T/int.cpu.folded"
"$KILN" report --diff -o "$T/fd.html" "$T/int.cpu.folded" "$T/frac.cpu.folded"
check_eq report_diff_fraction_units '[3, 1.75]' "$(J "$T/fd.html" '[d["kinds"][0]["total0"], d["kinds"][0]["total"]]')"

# Pruned to --max-nodes: few frames kept, the top table still exact.
if cc -O2 -o "$T/gen_wide" "$HERE/gen_wide.c"; then
  "$T/gen_wide" 20000 > "$T/wide.folded"
  "$KILN" report --max-nodes 500 -o "$T/wide.html" "$T/wide.folded"
  kept=$(J "$T/wide.html" 'd["kinds"][0]["kept"]')
  if [ "$kept" -le 502 ] && [ "$(J "$T/wide.html" 'd["kinds"][0]["pruned"]')" = true ]; then
    pass report_pruned
  else
    fail report_pruned "kept $kept"
  fi
  J "$T/wide.html" '"\n".join("%s %s %s" % (d["names"][r[0]], r[1], r[2]) for r in sorted(d["kinds"][0]["top"], key=lambda r: d["names"][r[0]]))' > "$T/wide.top"
  "$KILN" top -n 0 "$T/wide.folded" | awk 'NR > 2 { print $5, $1, $3 }' | sort > "$T/wide.want"
  check report_pruned_top_exact cmp -s "$T/wide.want" <(sort "$T/wide.top")
  check_eq report_pruned_total "$(folded_total "$T/wide.folded")" "$(J "$T/wide.html" 'd["kinds"][0]["total"]')"
fi

# Diff: both totals, one trie.
"$KILN" report --diff -o "$T/diff.html" "$IN/before.folded" "$IN/after.folded"
check_eq report_diff_totals "$(folded_total "$IN/before.folded") $(folded_total "$IN/after.folded")" \
  "$(J "$T/diff.html" '"%s %s" % (d["kinds"][0]["total0"], d["kinds"][0]["total"])')"

# Names that look like markup stay data.
"$KILN" report -o "$T/esc.html" "$IN/escape.folded" 2> /dev/null
check_eq report_escape_scripts 2 "$(grep -o '</script>' "$T/esc.html" | wc -l)"
check_eq report_escape_names 1 "$(J "$T/esc.html" '1 if "a<b>&c\"d'"'"'e" in d["names"] and "]]>" in d["names"] else 0')"

# Errors: one kiln: line and exit 1; usage errors exit 2; no partial file.
"$KILN" report -o "$T/x.html" "$T/missing" 2> "$T/err"; check_eq report_missing_exit 1 $?
check_eq report_missing_one_line 1 "$(wc -l < "$T/err")"
check report_missing_no_file test ! -e "$T/x.html"
mkdir -p "$T/empty"; "$KILN" report -o "$T/x.html" "$T/empty" 2> /dev/null; check_eq report_empty_dir_exit 1 $?
"$KILN" report --diff "$IN/before.folded" > /dev/null 2>&1; check_eq report_diff_usage 2 $?
"$KILN" report > /dev/null 2>&1; check_eq report_no_operand_usage 2 $?
"$KILN" report --strict -o "$T/x.html" "$IN/bad.folded" 2> /dev/null; check_eq report_strict_exit 1 $?
"$KILN" report -o "$T/bad.html" "$IN/bad.folded" 2> "$T/bad.err"; check_eq report_lenient_exit 0 $?
check report_lenient_warns grep -q "^kiln: .*bad.folded:[0-9]*: " "$T/bad.err"

# Diff of two run directories: each side's process under its program name.
mkdir -p "$T/d1" "$T/d2"
printf 'main;spin 70\nmain;idle 30\n' > "$T/d1/app.11.cpu.folded"
printf 'main;spin 90\nmain;idle 10\n' > "$T/d2/app.22.cpu.folded"
"$KILN" report --diff -o "$T/dd.html" "$T/d1" "$T/d2"
check_eq report_diff_dirs '[100, 100, ["app"]]' "$(J "$T/dd.html" '[d["kinds"][0]["total0"], d["kinds"][0]["total"], [p["label"] for p in d["procs"]]]')"
check_eq report_diff_dirs_one_trie 1 "$(J "$T/dd.html" 'sum(1 for i, n in enumerate(d["kinds"][0]["name"]) if d["names"][n] == "spin")')"

# The committed C strings are the page's script and style as they are.
check report_assets_in_sync cmp -s "$KILN_ROOT/tools/report_assets.c" \
  <(sh "$KILN_ROOT/tools/report_gen.sh" "$KILN_ROOT/tools/report_page.js" "$KILN_ROOT/tools/report_page.css")
