#!/usr/bin/env bash
# The SVG in a real browser: headless Chromium (started here) loads a kiln
# flame graph; a click on a frame must zoom it, Ctrl-F with a regex must show
# the matched share computed from the folded file's exact counts.
source "$(dirname "$0")/../lib.sh"
HERE="$(cd "$(dirname "$0")" && pwd)"
IN="$HERE/input"

"$KILN" flamegraph -o "$T/basic.svg" "$IN/basic.folded"
# Expected share of stacks with a frame matching 'json' (exact counts).
want=$(awk '{ n = $NF; t += n; s = $0; sub(/ [0-9]+$/, "", s); if (s ~ /json/) m += n }
            END { printf "%.1f", 100 * m / t }' "$IN/basic.folded")
timeout 120 python3 "$HERE/browser_check.py" "$T/basic.svg" serialize_response json "$want"
rc=$?
[ "$rc" = 0 ] || fail browser_check "browser_check.py exited with $rc"
