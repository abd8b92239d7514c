#!/usr/bin/env bash
# Bounded libFuzzer + ASan + UBSan runs over every parser the tool has: the
# folded parser and the writers behind it, meta.json, and the names of an
# output directory with the dump-signal grammar (make fuzz runs longer).
# The budgets add up to under 30 s (KILN_FUZZ_SECONDS scales them).
source "$(dirname "$0")/../lib.sh"
IN="$(cd "$(dirname "$0")/input" && pwd)"
scale=${KILN_FUZZ_SECONDS:-0}

# Seeds for meta.json: the runtime's shape, and the hostile cases.
mkdir -p "$T/seed_meta" "$T/seed_sets"
printf '{\n  "kiln_version": "0.1.0",\n  "prog": "app",\n  "pid": 42,\n  "dump_reason": "signal",\n  "dump_seq": 3,\n  "tag": "20260101T000000Z-0003",\n  "samples": 18446744073709551615,\n  "hz_delivered": 99.5,\n  "health": {"ok": true, "warnings": ["a\\u00e9\\ud83d\\ude00"]},\n  "files": ["a", "b"]\n}\n' > "$T/seed_meta/runtime.json"
printf '{"prog": "unterminated\n}' > "$T/seed_meta/unterminated.json"
printf '{"a": [[[[[[1e5, -0.5, null, false]]]]]]}' > "$T/seed_meta/nested.json"
printf 'app.42.cpu.folded\napp.42.meta.json\napp.42.20260101T000000Z-0001.cpu.folded\napp.42.20260101T000000Z-0001.meta.json\n.app.42.cpu.folded.42.7.tmp\nUSR2\nRTMIN+3\n' > "$T/seed_sets/names"
printf 'my.prog.7.20260101T000000Z-0002.live_bytes.folded\nmy.prog.7.20260101T000000Z-0002.meta.json\nSIGHUP\n12\nALRM\nRTMAX-2\n' > "$T/seed_sets/names2"

# fuzz NAME SECONDS SEEDS...
fuzz() {
  local name=$1 secs=$2; shift 2
  [ "$scale" -gt 0 ] 2>/dev/null && secs=$scale
  local bin="$B/tests/render/fuzz_$name" corpus="$T/corpus_$name"
  if [ ! -x "$bin" ]; then
    fail "fuzz_$name" "missing $bin (make builds it: tools/render.mk)"
    return
  fi
  mkdir -p "$corpus"
  cp "$@" "$corpus/"
  (cd "$T" && TMPDIR="$T" "$bin" -max_total_time="$secs" -max_len=4096 -timeout=10 \
     -rss_limit_mb=2048 "$corpus" > "$T/fuzz_$name.log" 2>&1)
  local rc=$?
  if [ "$rc" = 0 ] && grep -q '^Done [0-9]* runs' "$T/fuzz_$name.log"; then
    pass "fuzz_${name}_${secs}s ($(grep -o '^Done [0-9]* runs' "$T/fuzz_$name.log"))"
  else
    fail "fuzz_$name" "exit $rc: $(grep -v '^kiln:' "$T/fuzz_$name.log" | grep -A20 -m1 'ERROR\|==' | head -30)"
  fi
}

# A stacks file seed for the folded harness (mode byte, then the file;
# its stacks total 3).
mkdir -p "$T/seed_stacks"
printf '\001kiln-stacks\t1\nmodule\t1\t-\t1000\t1000\t2000\t0\t/nonexistent/prog\nframe\t1\t0\t0\t-\t[kiln: table full]\nframe\t5\t1\t1a0\t_Z1fv\tf()\nframe\t6\t0\t7f00\t-\tJIT:x\nkind\tcpu\t3\n2\t5 6\n1\t5\n' \
  > "$T/seed_stacks/seed.stacks"
fuzz folded 12 "$IN"/*.folded "$T"/seed_stacks/*
fuzz meta 8 "$T"/seed_meta/*
fuzz sets 8 "$T"/seed_sets/*
