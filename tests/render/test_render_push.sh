#!/usr/bin/env bash
# kiln push against a stand-in ingest endpoint on 127.0.0.1 (push_receiver.py,
# a free port, a bounded lifetime): method, path, query parameters, content
# type and body as received; the name and time defaults from the file name,
# its mtime and the meta.json; pprof bodies; non-2xx, refused connections,
# https and bad input as one kiln: line.
source "$(dirname "$0")/../lib.sh"
IN="$(cd "$(dirname "$0")/input" && pwd)"
RECV="$(cd "$(dirname "$0")" && pwd)/push_receiver.py"

# start_receiver STATUS MAX_REQUESTS: sets PORT, LOG and RECV_PID.
start_receiver() {
  rm -f "$T/port" "$T/log"
  : > "$T/log"
  timeout 20 python3 "$RECV" "$T/port" "$T/log" "$1" "$2" 15 &
  RECV_PID=$!
  for _ in $(seq 100); do [ -s "$T/port" ] && break; sleep 0.05; done
  PORT=$(cat "$T/port" 2>/dev/null)
  LOG=$T/log
}
stop_receiver() { kill "$RECV_PID" 2>/dev/null; wait "$RECV_PID" 2>/dev/null || true; }
# field N EXPR: a Python expression over request N of the log (r).
field() {
  python3 -c 'import base64, json, sys
r = [json.loads(l) for l in open(sys.argv[1])][int(sys.argv[2])]
q = lambda k: r["query"].get(k, ["<none>"])[0]
body = base64.b64decode(r["body_b64"])
print(eval(sys.argv[3]))' "$LOG" "$1" "$2"
}

# A kiln-named profile with its meta.json: name, times, rate from them.
mkdir -p "$T/prof"
cp "$IN/basic.folded" "$T/prof/server.4242.cpu.folded"
printf '{\n  "prog": "server",\n  "hz_requested": 499,\n  "wall_seconds": 12.300,\n  "files": []\n}\n' \
  > "$T/prof/server.4242.meta.json"
touch -d @1700000100 "$T/prof/server.4242.cpu.folded"
printf 'main;load;malloc 4096\nmain;run;calloc 512\n' > "$T/prof/server.4242.alloc_bytes.folded"
touch -d @1700000200 "$T/prof/server.4242.alloc_bytes.folded"

start_receiver 200 2
if [ -z "$PORT" ]; then fail push_receiver_started "no port"; exit 0; fi
"$KILN" push --url "http://127.0.0.1:$PORT/base/" "$T/prof/server.4242.cpu.folded" \
  "$T/prof/server.4242.alloc_bytes.folded" > "$T/push.out" 2> "$T/push.err"
check_eq push_exit 0 $?
stop_receiver
check_eq push_two_requests 2 "$(wc -l < "$LOG")"
check_eq push_method POST "$(field 0 'r["method"]')"
check_eq push_path /base/ingest "$(field 0 'r["path"]')"
check_eq push_name_cpu 'server.cpu{}' "$(field 0 'q("name")')"
check_eq push_until_mtime 1700000100 "$(field 0 'q("until")')"
check_eq push_from_wall 1700000087 "$(field 0 'q("from")')"
check_eq push_format folded "$(field 0 'q("format")')"
check_eq push_sample_rate 499 "$(field 0 'q("sampleRate")')"
check_eq push_spy kiln "$(field 0 'q("spyName")')"
check_eq push_content_type 'text/plain; charset=utf-8' "$(field 0 'r["content_type"]')"
check_eq push_host "127.0.0.1:$PORT" "$(field 0 'r["host"]')"
check_eq push_body_is_folded "$(grep -v '^[[:space:]]*$' "$IN/basic.folded")" \
  "$(field 0 'body.decode()')"
check_eq push_name_alloc 'server.alloc_space{}' "$(field 1 'q("name")')"
check_eq push_alloc_units bytes "$(field 1 'q("units")')"
check_eq push_alloc_no_rate '<none>' "$(field 1 'q("sampleRate")')"
check push_reports_sent grep -q "^pushed $T/prof/server.4242.cpu.folded as server.cpu{}" "$T/push.out"

# An interval set: the program without pid and tag, the set's own span.
cp "$IN/basic.folded" "$T/prof/server.4242.20231114T221500Z-0007.cpu.folded"
printf '{\n  "dump_reason": "interval",\n  "from_unix": 1700000040.250,\n  "until_unix": 1700000100.500,\n  "wall_seconds": 500.0\n}\n' \
  > "$T/prof/server.4242.20231114T221500Z-0007.meta.json"
start_receiver 200 1
"$KILN" push --url "http://127.0.0.1:$PORT" "$T/prof/server.4242.20231114T221500Z-0007.cpu.folded" \
  > /dev/null 2>&1
check_eq push_interval_exit 0 $?
stop_receiver
check_eq push_interval_name 'server.cpu{}' "$(field 0 'q("name")')"
check_eq push_interval_span '1700000040 1700000101' "$(field 0 'q("from") + " " + q("until")')"

# pprof, explicit name with labels, explicit times.
"$KILN" convert --to pprof -o "$T/prof/server.4242.cpu.pb.gz" "$T/prof/server.4242.cpu.folded"
start_receiver 200 1
"$KILN" push --url "http://127.0.0.1:$PORT" --name 'api{env=test,region=x}' \
  --from 1700000000 --until 1700000060 "$T/prof/server.4242.cpu.pb.gz" > /dev/null 2>&1
check_eq push_pprof_exit 0 $?
stop_receiver
check_eq push_pprof_path /ingest "$(field 0 'r["path"]')"
check_eq push_pprof_format pprof "$(field 0 'q("format")')"
check_eq push_pprof_name 'api{env=test,region=x}' "$(field 0 'q("name")')"
check_eq push_pprof_times '1700000000 1700000060' "$(field 0 'q("from") + " " + q("until")')"
check_eq push_pprof_content_type application/octet-stream "$(field 0 'r["content_type"]')"
check_eq push_pprof_body "$(sha256sum < "$T/prof/server.4242.cpu.pb.gz")" \
  "$(field 0 'base64.b64encode(body).decode()' | base64 -d | sha256sum)"

# Malformed lines are reported and left out of the body.
printf 'main;a 3\nmain;b x\nmain;c 4\n' > "$T/prof/mixed.folded"
start_receiver 200 1
"$KILN" push --url "http://127.0.0.1:$PORT" "$T/prof/mixed.folded" > /dev/null 2> "$T/mixed.err"
check_eq push_mixed_exit 0 $?
stop_receiver
check push_mixed_reported grep -q "^kiln: $T/prof/mixed.folded:2: count is not a number; line not sent" "$T/mixed.err"
check_eq push_mixed_body 'main;a 3|main;c 4|' "$(field 0 'body.decode().replace("\n", "|")')"
check_eq push_plain_name 'mixed.cpu{}' "$(field 0 'q("name")')"

# Errors: one kiln: line and exit 1.
one_error() { # NAME REGEX EXIT CMD...
  local name=$1 want=$2 code=$3; shift 3
  "$@" > /dev/null 2> "$T/err"
  local rc=$?
  if [ "$rc" = "$code" ] && [ "$(wc -l < "$T/err")" = 1 ] && grep -q "$want" "$T/err"; then pass "$name"
  else fail "$name" "exit $rc, stderr: $(head -3 "$T/err")"; fi
}
start_receiver 400 1
one_error push_http_400 "^kiln: push: http://127.0.0.1:$PORT: HTTP 400 Bad Request: invalid parameter: name" 1 \
  "$KILN" push --url "http://127.0.0.1:$PORT" "$T/prof/server.4242.cpu.folded"
stop_receiver
# A port nobody listens on: the receiver's, now closed.
one_error push_refused '^kiln: push: cannot connect to 127.0.0.1 port .*: Connection refused' 1 \
  timeout 10 "$KILN" push --url "http://127.0.0.1:$PORT" "$T/prof/server.4242.cpu.folded"
one_error push_https '^kiln: push: https is not supported' 2 \
  "$KILN" push --url https://127.0.0.1:1/ "$T/prof/server.4242.cpu.folded"
one_error push_bad_url '^kiln: push: --url must start with http://' 2 \
  "$KILN" push --url ftp://127.0.0.1/ "$T/prof/server.4242.cpu.folded"
one_error push_bad_port '^kiln: push: --url: bad host or port' 2 \
  "$KILN" push --url http://127.0.0.1:99999/ "$T/prof/server.4242.cpu.folded"
one_error push_missing_file '^kiln: .*/nope.folded: cannot open' 1 \
  "$KILN" push --url http://127.0.0.1:1/ "$T/nope.folded"
one_error push_differential 'differential line (two counts) cannot be pushed' 1 \
  "$KILN" push --url http://127.0.0.1:1/ "$IN/diff.folded"
one_error push_from_after_until '^kiln: push: --from must be before --until' 2 \
  "$KILN" push --url http://127.0.0.1:1/ --from 10 --until 5 "$IN/basic.folded"
# A server that accepts and never answers: the timeout bounds the wait.
python3 -c 'import socket, time, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
time.sleep(5)' "$T/silent.port" &
SILENT=$!
for _ in $(seq 100); do [ -s "$T/silent.port" ] && break; sleep 0.05; done
start=$(date +%s%N)
one_error push_timeout 'no reply: timed out' 1 \
  "$KILN" push --timeout 0.5 --url "http://127.0.0.1:$(cat "$T/silent.port")" "$IN/basic.folded"
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
if [ "$elapsed_ms" -lt 3000 ]; then pass push_timeout_bounded; else fail push_timeout_bounded "${elapsed_ms} ms"; fi
kill "$SILENT" 2>/dev/null; wait "$SILENT" 2>/dev/null || true
