#!/usr/bin/env bash
# A bounded libFuzzer + ASan + UBSan run over the folded parser and the
# writers behind it (make fuzz runs longer). Seeds: the golden inputs.
source "$(dirname "$0")/../lib.sh"
FUZZ="$B/tests/render/fuzz_folded"
SECONDS_BUDGET=${KILN_FUZZ_SECONDS:-20}
if [ ! -x "$FUZZ" ]; then
  fail fuzz_binary "missing $FUZZ (make builds it: tools/render.mk)"
  exit 0
fi
mkdir -p "$T/corpus"
cp "$(dirname "$0")"/input/*.folded "$T/corpus/"
# A stacks file seed (mode byte, then the file; its stacks total 3).
printf '\001kiln-stacks\t1\nmodule\t1\t-\t1000\t1000\t2000\t0\t/nonexistent/prog\nframe\t1\t0\t0\t-\t[kiln: table full]\nframe\t5\t1\t1a0\t_Z1fv\tf()\nframe\t6\t0\t7f00\t-\tJIT:x\nkind\tcpu\t3\n2\t5 6\n1\t5\n' \
  > "$T/corpus/seed.stacks"
(cd "$T" && "$FUZZ" -max_total_time="$SECONDS_BUDGET" -max_len=4096 -timeout=10 \
   -rss_limit_mb=2048 "$T/corpus" > "$T/fuzz.log" 2>&1)
rc=$?
if [ "$rc" = 0 ] && grep -q '^Done [0-9]* runs' "$T/fuzz.log"; then
  pass "fuzz_folded_${SECONDS_BUDGET}s ($(grep -o '^Done [0-9]* runs' "$T/fuzz.log"))"
else
  fail fuzz_folded "exit $rc: $(grep -v '^kiln:' "$T/fuzz.log" | grep -A20 -m1 'ERROR\|==' | head -30)"
fi
