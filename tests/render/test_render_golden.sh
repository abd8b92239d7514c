#!/usr/bin/env bash
# Golden-file tests of the renderer: every case of golden_cases.txt must give
# byte-for-byte the recorded output (diff -u on failure), twice in a row (the
# output is deterministic), and every SVG must parse as XML (xmllint).
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/golden.sh"

while read -r name args; do
  # shellcheck disable=SC2086
  kiln_golden_run "$name" $args > "$T/$name.out"
  # shellcheck disable=SC2086
  kiln_golden_run "$name" $args > "$T/$name.again"
  if diff -u "$kiln_golden_dir/golden/$name.out" "$T/$name.out" > "$T/$name.diff"; then
    pass "golden_$name"
  else
    fail "golden_$name" "output differs from golden/$name.out: $(head -c 600 "$T/$name.diff")"
  fi
  check "deterministic_$name" cmp -s "$T/$name.out" "$T/$name.again"
  case "$args" in
    flamegraph*) check "xmllint_$name" xmllint --noout "$T/$name.out" ;;
    *speedscope*) check "json_$name" python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$T/$name.out" ;;
  esac
done < <(kiln_golden_cases)
