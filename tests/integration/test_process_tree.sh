# Process trees: the processes below the one the user profiled write
# nothing to stderr (a parent capturing a child's stderr sees the same
# bytes) and no empty profiles; the top's summary counts them. Forks while
# other threads allocate and unwind never hang the child.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/cpu_lib.sh"
export KILN_QUIET=
PY=/usr/bin/python3

# Fork while two threads allocate (and are sampled): 200 forks a run,
# several runs, cpu and cpu,alloc; a hang is caught by timeout (rc 124).
for mode in cpu cpu,alloc; do
  bad=0
  for run in 1 2 3; do
    KILN_MODE=$mode KILN_OUT="$T/forks-$run" LD_PRELOAD=$LIBKILN timeout -k 5 120 "$EX/proc_storm" forkthreads 200 \
      >/dev/null 2>&1 || bad=$((bad + 1))
  done
  check_eq "fork x200 with allocating threads ($mode, 3 runs): no child hangs" 0 "$bad"
done

# A parent capturing its child's stderr sees the same bytes.
if [ -x "$PY" ]; then
  run_pair "subprocess capture_output: the child's stderr unchanged" "$T/capture" "$PY" -c '
import subprocess, sys
r = subprocess.run(["sh", "-c", "echo out; echo err >&2; '"$EX"'/cpu_split 1"], capture_output=True)
print(repr(r.stdout), repr(r.stderr), r.returncode)'
fi
run_pair 'shell $(cmd 2>&1): the same bytes' "$T/subst" bash -c 'x=$(sh -c "echo hi; echo err >&2; ls /nonexistent-kiln" 2>&1); echo "[$x]"'
# Only the top process speaks, and it counts the others.
d="$T/gcc"
printf 'int main(void) { return 0; }\n' > "$T/x.c"
KILN_OUT=$d LD_PRELOAD=$LIBKILN cc -O2 -c -o "$T/x.o" "$T/x.c" 2>"$T/gcc.err"
top=$(sed -n 's/^kiln: \([^[]*\)\[\([0-9]*\)\].*/\2/p' "$T/gcc.err" | sort -u)
check_eq "gcc: kiln lines on stderr come from the top process only" 1 "$(echo "$top" | grep -c .)"
grep -q "tree: [0-9]* process.* below" "$T/gcc.err" && pass "gcc: the top's summary counts the processes below (cc1, as)" ||
  fail "gcc: tree line" "$(cat "$T/gcc.err")"

# No empty profiles: children that recorded nothing write no files.
d="$T/storm"
KILN_OUT=$d LD_PRELOAD=$LIBKILN "$EX/proc_storm" fork 50 >/dev/null 2>"$T/storm.err"
top=$(ls "$d"/proc_storm.*.meta.json | head -n 1 | sed 's/.*proc_storm\.\([0-9]*\)\.meta.json/\1/')
grep -q "proc_storm\[$top\]: tree: 50 processes below" "$T/storm.err" && pass "fork x50: the top counts 50 processes below" ||
  fail "fork x50: tree line" "$(cat "$T/storm.err")"
empty=0
for m in "$d"/*.meta.json; do
  grep -q '"samples": 0,' "$m" && ! grep -q "\"pid\": $top," "$m" && empty=$((empty + 1))
done
check_eq "fork x50: no profile of a child without samples" 0 "$empty"
written=$(( $(ls "$d"/*.meta.json | wc -l) - 1 ))
said=$(sed -n 's/.*below: \([0-9]*\) profiled.*/\1/p' "$T/storm.err")
check_eq "fork x50: the profiled children counted are those with files" "$written" "$said"
check_eq "the tree file is removed at the top's exit" 0 "$(ls -a "$d" | grep -c '^\.kiln-tree')"
# Messages of processes below are counted, not printed.
d="$T/below-warn"
KILN_OUT=$d LD_PRELOAD=$LIBKILN bash -c 'KILN_HZ=abc '"$EX"'/cpu_split 1; true' >/dev/null 2>"$T/warn.err"
if grep -q "tree: 1 kiln message below (not shown on their stderr), the first: KILN_HZ=abc" "$T/warn.err" &&
   [ "$(grep -c 'KILN_HZ=abc' "$T/warn.err")" = 1 ]; then
  pass "a warning of a process below: not on stderr, one line at the top"
else fail "warning below" "$(cat "$T/warn.err")"; fi

# A process below whose only samples are kiln's own (its start-up in the
# constructor, the fork handlers: "[kiln]") recorded nothing of its own: no
# files. 100 /bin/true from a shell, each about a millisecond.
d="$T/trues"
KILN_OUT=$d LD_PRELOAD=$LIBKILN bash -c 'for i in $(seq 100); do /bin/true; done' >/dev/null 2>"$T/trues.err"
own=0
for f in "$d"/*.cpu.folded; do
  case "$f" in *"/bash.$(sed -n 's/^kiln: bash\[\([0-9]*\)\]: tree.*/\1/p' "$T/trues.err")."*) continue ;; esac
  grep -qv ';\[kiln\] [0-9]*$' "$f" || own=$((own + 1))
done
check_eq "100 x /bin/true below bash: no profile of kiln's own samples only" 0 "$own"
nothing=$(sed -n 's/.*tree: [0-9]* processes below: .*, \([0-9]*\) recorded nothing.*/\1/p' "$T/trues.err")
[ "${nothing:-0}" -ge 1 ] && [ "$((nothing + $(ls "$d"/true.*.meta.json 2>/dev/null | wc -l)))" -ge 100 ] &&
  pass "100 x /bin/true: the tree line counts the $nothing that recorded nothing (the others wrote profiles)" ||
  fail "trues: tree line" "$(cat "$T/trues.err")"

# libunwind is loaded at the first sample that needs unwinding: a process
# whose samples are all kiln's own start never maps it (and one that loads
# it off the starting thread does so from kiln's own pool, test_aspace: no
# glibc arena for the collector). Under strace, the
# /bin/true processes that opened libunwind-x86_64 are few: those that
# took a sample to unwind.
if command -v strace > /dev/null; then
  d="$T/trues-lazy"
  strace -f -qq -e trace=openat,execve -o "$T/trues.strace" \
    env KILN_OUT="$d" LD_PRELOAD="$LIBKILN" bash -c 'for i in $(seq 60); do /bin/true; done' >/dev/null 2>&1
  trues=$(awk '/execve\("\/bin\/true"/ { t[$1] = 1 } END { print length(t) }' "$T/trues.strace")
  opened=$(awk '/execve\("\/bin\/true"/ { t[$1] = 1 } /libunwind-x86_64/ && ($1 in t) { o[$1] = 1 } END { print length(o) }' "$T/trues.strace")
  wrote=$(ls "$d"/true.*.meta.json 2>/dev/null | wc -l)
  # A sample taken in kiln's own exit is unwound to find it kiln's: such a
  # /bin/true loads libunwind and still writes nothing. Loaded at the start,
  # all 60 would open it.
  { [ "$trues" = 60 ] && [ "$opened" -le 30 ]; } &&
    pass "60 x /bin/true: libunwind loaded by $opened, the ones with samples to unwind ($wrote wrote profiles)" ||
    fail "lazy libunwind" "$trues /bin/true, $opened opened libunwind, $wrote wrote profiles; execve lines: $(grep -c 'execve("/bin/true"' "$T/trues.strace"), of which = 0: $(grep 'execve("/bin/true"' "$T/trues.strace" | grep -c '= 0$'); first of each pid past 60: $(awk '/execve\("\/bin\/true"/ && !($1 in t) { t[$1] = 1; if (++n > 60) print }' "$T/trues.strace" | head -3 | cut -c1-200 | tr '\n' '|')"
  m=$(ls "$d"/true.*.meta.json 2>/dev/null | head -1)
  [ -z "$m" ] || grep -q '"copy_unwinder_loaded": true' "$m" &&
    pass "lazy libunwind: a /bin/true with program samples has it loaded" || fail "lazy libunwind: meta" "$m"
else
  fail "lazy libunwind" "strace is not installed"
fi

# Below the top, empty profiles are not written and meta.json lists what
# was: 20 children that each leak one block (cpu,alloc mode).
d="$T/forkleak"
KILN_MODE=cpu,alloc KILN_OUT=$d LD_PRELOAD=$LIBKILN "$EX/proc_storm" forkleak 20 >/dev/null 2>"$T/fl.err"
top=$(sed -n 's/^kiln: proc_storm\[\([0-9]*\)\]: tree.*/\1/p' "$T/fl.err")
bad=0 children=0
for m in "$d"/proc_storm.*.meta.json; do
  pid=$(basename "$m" | cut -d. -f2)
  [ "$pid" = "$top" ] && continue
  children=$((children + 1))
  listed=$($PY -c 'import json,sys; print(" ".join(sorted(json.load(open(sys.argv[1]))["files"])))' "$m")
  present=$(cd "$d" && ls proc_storm."$pid".*.folded | sort | tr '\n' ' ')
  [ "$listed " = "$present" ] || bad=$((bad + 1))
  for f in "$d"/proc_storm."$pid".*.folded; do [ -s "$f" ] || bad=$((bad + 1)); done
done
if [ "$children $bad" = "20 0" ]; then pass "forkleak x20: 20 children's profiles, none empty, each meta.json lists exactly its files"
else # what the top printed, and the tree file if it is still there, so that a failure says why
  fail "forkleak x20: 20 children's profiles, none empty, each meta.json lists exactly its files" \
    "expected '20 0', got '$children $bad'; top '$top'; its stderr: $(head -c 1500 "$T/fl.err" | tr '\n' '|'); tree files: $(ls -a "$d" | grep -c kiln-tree)"
fi
# A fork child has one thread: one ring of its own, not one a CPU.
rings=$(for m in "$d"/*.meta.json; do grep -q "\"pid\": $top," "$m" || meta_field "$m" perf_rings_opened; done | sort -u | tr '\n' ' ')
check_eq "forkleak x20: each child (one thread) mapped one ring, not one a CPU" "1 " "$rings"

# execvp's PATH search is kiln's (each directory asked once, the profile
# written before the exec that can work): it finds, runs and fails as
# libc's does. Each case: the same output and status unprofiled and under
# kiln.
P="$T/paths"
mkdir -p "$P/empty" "$P/noexec" "$P/bin" "$P/noformat" "$P/dirs/tool2" "$P/cwd"
printf '#!/bin/sh\necho noexec tool "$@"\n' > "$P/noexec/tool"; chmod 644 "$P/noexec/tool"
printf '#!/bin/sh\necho bin tool "$@"\n' > "$P/bin/tool"; chmod 755 "$P/bin/tool"
printf 'echo noformat ran "$0" "$@"\n' > "$P/noformat/plain"; chmod 755 "$P/noformat/plain"
printf '#!/bin/sh\necho here ran\n' > "$P/cwd/here"; chmod 755 "$P/cwd/here"
: > "$P/afile"
long=$(printf 'x%.0s' $(seq 1 300))
name255=$(printf 'y%.0s' $(seq 1 255))
printf '#!/bin/sh\necho 255 ran "$@"\n' > "$P/bin/$name255"; chmod 755 "$P/bin/$name255"
while IFS='|' read -r name path args; do
  run_pair "execvp $name" "$T/paths-out" env PATH="$path" "$EX/execvp_paths" $args
done <<CASES
past a directory without it and a file without x|$P/empty:$P/noexec:$P/bin|tool a b
only a file without x: EACCES|$P/empty:$P/noexec|tool
nowhere: ENOENT|$P/empty|tool
a file of no format: /bin/sh runs it|$P/noformat|plain x y
past a PATH entry that is a file: ENOTDIR goes on|$P/afile:$P/bin|tool c
a directory of that name: EACCES|$P/dirs|tool2
a name past NAME_MAX|$P/bin|$long
a name of NAME_MAX characters|$P/empty:$P/bin|$name255 z
CASES
# A path (a slash) is not searched, however long: the profile so far is
# written before it runs (the top's summary for that image).
deep="$P/deep/$(printf 'a%.0s' $(seq 1 120))/$(printf 'b%.0s' $(seq 1 120))/$(printf 'c%.0s' $(seq 1 120))"
mkdir -p "$deep" && cp "$P/bin/tool" "$deep/tool"
run_pair "execvp: a path of ${#deep} characters" "$T/paths-out" "$EX/execvp_paths" "$deep/tool" d
grep -q '^kiln: execvp_paths\[' "$ERR" && pass "execvp: a long path's exec is prepared (the profile so far written)" ||
  fail "execvp: a long path's exec is prepared" "no summary of execvp_paths on stderr: $(head -c 600 "$ERR" | tr '\n' '|')"
( cd "$P/cwd" && run_pair "execvp: an empty PATH entry is the current directory" "$T/paths-out" env PATH=":$P/empty" "$EX/execvp_paths" here )
run_pair "execvp: no PATH, glibc's default (/bin:/usr/bin)" "$T/paths-out" env -u PATH "$EX/execvp_paths" true
# One system call a directory of a failed search, as unprofiled (execve
# there; faccessat under kiln), not two.
if ! command -v strace >/dev/null 2>&1; then
  fail "execvp: system calls of a failed search" "strace is not installed"
else
  dirs="$P/empty:$P/dirs:$P/noformat:$P/cwd:$P/empty/x"
  count() { grep -cE '^[0-9]+ +(execve|access|faccessat|faccessat2)\(' "$1"; }
  st=$(command -v strace)
  PATH="$dirs" "$st" -f -o "$T/px.plain" "$EX/execvp_paths" tool >/dev/null 2>&1
  KILN_OUT="$T/paths-out" LD_PRELOAD=$LIBKILN PATH="$dirs" "$st" -f -o "$T/px.kiln" "$EX/execvp_paths" tool >/dev/null 2>&1
  # In both: strace's execve of the program, the loader's access of
  # /etc/ld.so.preload: 7 unprofiled (12 when kiln probed each directory first).
  n=$(count "$T/px.plain")
  if [ "$n" = 7 ]; then
    check_eq "execvp: a failed search of 5 directories costs the system calls it costs unprofiled (7)" \
      "$n" "$(count "$T/px.kiln")"
  else fail "execvp: system calls of a failed search" "$n unprofiled, expected 7"; fi
fi
