#!/usr/bin/env bash
# kiln dump: the error paths (usage, no such process, permission denied, not
# a kiln process, a signal the process does not catch, timeout, stopped,
# exited), then a stand-in process that traps SIGUSR2 and writes a fake set
# under the runtime's names, then the real runtime with examples/cpu_split
# (skipped with a note while libkiln.so does not write sets on a signal).
source "$(dirname "$0")/../lib.sh"

pids=()
cleanup() {
  { for p in "${pids[@]}"; do kill -KILL "$p"; done; wait; } 2> /dev/null
  rm -rf "$T"
}
trap cleanup EXIT

# The stand-in: on SIGUSR2 it writes a set into KILN_OUT (default: its
# working directory) as the runtime names it. FAKE_MODE=interval writes an
# interval set first, silent writes nothing, exit exits without writing.
cat > "$T/standin.sh" << 'EOF'
seq=0
write_set() {
  seq=$((seq + 1))
  local tag="$(date -u +%Y%m%dT%H%M%SZ)-$(printf %04d $seq)"
  local p="${KILN_OUT:-.}/standin.$$.$tag"
  for k in cpu alloc_bytes alloc_count live_bytes live_count; do
    printf 'main;work60 60\nmain;work30 30\nmain;work10 10\n' > "$p.$k.folded"
  done
  : > "$p.cpu.pb.gz"; : > "$p.heap.pb.gz"
  # The keys kiln dump checks before it takes a set as its answer.
  printf '{\n  "pid": %d,\n  "dump_reason": "%s",\n  "dump_seq": %d,\n  "tag": "%s",\n  "interval_mode": "delta"\n}\n' \
    $$ "$1" "$seq" "$tag" > "$p.meta.json"
}
on_usr2() {
  case "${FAKE_MODE:-}" in
    silent) ;;
    exit) exit 0 ;;
    interval) write_set interval; sleep 0.1; write_set signal ;;
    *) write_set signal ;;
  esac
}
trap on_usr2 USR2
echo ready > "$READY"
while :; do sleep 0.02; done
EOF
# standin NAME [VAR=VALUE...]: starts the stand-in in $T/NAME (its cwd) with
# the extra environment; sets $spid once it has set its trap.
standin() {
  local name=$1; shift
  mkdir -p "$T/$name"
  (cd "$T/$name" && exec env READY="$T/$name.ready" "$@" bash "$T/standin.sh") &
  spid=$!
  pids+=("$spid")
  for _ in $(seq 100); do [ -f "$T/$name.ready" ] && break; sleep 0.02; done
}
# dump NAME ARGS...: kiln dump, stdout to $T/NAME.out, stderr to
# $T/NAME.err, status in $rc.
dump() {
  local name=$1; shift
  "$KILN" dump "$@" > "$T/$name.out" 2> "$T/$name.err"
  rc=$?
}
# one_error NAME STATUS REGEX: status, a single kiln: line matching REGEX,
# nothing on stdout.
one_error() {
  check_eq "$1_exit" "$2" "$rc"
  if [ "$(wc -l < "$T/$1.err")" -eq 1 ] && grep -Eq "^kiln: dump: .*$3" "$T/$1.err"; then
    pass "$1_message"
  else
    fail "$1_message" "want one 'kiln: dump: ...$3' line, got: $(cat "$T/$1.err")"
  fi
  check_eq "$1_no_output" "" "$(cat "$T/$1.out")"
}

# ---- usage
dump usage_no_pid; check_eq dump_usage_no_pid 2 "$rc"
dump usage_bad_pid abc; check_eq dump_usage_bad_pid 2 "$rc"
dump usage_kill --signal KILL 1; check_eq dump_usage_signal_kill 2 "$rc"
dump usage_bad_signal --signal NOPE 1; check_eq dump_usage_bad_signal 2 "$rc"
dump usage_term --signal TERM 1; check_eq dump_usage_signal_term 2 "$rc"
dump usage_timeout --timeout -1 1; check_eq dump_usage_timeout 2 "$rc"
"$KILN" dump --help | grep -q "KILN_OUT once, at start"
check_eq dump_help_mentions_cwd 0 $?

# ---- no such process: a child that has been reaped
sh -c 'exit 0' & gone=$!; wait "$gone"
dump nosuch "$gone"
one_error nosuch 1 "no process $gone"

# ---- not a kiln process, no KILN_DUMP_SIGNAL, a signal it does not catch
(exec env -i PATH="$PATH" sleep 30) & plain=$!; pids+=("$plain")
(exec env KILN_HZ=99 sleep 30) & nosig=$!; pids+=("$nosig")
(exec env KILN_DUMP_SIGNAL=USR2 sleep 30) & nocatch=$!; pids+=("$nocatch")
sleep 0.1
dump notkiln "$plain"
one_error notkiln 1 "$plain is not a kiln process"
dump nosignal "$nosig"
one_error nosignal 1 "$nosig was not started with KILN_DUMP_SIGNAL"
dump nocatch "$nocatch"
one_error nocatch 1 "$nocatch does not catch SIGUSR2"
check dump_nocatch_not_sent kill -0 "$nocatch"
dump nocatch_forced --signal USR1 --dir "$T" "$plain"
one_error nocatch_forced 1 "does not catch SIGUSR1"
check dump_nocatch_forced_not_sent kill -0 "$plain"

# ---- permission denied: another user's process
if [ "$(id -u)" -eq 0 ] && command -v setpriv > /dev/null; then
  setpriv --reuid=65534 --regid=65534 --clear-groups "$KILN" dump "$nosig" \
    > "$T/eperm.out" 2> "$T/eperm.err"
  rc=$?
  one_error eperm 1 "$nosig: permission denied"
elif [ "$(awk '/^Uid:/ { print $2 }' /proc/1/status)" != "$(id -u)" ]; then
  dump eperm 1
  one_error eperm 1 "1: permission denied"
else
  echo "note: permission test skipped (not root, and pid 1 is ours)"
fi

# ---- the stand-in
standin out KILN_DUMP_SIGNAL=USR2 KILN_OUT="$T/out"
dump first "$spid"
check_eq dump_standin_exit 0 "$rc"
check_eq dump_standin_quiet "" "$(cat "$T/first.err")"
check_eq dump_standin_files 8 "$(wc -l < "$T/first.out")"
check dump_standin_meta_last grep -Eq "^$T/out/standin\.$spid\.[0-9]{8}T[0-9]{6}Z-0001\.meta\.json$" \
  <(tail -n 1 "$T/first.out")
missing=0
while read -r f; do [ -f "$f" ] || missing=$((missing + 1)); done < "$T/first.out"
check_eq dump_standin_files_exist 0 "$missing"
cpu=$(grep '\.cpu\.folded$' "$T/first.out")
check_eq dump_standin_top "60.00%" "$("$KILN" top "$cpu" | awk '$5 == "work60" { print $2 }')"
dump second "$spid"
check_eq dump_standin_second_exit 0 "$rc"
check dump_standin_second_is_new grep -q -- '-0002\.meta\.json$' "$T/second.out"
# The directory is the sum of the delta sets.
check_eq dump_standin_dir_sum "120" \
  "$("$KILN" top "$T/out" | awk '$5 == "work60" { print $1 }')"

# --signal and --dir given: the environment is not needed.
dump explicit --signal SIGUSR2 --dir "$T/out" --timeout 5 "$spid"
check_eq dump_explicit_exit 0 "$rc"
check dump_explicit_new grep -q -- '-0003\.meta\.json$' "$T/explicit.out"

# --signal must be the process's KILN_DUMP_SIGNAL when it has one.
dump other_signal --signal USR1 "$spid"
one_error other_signal 1 "$spid was started with KILN_DUMP_SIGNAL=USR2, not the --signal given"

# A missing directory is an error before any signal is sent.
dump nodir --dir "$T/nonexistent" "$spid"
one_error nodir 1 "$T/nonexistent: No such file or directory"
sleep 0.1
check_eq dump_nodir_not_sent 3 "$(ls "$T/out"/*.meta.json | wc -l)"

# KILN_OUT relative to the working directory; no KILN_OUT: the directory.
standin rel KILN_DUMP_SIGNAL=SIGUSR2 KILN_OUT=sub
mkdir -p "$T/rel/sub"
dump rel "$spid"
check_eq dump_relative_out_exit 0 "$rc"
check dump_relative_out grep -q "^$T/rel/sub/standin\.$spid\." "$T/rel.out"
standin cwd KILN_DUMP_SIGNAL=12
dump cwd "$spid"
check_eq dump_cwd_exit 0 "$rc"
check dump_cwd_dir grep -q "^$T/cwd/standin\.$spid\." "$T/cwd.out"

# An interval set that lands first is not the answer.
standin ival KILN_DUMP_SIGNAL=USR2 FAKE_MODE=interval
dump ival "$spid"
check_eq dump_skips_interval_exit 0 "$rc"
check dump_skips_interval grep -q -- '-0002\.meta\.json$' "$T/ival.out"

# Timeout, stopped, exited.
standin silent KILN_DUMP_SIGNAL=USR2 FAKE_MODE=silent
start=$(date +%s%N)
dump timeout --timeout 0.3 "$spid"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
one_error timeout 1 "no new profile set from $spid in $T/silent after 0.3 s"
if [ "$ms" -lt 2000 ]; then pass dump_timeout_prompt; else fail dump_timeout_prompt "${ms} ms"; fi
kill -STOP "$spid"
dump stopped --timeout 0.3 "$spid"
one_error stopped 1 "the process is stopped"
kill -CONT "$spid"
standin exits KILN_DUMP_SIGNAL=USR2 FAKE_MODE=exit
dump exited "$spid"
one_error exited 1 "process $spid exited before writing a profile set"

# ---- the real runtime
SPLIT="$EX/cpu_split"
if [ ! -f "$LIBKILN" ] || [ ! -x "$SPLIT" ]; then
  echo "note: real-runtime dump skipped: need $LIBKILN and $SPLIT"
  exit 0
fi
mkdir -p "$T/real"
KILN_DUMP_SIGNAL=USR2 KILN_OUT="$T/real" KILN_QUIET=1 LD_PRELOAD="$LIBKILN" \
  "$SPLIT" 200 > /dev/null 2>&1 &
rpid=$!; pids+=("$rpid")
sleep 1
dump real --timeout 5 "$rpid"
if [ "$rc" -ne 0 ] && grep -q "does not catch SIGUSR2" "$T/real.err"; then
  echo "note: real-runtime dump skipped: libkiln.so does not handle KILN_DUMP_SIGNAL yet"
  exit 0
fi
check_eq dump_real_exit 0 "$rc"
[ "$rc" -eq 0 ] || sed 's/^/   /' "$T/real.err"
cpu=$(grep '\.cpu\.folded$' "$T/real.out")
check dump_real_cpu_file test -s "$cpu"
check dump_real_meta_signal grep -q '"dump_reason": *"signal"' "$(tail -n 1 "$T/real.out")"
# Every file listed is of the one set (which kinds depends on KILN_MODE).
tag=$(sed -n 's/.*\.\([0-9]\{8\}T[0-9]\{6\}Z-[0-9]\{4\}\)\.meta\.json$/\1/p' "$T/real.out")
check_eq dump_real_one_set "$(wc -l < "$T/real.out")" "$(grep -c "/cpu_split\.$rpid\.$tag\." "$T/real.out")"
for pair in work60:60 work30:30 work10:10; do
  f=${pair%%:*} want=${pair##*:}
  got=$(folded_share "$cpu" "(^|;)$f(;|$)")
  if within "$got" "$want" 8; then pass "dump_real_share_$f"; else fail "dump_real_share_$f" "got $got%, want $want% +-8"; fi
done
kill -TERM "$rpid" 2> /dev/null
