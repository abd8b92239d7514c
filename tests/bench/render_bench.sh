#!/usr/bin/env bash
# Renderer benchmark (make bench): generates 100k- and 1M-line folded files
# (tests/bench/gen_folded.c, about 1.7 KB a line like the file the issue
# timed flamegraph.pl on) and reports, for kiln flamegraph, top and
# convert --to pprof: wall time, lines/s, MB/s and peak memory
# (/usr/bin/time -v). flamegraph.pl is not packaged in Debian, so the
# comparison quotes the issue's measurements of it.
# KILN_BENCH_LINES="100000 1000000" and KILN_BENCH_KEEP=1 (keep the inputs).
set -u
cd "$(dirname "$0")/../.."
BUILD=${KILN_BUILD:-build}
KILN=$BUILD/kiln
GEN=$BUILD/tests/bench/gen_folded
DIR=$BUILD/bench-render
mkdir -p "$DIR" "$(dirname "$GEN")"
if [ ! -x "$GEN" ] || [ tests/bench/gen_folded.c -nt "$GEN" ]; then
  ${CC:-cc} -O2 -std=c11 -o "$GEN" tests/bench/gen_folded.c || exit 1
fi
[ -x "$KILN" ] || { echo "render_bench: build $KILN first (make)"; exit 1; }
[ -x /usr/bin/time ] || { echo "render_bench: needs /usr/bin/time (Debian package 'time')"; exit 1; }

# measure LABEL LINES BYTES CMD...: one result line.
measure() {
  local label=$1 lines=$2 bytes=$3; shift 3
  /usr/bin/time -v "$@" > /dev/null 2> "$DIR/time.log"
  local rc=$?
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, t, ":"); s = 0;
           for (i = 1; i <= n; i++) s = s * 60 + t[i]; print s }' "$DIR/time.log")
  rss=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$DIR/time.log")
  awk -v l="$label" -v n="$lines" -v b="$bytes" -v w="$wall" -v r="$rss" -v rc="$rc" 'BEGIN {
    if (w <= 0) w = 0.01
    printf "  %-22s %8.2f s %10.0f lines/s %8.1f MB/s   peak %7.1f MB (%.2f x input)%s\n",
      l, w, n / w, b / 1e6 / w, r / 1024, r * 1024 / b, rc ? "  [exit " rc "]" : "" }'
  echo "$wall $rss" > "$DIR/last"
}

for lines in ${KILN_BENCH_LINES:-100000 1000000}; do
  in=$DIR/gen_$lines.folded
  [ -s "$in" ] || "$GEN" "$lines" > "$in"
  bytes=$(stat -c %s "$in")
  echo "input: $lines lines, $(awk -v b="$bytes" 'BEGIN { printf "%.1f MB", b / 1e6 }')"
  measure "kiln flamegraph" "$lines" "$bytes" "$KILN" flamegraph -o "$DIR/out.svg" "$in"
  read -r fg_wall fg_rss < "$DIR/last"
  echo "  (SVG: $(stat -c %s "$DIR/out.svg") bytes)"
  measure "kiln top" "$lines" "$bytes" "$KILN" top "$in"
  measure "kiln convert pprof" "$lines" "$bytes" "$KILN" convert --to pprof -o "$DIR/out.pb.gz" "$in"
  case $lines in
    100000) pl_wall=18; pl_mb=1024 ;;
    1000000) pl_wall=318; pl_mb=9933 ;;
    *) pl_wall= ;;
  esac
  if [ -n "$pl_wall" ]; then
    awk -v w="$fg_wall" -v r="$fg_rss" -v pw="$pl_wall" -v pm="$pl_mb" -v n="$lines" 'BEGIN {
      printf "  flamegraph.pl (issue figures, %d lines): %d s, %.1f GiB -> kiln is %.0fx faster, uses %.0fx less memory\n",
        n, pw, pm / 1024, pw / w, pm / (r / 1024) }'
  fi
  [ "${KILN_BENCH_KEEP:-}" = 1 ] || rm -f "$in"
done
rm -f "$DIR/out.svg" "$DIR/out.pb.gz" "$DIR/time.log" "$DIR/last"
