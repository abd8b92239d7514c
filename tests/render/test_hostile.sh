#!/usr/bin/env bash
# The tool against hostile inputs, targets, servers and output directories
# (issue 11, items 17-21): wide profiles, device and FIFO targets, a server
# that trickles or sends escape sequences, planted FIFOs, device links and
# forged meta.json files, huge counts, deep recursion, C1 controls in frame
# names, temporaries left by a killed writer, and the dump-signal grammar
# the runtime and the tool share. Every check has a deadline: a hang fails.
source "$(dirname "$0")/../lib.sh"
IN="$(cd "$(dirname "$0")/input" && pwd)"

pids=()
cleanup() {
  { for p in "${pids[@]}"; do kill -KILL "$p"; done; wait; } 2> /dev/null
  rm -rf "$T"
}
trap cleanup EXIT

# one_line NAME STATUS REGEX RC ERRFILE: exit status and a single kiln: line.
one_line() {
  check_eq "$1_exit" "$2" "$4"
  if [ "$(wc -l < "$5")" -eq 1 ] && grep -Eq "$3" "$5"; then
    pass "$1_message"
  else
    fail "$1_message" "want one line matching '$3', got: $(head -c 600 "$5")"
  fi
}
# ms_since START_NS
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
# no_byte NAME FILE HEX: FILE holds no byte 0xHEX.
no_byte() {
  if python3 -c 'import sys; sys.exit(bytes([int(sys.argv[2], 16)]) in open(sys.argv[1], "rb").read())' "$2" "$3"; then
    pass "$1"
  else
    fail "$1" "byte 0x$3 reached the output: $(od -c "$2" | head -5)"
  fi
}

# ---- 17: more than 1,024 distinct root frames (the explicit stack of
# kiln top was sized 1,024 and never grown for the root's children).
for n in 3000 100000; do
  awk -v n=$n 'BEGIN { for (i = 1; i <= n; i++) printf "root%d;leaf 1\n", i }' > "$T/wide$n.folded"
  timeout 20 "$KILN" top -n 3 "$T/wide$n.folded" > "$T/wide$n.out" 2> "$T/wide$n.err"
  check_eq "top_wide_${n}_exit" 0 $?
  check_eq "top_wide_${n}_header" "total $n in $((n + 1)) functions; by self" "$(head -n 1 "$T/wide$n.out")"
done
timeout 20 "$KILN" top --total -n 0 "$T/wide3000.folded" > "$T/wide_all.out"
check_eq top_wide_all_rows 3003 "$(wc -l < "$T/wide_all.out")"
# kiln record's summary goes through the same table.
mkdir -p "$T/recwide"
timeout 30 "$KILN" record -o "$T/recwide" -- sh -c "cp '$T/wide3000.folded' \"\$KILN_OUT/wide.1.cpu.folded\"" \
  > /dev/null 2> "$T/recwide.err"
check_eq record_wide_exit 0 $?
check record_wide_summary grep -q "total 3000 in 3001 functions" "$T/recwide.err"
# Many distinct names and frames: the hash tables grow.
awk 'BEGIN { for (i = 1; i <= 200000; i++) printf "main;f%d;g%d 1\n", i, i % 7 }' > "$T/names.folded"
timeout 30 "$KILN" top -n 1 "$T/names.folded" > "$T/names.out"
check_eq top_many_names "total 200000 in 200008 functions; by self" "$(head -n 1 "$T/names.out")"

# ---- 18: output targets that are not regular files are written in place.
"$KILN" flamegraph "$IN/basic.folded" > "$T/ref.svg"
if [ "$(id -u)" = 0 ] && mknod "$T/null" c 1 3 2> /dev/null; then
  "$KILN" flamegraph -o "$T/null" "$IN/basic.folded"
  check_eq out_device_exit 0 $?
  check out_device_still_device test -c "$T/null"
else
  echo "note: not root, the device-node case uses /dev/null itself"
  "$KILN" flamegraph -o /dev/null "$IN/basic.folded"
  check_eq out_device_exit 0 $?
  check out_device_still_device test -c /dev/null
fi
mkfifo "$T/fifo"
(timeout 10 cat "$T/fifo" > "$T/fifo.out") &
reader=$!
timeout 10 "$KILN" flamegraph -o "$T/fifo" "$IN/basic.folded"
check_eq out_fifo_exit 0 $?
wait "$reader"
check out_fifo_still_fifo test -p "$T/fifo"
check out_fifo_content cmp -s "$T/ref.svg" "$T/fifo.out"
# Descriptor names. Not /dev/stdout itself: a broken build would replace
# the machine's /dev/stdout link; a link of our own to /proc/self/fd/1 is
# the same case (a symbolic link to the descriptor), and /dev/fd/1 the name.
ln -s /proc/self/fd/1 "$T/stdout"
"$KILN" flamegraph -o "$T/stdout" "$IN/basic.folded" > "$T/stdout.svg"
check_eq out_stdout_link_exit 0 $?
check out_stdout_link_content cmp -s "$T/ref.svg" "$T/stdout.svg"
check out_stdout_link_kept test -L "$T/stdout"
"$KILN" flamegraph -o "$T/stdout" "$IN/basic.folded" | cat > "$T/pipe.svg"
check out_stdout_link_pipe cmp -s "$T/ref.svg" "$T/pipe.svg"
"$KILN" flamegraph -o /dev/fd/1 "$IN/basic.folded" | cat > "$T/fd1.svg"
check out_dev_fd_pipe cmp -s "$T/ref.svg" "$T/fd1.svg"
echo "already here" > "$T/appended.svg"
"$KILN" flamegraph -o /dev/fd/1 "$IN/basic.folded" >> "$T/appended.svg"
check_eq out_dev_fd_appends "$(( $(stat -c %s "$T/ref.svg") + 13 ))" "$(stat -c %s "$T/appended.svg")"
# A symbolic link to a regular file: the target is replaced, the link kept.
echo old > "$T/target.svg"
ln -s target.svg "$T/link.svg"
"$KILN" flamegraph -o "$T/link.svg" "$IN/basic.folded"
check_eq out_symlink_exit 0 $?
check out_symlink_kept test -L "$T/link.svg"
check out_symlink_target_written cmp -s "$T/ref.svg" "$T/target.svg"
# A regular file is still replaced whole (a new inode by rename).
echo old > "$T/regular.svg"
before=$(stat -c %i "$T/regular.svg")
"$KILN" flamegraph -o "$T/regular.svg" "$IN/basic.folded"
after=$(stat -c %i "$T/regular.svg")
if [ "$before" != "$after" ] && cmp -s "$T/ref.svg" "$T/regular.svg"; then
  pass out_regular_renamed
else
  fail out_regular_renamed "inode $before -> $after"
fi
check_eq out_no_temporaries "" "$(ls "$T" | grep '\.tmp')"

# ---- 19: kiln push against hostile servers.
# A server that answers one byte every 0.5 s, forever.
python3 -c 'import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); s.listen(4)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
c, _ = s.accept(); c.settimeout(0.2)
end = time.time() + 20
while time.time() < end:
    try:
        c.recv(65536)
    except Exception:
        pass
    try:
        c.send(b"H")
    except Exception:
        break
    time.sleep(0.5)' "$T/trickle.port" &
pids+=($!)
for _ in $(seq 100); do [ -s "$T/trickle.port" ] && break; sleep 0.05; done
start=$(date +%s%N)
timeout 20 "$KILN" push --timeout 2 --url "http://127.0.0.1:$(cat "$T/trickle.port")" \
  "$IN/basic.folded" > /dev/null 2> "$T/trickle.err"
rc=$?
ms=$(ms_since "$start")
one_line push_trickle 1 '^kiln: push: .*timed out' "$rc" "$T/trickle.err"
if [ "$ms" -ge 1900 ] && [ "$ms" -lt 4000 ]; then pass push_trickle_deadline; else fail push_trickle_deadline "${ms} ms for --timeout 2"; fi
# Header injection through the URL: refused before any connection.
for u in $'http://127.0.0.1:1/a\r\nX-Injected: 1' 'http://127.0.0.1:1/a b' $'http://127.0.0.1:1/\x1b[2J'; do
  "$KILN" push --url "$u" "$IN/basic.folded" > /dev/null 2> "$T/url.err"
  rc=$?
  one_line "push_url_refused_$(printf %s "$u" | od -An -tx1 | tr -d ' \n' | tail -c 8)" 2 \
    '^kiln: push: --url must not contain spaces, control characters' "$rc" "$T/url.err"
done
# A reason phrase with escape sequences: printed escaped.
python3 -c 'import socket, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(4)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
c, _ = s.accept(); c.settimeout(2)
try:
    c.recv(65536)
except Exception:
    pass
c.sendall(b"HTTP/1.1 500 \x1b]0;owned\x07\x1b[31mBad\x9b\r\nContent-Length: 9\r\n\r\n\x1b[2Jboom\x1b\n")
c.close()' "$T/evil.port" &
pids+=($!)
for _ in $(seq 100); do [ -s "$T/evil.port" ] && break; sleep 0.05; done
timeout 10 "$KILN" push --timeout 5 --url "http://127.0.0.1:$(cat "$T/evil.port")" \
  "$IN/basic.folded" > /dev/null 2> "$T/evil.err"
one_line push_reason 1 '^kiln: push: .*HTTP 500 \\x1b\]0;owned\\x07\\x1b\[31mBad\\x9b: \\x1b\[2Jboom\\x1b$' $? "$T/evil.err"
no_byte push_reason_no_escape "$T/evil.err" 1b
no_byte push_reason_no_c1 "$T/evil.err" 9b

# ---- 20: hostile files in an output directory.
# A tagged set whose meta.json is a FIFO, another whose meta.json links to
# /dev/zero, cpu files that are a FIFO and a link to /dev/zero: kiln top
# DIR and kiln leaks DIR skip them (one line each) and do not hang.
H=$T/hostile
mkdir -p "$H"
printf 'main;work 7\n' > "$H/app.10.20260101T000000Z-0001.cpu.folded"
mkfifo "$H/app.10.20260101T000000Z-0001.meta.json"
printf 'main;work 5\n' > "$H/app.11.20260101T000000Z-0001.cpu.folded"
ln -s /dev/zero "$H/app.11.20260101T000000Z-0001.meta.json"
mkfifo "$H/app.12.cpu.folded"
ln -s /dev/zero "$H/app.13.cpu.folded"
printf 'main;fine 3\n' > "$H/app.14.cpu.folded"
mkfifo "$H/app.12.leak_bytes.folded"
ln -s /dev/zero "$H/app.13.leak_count.folded"
printf 'main;malloc 64\n' > "$H/app.14.leak_bytes.folded"
start=$(date +%s%N)
timeout 10 "$KILN" top "$H" > "$T/htop.out" 2> "$T/htop.err"
check_eq hostile_top_exit 0 $?
check_eq hostile_top_total "total 3 in 2 functions; by self" "$(head -n 1 "$T/htop.out")"
check_eq hostile_top_skipped 2 "$(grep -c 'not a regular file, skipped' "$T/htop.err")"
timeout 10 "$KILN" leaks "$H" > "$T/hleaks.out" 2> "$T/hleaks.err"
check_eq hostile_leaks_exit 0 $?
check hostile_leaks_report grep -q '^== app.14: 64 bytes in ? blocks' "$T/hleaks.out"
check_eq hostile_leaks_skipped 2 "$(grep -c 'not a regular file, skipped' "$T/hleaks.err")"
check hostile_no_hang test "$(ms_since "$start")" -lt 5000
# kiln push reads a profile's meta.json beside it: a FIFO there is refused.
mkdir -p "$T/hpush"
printf 'main;work 7\n' > "$T/hpush/app.7.cpu.folded"
mkfifo "$T/hpush/app.7.meta.json"
timeout 10 "$KILN" push --timeout 1 --url http://127.0.0.1:1/ "$T/hpush/app.7.cpu.folded" \
  > /dev/null 2> "$T/hpush.err"
check_eq hostile_push_meta_fifo_exit 1 $?
check hostile_push_meta_fifo_said grep -q 'app.7.meta.json: cannot read: not a regular file' "$T/hpush.err"
# A directory of sets whose latest meta.json has an unterminated string:
# a parse error with file and line, not "out of memory".
U=$T/unterminated
mkdir -p "$U"
printf 'main;a 2\n' > "$U/app.20.20260101T000000Z-0001.cpu.folded"
printf '{\n  "pid": 20,\n  "interval_mode": "delta,\n  "dump_seq": 1\n}\n' > "$U/app.20.20260101T000000Z-0001.meta.json"
"$KILN" top "$U" > /dev/null 2> "$T/unterm.err"
check hostile_meta_unterminated grep -q "^kiln: $U/app.20.20260101T000000Z-0001.meta.json:3: unterminated string$" "$T/unterm.err"
if grep -q "out of memory" "$T/unterm.err"; then fail hostile_meta_no_oom "$(cat "$T/unterm.err")"; else pass hostile_meta_no_oom; fi

# kiln dump against a stand-in that answers the signal with hostile files.
# HOSTILE=fifo|zero|pid|tag|seq|old|reason|good decides what it writes.
cat > "$T/standin.sh" << 'EOF'
seq=${START_SEQ:-0}
on_usr2() {
  seq=$((seq + 1))
  local tag="$(date -u +%Y%m%dT%H%M%SZ)-$(printf %04d $seq)" pid=$$ s=$seq reason=signal
  local p="$KILN_OUT/standin.$$.$tag"
  printf 'main;work 1\n' > "$p.cpu.folded"
  case "$HOSTILE" in
    fifo) mkfifo "$p.meta.json"; return ;;
    zero) ln -s /dev/zero "$p.meta.json"; return ;;
    pid) pid=1 ;;
    tag) tag=20000101T000000Z-0001 ;;
    seq) s=$((seq + 1)) ;;
    reason) reason=interval ;;
    bigseq) s=18446744073709551615 tag="${tag%-*}-1615" p="$KILN_OUT/standin.$$.$tag" ;;
  esac
  # owner: written whole, then given to another user (as root only).
  printf '{\n  "pid": %d,\n  "dump_reason": "%s",\n  "dump_seq": %s,\n  "tag": "%s"\n}\n' \
    "$pid" "$reason" "$s" "$tag" > "$p.meta.json.part"
  [ "$HOSTILE" = old ] && touch -d @1000000000 "$p.meta.json.part"
  [ "$HOSTILE" = owner ] && chown 65534 "$p.meta.json.part"
  mv "$p.meta.json.part" "$p.meta.json"
}
trap on_usr2 USR2
echo ready > "$READY"
while :; do sleep 0.02; done
EOF
modes="fifo zero pid tag seq old reason good bigseq"
[ "$(id -u)" = 0 ] && modes="$modes owner"
for mode in $modes; do
  mkdir -p "$T/d_$mode"
  rm -f "$T/$mode.ready"
  (cd "$T/d_$mode" && exec env READY="$T/$mode.ready" HOSTILE=$mode KILN_OUT="$T/d_$mode" \
     KILN_DUMP_SIGNAL=USR2 bash "$T/standin.sh") &
  spid=$!
  pids+=("$spid")
  for _ in $(seq 100); do [ -f "$T/$mode.ready" ] && break; sleep 0.02; done
  if [ "$mode" = bigseq ]; then
    # A set written before, numbered 2^64-2: the next, 2^64-1, is told
    # apart only if dump numbers are exact integers (not doubles).
    printf '{\n  "pid": %d,\n  "dump_reason": "signal",\n  "dump_seq": 18446744073709551614,\n  "tag": "20260101T000000Z-1614"\n}\n' \
      "$spid" > "$T/d_$mode/standin.$spid.20260101T000000Z-1614.meta.json"
  fi
  start=$(date +%s%N)
  timeout 10 "$KILN" dump --timeout 1 "$spid" > "$T/dump_$mode.out" 2> "$T/dump_$mode.err"
  rc=$?
  ms=$(ms_since "$start")
  case $mode in
    good)
      check_eq dump_hostile_good_exit 0 "$rc"
      check dump_hostile_good_meta grep -q "standin\.$spid\..*-0001\.meta\.json$" "$T/dump_$mode.out" ;;
    bigseq)
      check_eq dump_exact_seq_exit 0 "$rc"
      check dump_exact_seq_meta grep -q "standin\.$spid\..*-1615\.meta\.json$" "$T/dump_$mode.out" ;;
    *)
      one_line "dump_hostile_$mode" 1 'was not its answer' "$rc" "$T/dump_$mode.err"
      if [ "$ms" -lt 3000 ]; then pass "dump_hostile_${mode}_timeout_kept"; else fail "dump_hostile_${mode}_timeout_kept" "${ms} ms for --timeout 1"; fi ;;
  esac
  { kill -KILL "$spid"; wait "$spid"; } 2> /dev/null
done
grep -h 'not its answer' "$T"/dump_*.err | sed 's/.*answer: //; s/)$//' | sort > "$T/whys"
want_whys=$(printf '%s\n' "its \"dump_seq\" is not the next dump's" "its \"pid\" is not the process's" \
  "its \"tag\" is not its file name's" "not a regular file" "not a regular file" "not a signal's set (an interval set?)" \
  "older than the request")
[ "$(id -u)" = 0 ] && want_whys=$(printf '%s\n%s\n' "$want_whys" "owned by another user than the process")
check_eq dump_hostile_reasons "$(echo "$want_whys" | sort)" "$(cat "$T/whys")"

# Counts are exact integers: 2^64-1 is printed as it is.
printf 'main;big 18446744073709551615\n' > "$T/big.folded"
check_eq count_u64_top "18446744073709551615" "$("$KILN" top "$T/big.folded" | awk 'NR == 3 { print $1 }')"
check_eq count_u64_tree "[100.0%] all  (18,446,744,073,709,551,615)" "$("$KILN" tree "$T/big.folded" | head -n 1)"
"$KILN" convert --to speedscope "$T/big.folded" > "$T/big.json"
check count_u64_speedscope grep -q '"weights":\[18446744073709551615\]' "$T/big.json"
printf 'main;big 18446744073709551615\nmain;more 1\n' > "$T/over.folded"
"$KILN" top "$T/over.folded" > /dev/null 2> "$T/over.err"
one_line count_u64_overflow 1 'add up past 18446744073709551615' $? "$T/over.err"

# kiln tree: output proportional to the input (a 4.9 MB recursion gave 222 MB).
python3 -c 'import sys; sys.stdout.write(";".join(["a"] * 2450000) + " 1\n")' > "$T/deep.folded"
python3 -c 'import sys; sys.stdout.write(";".join(["a", "b"] * 1225000) + " 1\n")' > "$T/alt.folded"
timeout 60 "$KILN" tree "$T/deep.folded" > "$T/deep.out"
check_eq tree_deep_exit 0 $?
check_eq tree_deep_recursion_one_line "  [100.0%] a  (x2450000: recursion, one line)" "$(sed -n 2p "$T/deep.out")"
timeout 60 "$KILN" tree "$T/alt.folded" > "$T/alt.out"
insize=$(stat -c %s "$T/alt.folded") outsize=$(stat -c %s "$T/alt.out")
if [ "$outsize" -lt "$insize" ]; then pass tree_alt_bounded; else fail tree_alt_bounded "$outsize bytes out for $insize in"; fi
check tree_alt_says_cut grep -q '^(output stops at 20000 lines; --max-lines 0 shows all)$' "$T/alt.out"
timeout 60 "$KILN" tree --max-lines 0 "$T/alt.folded" | wc -c > "$T/alt_all.size"
if [ "$(cat "$T/alt_all.size")" -lt $((insize * 50)) ]; then pass tree_alt_all_proportional; else fail tree_alt_all_proportional "$(cat "$T/alt_all.size") bytes for $insize in"; fi

# C1 controls (U+009B as UTF-8, and a bare 0x9b byte) and invalid UTF-8 in
# frame names never reach a terminal raw.
printf 'main;csi\xc2\x9b31m;bare\x9b2J;bad\xff\xfeutf8 5\nmain;caf\xc3\xa9 1\n' > "$T/c1.folded"
"$KILN" top "$T/c1.folded" > "$T/c1.top"
"$KILN" tree --min 0 "$T/c1.folded" > "$T/c1.tree"
mkdir -p "$T/c1leaks" && cp "$T/c1.folded" "$T/c1leaks/app.1.leak_bytes.folded"
"$KILN" leaks "$T/c1leaks" > "$T/c1.leaks"
for v in top tree leaks; do
  no_byte "c1_escaped_$v" "$T/c1.$v" 9b
  no_byte "invalid_utf8_escaped_$v" "$T/c1.$v" ff
  check "c1_utf8_kept_$v" grep -q "caf$(printf '\xc3\xa9')" "$T/c1.$v"
done
check c1_top_names grep -q '  csi?31m$' "$T/c1.top"

# A writer killed mid-write leaves a hidden temporary: readers skip it,
# kiln record removes it once its writer is gone.
mkdir -p "$T/rec"
timeout 30 "$KILN" record -o "$T/rec" -- sh -c \
  'printf "main;x 1\n" > "$KILN_OUT/.victim.$$.cpu.folded.$$.0.tmp"; kill -KILL $$' > /dev/null 2> "$T/rec.err"
check_eq stale_tmp_record_status 137 $?
check_eq stale_tmp_removed "" "$(ls -A "$T/rec" | grep '\.tmp$')"
check stale_tmp_said grep -q 'removed 1 unfinished temporary file' "$T/rec.err"
# kiln record's summary reads only regular files of its directory.
mkdir -p "$T/recfifo"
# (A process holds the FIFO open for 30 s: a reader would wait that long.)
start=$(date +%s%N)
timeout 60 "$KILN" record -o "$T/recfifo" -- sh -c 'mkfifo "$KILN_OUT/planted.1.cpu.folded"
  (exec 3<> "$KILN_OUT/planted.1.cpu.folded"; exec sleep 30) > /dev/null 2>&1 &
  echo $! > "$KILN_OUT/../holder.pid"' > /dev/null 2> "$T/recfifo.err"
check_eq record_fifo_exit 0 $?
ms=$(ms_since "$start")
if [ "$ms" -lt 15000 ]; then pass record_fifo_no_wait; else fail record_fifo_no_wait "${ms} ms"; fi
kill "$(cat "$T/holder.pid")" 2> /dev/null
mkdir -p "$T/stale" && printf 'main;x 1\n' > "$T/stale/.app.5.cpu.folded.5.0.tmp" && printf 'main;y 2\n' > "$T/stale/app.6.cpu.folded"
check_eq stale_tmp_ignored "total 2 in 2 functions; by self" "$("$KILN" top "$T/stale" | head -n 1)"

# ---- 21: one dump-signal grammar. For each spelling, the runtime (under
# the preload) and kiln dump agree on whether it is a dump signal.
agree=0 disagree=""
for spec in USR1 USR2 SIGUSR2 HUP URG PWR WINCH VTALRM 10 12 34 ALRM SIGALRM RTMIN RTMIN+0 RTMIN+3 \
            RTMIN+30 RTMIN+31 RTMAX RTMAX-2 TERM INT 15 PROF 27 0 65 'USR2 ' usr2 SIGRTMIN+3 CHLD 9; do
  KILN_DUMP_SIGNAL=$spec KILN_OUT="$T/grammar" LD_PRELOAD="$LIBKILN" /bin/true 2> "$T/grammar.err"
  if grep -q 'KILN_DUMP_SIGNAL=' "$T/grammar.err"; then rt=refused; else rt=taken; fi
  "$KILN" dump --signal "$spec" 2147483647 > /dev/null 2>&1
  case $? in 2) tool=refused ;; *) tool=taken ;; esac
  if [ "$rt" = "$tool" ]; then agree=$((agree + 1)); else disagree="$disagree $spec(runtime $rt, tool $tool)"; fi
done
check_eq signal_grammar_agrees "" "$disagree"
for spec in ALRM RTMAX-2 RTMIN; do
  "$KILN" dump --signal "$spec" 1 > /dev/null 2> "$T/sig.err"
  one_line "signal_refused_$spec" 2 "^kiln: dump: --signal needs a signal the runtime can take" $? "$T/sig.err"
done
# A program that rewrote its environment (redis, for its process title).
if command -v redis-server > /dev/null; then
  mkdir -p "$T/redis"
  KILN_DUMP_SIGNAL=USR2 KILN_OUT="$T/redis" KILN_QUIET=1 LD_PRELOAD="$LIBKILN" \
    redis-server --port 0 --unixsocket "$T/redis/sock" --save '' --appendonly no \
    --dir "$T/redis" > "$T/redis.log" 2>&1 &
  rpid=$!
  pids+=("$rpid")
  # Listening, and its process title set (the environment rewritten).
  for _ in $(seq 100); do
    [ -S "$T/redis/sock" ] && ! tr '\0' '\n' < /proc/$rpid/environ 2> /dev/null | grep -q '^KILN_' && break
    sleep 0.05
  done
  "$KILN" dump --timeout 5 "$rpid" > "$T/redis.out" 2> "$T/redis.err"
  one_line dump_redis_says_signal 1 'rewrote its environment .*pass --signal' $? "$T/redis.err"
  "$KILN" dump --timeout 10 --signal USR2 --dir "$T/redis" "$rpid" > "$T/redis2.out" 2> "$T/redis2.err"
  check_eq dump_redis_with_signal_exit 0 $?
  check dump_redis_with_signal_meta grep -q "redis-server\.$rpid\..*-0001\.meta\.json$" "$T/redis2.out"
  { kill -TERM "$rpid"; wait "$rpid"; } 2> /dev/null
else
  fail dump_redis "redis-server is missing (DEPS_TEST installs it)"
fi
