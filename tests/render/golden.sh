#!/usr/bin/env bash
# Runs the golden cases of golden_cases.txt. Sourced by test_render_golden.sh;
# run directly with --record to rewrite golden/*.out from the current build.
# kiln_golden_run NAME ARGS...: prints the output of kiln ARGS in input/.
kiln_golden_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
kiln_golden_run() {
  shift
  (cd "$kiln_golden_dir/input" && "$KILN" "$@" 2>/dev/null)
}
# kiln_golden_cases: "NAME ARGS..." lines.
kiln_golden_cases() { grep -v '^#' "$kiln_golden_dir/golden_cases.txt" | grep -v '^$'; }

if [ "${1:-}" = --record ]; then
  KILN_BUILD=${KILN_BUILD:-build}
  KILN=${KILN:-$(cd "$kiln_golden_dir/../.." && pwd)/$KILN_BUILD/kiln}
  case "$KILN_BUILD" in /*) KILN=$KILN_BUILD/kiln ;; esac
  # diff.folded is itself produced by kiln diff, then kept as an input.
  (cd "$kiln_golden_dir/input" && "$KILN" diff before.folded after.folded > diff.folded)
  kiln_golden_cases | while read -r name args; do
    # shellcheck disable=SC2086
    kiln_golden_run "$name" $args > "$kiln_golden_dir/golden/$name.out"
    echo "recorded golden/$name.out"
  done
fi
