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
# ... and of the stacks through serialize_response (the share once zoomed).
zwant=$(awk '{ n = $NF; s = $0; sub(/ [0-9]+$/, "", s); if (s ~ /serialize_response/) { t += n; if (s ~ /json/) m += n } }
             END { printf "%.1f", 100 * m / t }' "$IN/basic.folded")
timeout 120 python3 "$HERE/browser_check.py" "$T/basic.svg" serialize_response json "$want" "$zwant"
rc=$?
[ "$rc" = 0 ] || fail browser_check "browser_check.py exited with $rc"

# flamegraph.pl fidelity in the browser (svg_check.py).
printf 'main;net_rx;tcp_v4_rcv_[k] 25\nmain;net_rx;ip_rcv_[k] 25\nmain;java_work_[j] 30\nmain;inl_[i];--;waker_[w] 20\n' > "$T/annot.folded"
"$KILN" flamegraph -o "$T/annot.svg" "$T/annot.folded"
printf 'main;mid;WWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWW 30\nmain;mid;MMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMMM 20\nmain;mid;iiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiiii 50\nmain;other 900\n' > "$T/wide.folded"
"$KILN" flamegraph -o "$T/wide.svg" "$T/wide.folded"
long=$(printf 'std::function<void (%s)>::operator()' "$(head -c 1450 /dev/zero | tr '\0' 'x')")
printf 'main;%s 10\nmain;b 10\n' "$long" > "$T/long.folded"
"$KILN" flamegraph -o "$T/long.svg" "$T/long.folded"
awk 'BEGIN { for (i = 0; i < 10000; i++) printf "main;mid%d;%s%d 1\n", i, (i % 2 ? "other" : "leaf"), i }' > "$T/pruned.folded"
"$KILN" flamegraph -o "$T/pruned.svg" "$T/pruned.folded" 2> /dev/null
timeout 120 python3 "$HERE/svg_check.py" "$T/annot.svg" "$T/wide.svg" "$T/long.svg" "$T/pruned.svg"
rc=$?
[ "$rc" = 0 ] || fail svg_check "svg_check.py exited with $rc"
