#!/usr/bin/env bash
# kiln convert: speedscope JSON checked against the schema's facts, pprof
# checked with the real pprof tool (built from Debian's sources by make):
# pprof -top must show the same total and the same per-function flat and
# cumulative counts as kiln top.
source "$(dirname "$0")/../lib.sh"
HERE="$(cd "$(dirname "$0")" && pwd)"
IN="$HERE/input"
PPROF="$B/pprof"

python3 -c '
import random
r = random.Random(3)
funcs = ["f%02d" % i for i in range(40)]
for i in range(3000):
    depth = r.randint(1, 12)
    print(";".join(["main"] + [r.choice(funcs) for _ in range(depth)]) + " %d" % r.randint(1, 50))
' > "$T/gen.folded"

for f in basic gen; do
  src="$IN/$f.folded"; [ -f "$src" ] || src="$T/$f.folded"
  "$KILN" convert --to speedscope -o "$T/$f.speedscope.json" "$src"
  check_eq "speedscope_${f}_exit" 0 $?
  check "speedscope_${f}_schema" python3 "$HERE/check_speedscope.py" "$T/$f.speedscope.json"
done
"$KILN" convert --to speedscope "$IN/escape.folded" > "$T/esc.json"
check speedscope_escape_schema python3 "$HERE/check_speedscope.py" "$T/esc.json"
python3 - "$T/basic.speedscope.json" > "$T/ss_total" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(int(sum(d["profiles"][0]["weights"])))
PY
check_eq speedscope_total "$(folded_total "$IN/basic.folded")" "$(cat "$T/ss_total")"

if [ ! -x "$PPROF" ]; then
  fail pprof_tool "missing $PPROF (make builds it: tools/render.mk)"
  exit 0
fi
# kiln top rows -> "name self total" sorted; pprof -top rows likewise.
kiln_rows() { "$KILN" top -n 0 "$1" | awk 'NR > 2 && $1 ~ /^[0-9]/ { print $5, $1, $3 }' | sort; }
pprof_rows() {
  "$PPROF" -top -nodecount=1000000 -nodefraction=0 -edgefraction=0 "$1" 2>/dev/null |
    awk '$2 ~ /%$/ && $1 ~ /^[0-9]/ { print $6, $1, $4 }' | sort
}
for f in basic gen; do
  src="$IN/$f.folded"; [ -f "$src" ] || src="$T/$f.folded"
  "$KILN" convert --to pprof -o "$T/$f.pb.gz" "$src"
  check_eq "pprof_${f}_exit" 0 $?
  check "pprof_${f}_gzip" gzip -t "$T/$f.pb.gz"
  total=$("$PPROF" -top "$T/$f.pb.gz" 2>/dev/null | sed -n 's/.* of \([0-9]*\) total.*/\1/p')
  check_eq "pprof_${f}_total" "$(folded_total "$src")" "$total"
  kiln_rows "$src" > "$T/$f.kiln_rows"
  pprof_rows "$T/$f.pb.gz" > "$T/$f.pprof_rows"
  if [ -s "$T/$f.kiln_rows" ] && diff -u "$T/$f.kiln_rows" "$T/$f.pprof_rows" > "$T/$f.rows.diff"; then
    pass "pprof_${f}_same_as_top"
  else
    fail "pprof_${f}_same_as_top" "$(head -c 500 "$T/$f.rows.diff")"
  fi
  # The first function by self is the same in both.
  k1=$("$KILN" top -n 1 "$src" | awk 'NR == 3 { print $5 }')
  p1=$("$PPROF" -top "$T/$f.pb.gz" 2>/dev/null | awk '$2 ~ /%$/ && $1 ~ /^[0-9]/ { print $6; exit }')
  check_eq "pprof_${f}_first_function" "$k1" "$p1"
done
# Deterministic bytes.
"$KILN" convert --to pprof -o "$T/again.pb.gz" "$IN/basic.folded"
check pprof_deterministic cmp -s "$T/basic.pb.gz" "$T/again.pb.gz"

# The sample type follows the profile kind (file name or --kind).
cp "$IN/basic.folded" "$T/prog.123.alloc_bytes.folded"
"$KILN" convert --to pprof -o "$T/alloc.pb.gz" "$T/prog.123.alloc_bytes.folded"
check pprof_kind_alloc_bytes grep -q 'alloc_space/bytes' <("$PPROF" -raw "$T/alloc.pb.gz" 2>/dev/null)
"$KILN" convert --to pprof --kind leak_count -o "$T/leak.pb.gz" "$IN/basic.folded"
check pprof_kind_leak_count grep -q 'leak_objects/count' <("$PPROF" -raw "$T/leak.pb.gz" 2>/dev/null)
"$KILN" convert --to pprof -o "$T/cpu.pb.gz" "$IN/basic.folded"
check pprof_kind_cpu grep -q 'samples/count' <("$PPROF" -raw "$T/cpu.pb.gz" 2>/dev/null)
"$KILN" convert --to speedscope "$T/prog.123.alloc_bytes.folded" > "$T/alloc.json"
check speedscope_unit_bytes grep -q '"unit":"bytes"' "$T/alloc.json"
# A differential profile is refused.
"$KILN" convert --to pprof -o "$T/d.pb.gz" "$IN/diff.folded" 2>/dev/null
check_eq convert_refuses_diff 1 $?
