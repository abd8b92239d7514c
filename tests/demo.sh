#!/usr/bin/env bash
# make demo: profile the examples under the preload, write their folded
# profiles (and flame graphs), then say what was written and where.
set -u
cd "$(dirname "$0")/.."
B=${KILN_BUILD:-build}
OUT="$B/demo"
HZ=${DEMO_HZ:-999}
rm -rf "$OUT"
mkdir -p "$OUT"
LIB=$(cd "$B" && pwd)/libkiln.so

demo() { # NAME COMMAND...: profile one example into $OUT/NAME
  local name=$1; shift
  echo "-- $name: $*"
  KILN_HZ=$HZ KILN_OUT="$OUT/$name" LD_PRELOAD=$LIB "$@" 2>&1 | sed 's/^/   /'
}

demo cpu_split "$B/examples/cpu_split" 40
demo threads "$B/examples/threads"
demo recursion "$B/examples/recursion" 200
demo shapes "$B/examples/shapes"
demo plugin "$B/examples/plugin"
demo forkexec "$B/examples/forkexec"
KILN_UNWIND=fp demo cpu_split_fp "$B/examples/cpu_split.fp" 40
KILN_MODE=cpu,alloc demo leaky "$B/examples/leaky"
KILN_MODE=alloc demo churn "$B/examples/churn" 2000000

echo
have_fg=no
"$B/kiln" flamegraph --help >/dev/null 2>&1 && have_fg=yes
for f in $(find "$OUT" -name '*.folded' | sort); do
  [ -s "$f" ] || continue
  kind=${f%.folded}; kind=${kind##*.}
  case $kind in cpu) count=samples ;; *_bytes) count=bytes ;; *) count=calls ;; esac
  if [ $have_fg = yes ]; then
    "$B/kiln" flamegraph --title "$(basename "$f" .folded) ($kind)" --countname "$count" \
      -o "${f%.folded}.svg" "$f" || echo "kiln: flamegraph failed for $f" >&2
  fi
done
echo "Profiles written under $OUT:"
find "$OUT" -type f \( -name '*.folded' -o -name '*.svg' -o -name '*.json' \) | sort | sed 's/^/  /'
if [ -x "$B/kiln" ] && "$B/kiln" top --help >/dev/null 2>&1; then
  echo
  echo "Top functions of cpu_split (expected: work60 60%, work30 30%, work10 10%):"
  "$B/kiln" top -n 6 "$OUT"/cpu_split/cpu_split.*.cpu.folded | sed 's/^/  /'
fi
if "$B/kiln" leaks --help >/dev/null 2>&1; then
  echo
  echo "Leaks of the leaky example (known by construction: 11,176 bytes in 12 blocks):"
  "$B/kiln" leaks -n 3 "$OUT/leaky" | sed 's/^/  /'
fi
[ $have_fg = yes ] && echo && echo "Open any .svg in a browser: click to zoom, Ctrl-F to search."
if "$B/kiln" report --help >/dev/null 2>&1 &&
   "$B/kiln" report --title "kiln demo: every example" -o "$OUT/report.html" "$OUT"; then
  echo
  echo "One page with every example's profiles (flame graph, top, tree, sandwich, kinds):"
  echo "  $OUT/report.html"
fi
exit 0
