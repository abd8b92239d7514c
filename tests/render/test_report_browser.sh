#!/usr/bin/env bash
# kiln report in a real browser: a server run with interval sets (cpu and
# alloc), a diff of two profiles and a 1M-line profile are written as
# pages; report_check.py drives headless Chromium over them (load, zoom,
# search, kinds, top, tree, focus, sandwich, time chart, diff colours,
# scale) and saves a screenshot of each view under $KILN_BUILD/report-shots.
source "$(dirname "$0")/../lib.sh"
HERE="$(cd "$(dirname "$0")" && pwd)"
W="$T/work"
SHOTS="$B/report-shots"
mkdir -p "$W" "$SHOTS"

KILN_MODE=cpu,alloc KILN_INTERVAL=1 KILN_OUT="$W/run" LD_PRELOAD="$LIBKILN" \
  "$EX/server" 3 > /dev/null 2>&1
check report_run_written "$KILN" report -o "$W/run.html" "$W/run"
cp "$HERE/input/before.folded" "$HERE/input/after.folded" "$W/"
check report_diff_written "$KILN" report --diff -o "$W/diff.html" "$W/before.folded" "$W/after.folded"
printf 'main;do_io;__libc_pread64;[kernel];ksys_pread64_[k] 20\nmain;work 70\nmain;tcp_v4_rcv_[k] 5\nmain;fault;[kernel] 5\n' > "$W/k.cpu.folded"
check report_kernel_written "$KILN" report -o "$W/kernel.html" "$W/k.cpu.folded"
printf 'main;solve;fib;fib;fib;fib;fib 40\nmain;solve;fib;fib;fib 20\nmain;ns::Map<int, long>::find(int const&) const 30\n' > "$W/rec.folded"
check report_rec_written "$KILN" report -o "$W/rec.html" "$W/rec.folded"
if cc -O2 -o "$T/gen_wide" "$HERE/gen_wide.c"; then
  "$T/gen_wide" 1000000 > "$W/wide.folded"
  check report_big_written "$KILN" report -o "$W/big.html" "$W/wide.folded"
  rm -f "$W/wide.folded"
fi
timeout 300 python3 "$HERE/report_check.py" "$KILN" "$W" "$SHOTS"
rc=$?
[ "$rc" = 0 ] || fail report_check "report_check.py exited with $rc"
