# Leak categories at exit (kiln_scan.c) under the real preload: examples
# whose categories are known by construction, byte- and block-exact, equal
# to valgrind memcheck's LEAK SUMMARY on the same binary; threads still
# running at exit; KILN_LEAK_CHECK and KILN_SUPPRESS; the program unchanged.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/cpu_lib.sh"
export KILN_MODE=alloc KILN_QUIET=1
CATS="definite indirect possible reachable"

# cats META: "DB DN IB IN PB PN RB RN" from a meta.json.
cats() { local c out=; for c in $CATS; do out+="$(meta_field "$1" ${c}_bytes) $(meta_field "$1" ${c}_count) "; done; echo "${out% }"; }
# files DIR: the same from the category folded files.
files() {
  local c out=
  for c in $CATS; do
    out+="$(folded_total "$(one "$1/*.${c}_bytes.folded")") $(folded_total "$(one "$1/*.${c}_count.folded")") "
  done
  echo "${out% }"
}
# site FILE FUNC: the count of the stacks whose leaf is FUNC.
site() { awk -v f="$2" '{ s=$0; sub(/ [0-9]+$/,"",s); n=split(s,a,";"); if (a[n]==f) t+=$NF } END { print t+0 }' "$1"; }
# vg_cats BIN: valgrind's LEAK SUMMARY as "DB DN IB IN PB PN RB RN", less
# glibc's thread-control blocks (allocate_dtv) of threads still running,
# which kiln counts freed at exit as __libc_freeres does for exited ones.
vg_cats() {
  timeout 300 valgrind --leak-check=full --show-leak-kinds=all "$@" 2>&1 >/dev/null | tr -d , | awk '
    / are (definitely|indirectly|possibly) lost in loss record| are still reachable in loss record/ {
      rec_b = $2; rec_n = ($3 ~ /^\(/) ? $0 : $0; sub(/^.*bytes in /, "", rec_n); sub(/ blocks.*/, "", rec_n)
      rec_k = ($0 ~ /possibly/) ? "p" : "x"; next }
    /allocate_dtv/ && rec_k == "p" { dtv_b += rec_b; dtv_n += rec_n; rec_k = "x" }
    /definitely lost:/ { db = $4; dn = $7 } /indirectly lost:/ { ib = $4; in_ = $7 }
    /possibly lost:/ { pb = $4; pn = $7 } /still reachable:/ { rb = $4; rn = $7 }
    END { print db+0, dn+0, ib+0, in_+0, pb-dtv_b, pn-dtv_n, rb+0, rn+0 }'
}
have_vg=0; command -v valgrind >/dev/null && have_vg=1

# -------------------------------------------- every category by construction
for bin in leakcheck leakcheck.fp; do
  d="$T/$bin"
  run_pair "$bin" "$d" "$EX/$bin"
  m=$(one "$d/leakcheck*.meta.json")
  check_eq "$bin: categories by construction" "380 5 548 2 64 1 188 2" "$(cats "$m")"
  check_eq "$bin: category files add up to the same" "380 5 548 2 64 1 188 2" "$(files "$d")"
  check_eq "$bin: the four categories are what is still allocated" \
    "1180 10" "$(folded_total "$(one "$d/*.leak_bytes.folded")") $(folded_total "$(one "$d/*.leak_count.folded")")"
  check_eq "$bin: sites" "32 500 300 48 48 64 111 77" \
    "$(site "$(one "$d/*.definite_bytes.folded")" lose_owner) $(site "$(one "$d/*.indirect_bytes.folded")" lose_owner) \
$(site "$(one "$d/*.definite_bytes.folded")" lose_plain) $(site "$(one "$d/*.definite_bytes.folded")" lose_cycle) \
$(site "$(one "$d/*.indirect_bytes.folded")" lose_cycle) $(site "$(one "$d/*.possible_bytes.folded")" point_inside) \
$(site "$(one "$d/*.reachable_bytes.folded")" keep_global) $(site "$(one "$d/*.reachable_bytes.folded")" holder)"
  check_eq "$bin: the blocked thread was paused and resumed" "1 0" \
    "$(meta_field "$m" leak_scan_threads) $(meta_field "$m" leak_scan_threads_unstopped)"
  [ $have_vg = 1 ] && check_eq "$bin: equal to valgrind's LEAK SUMMARY" "$(vg_cats "$EX/$bin")" "$(cats "$m")"
done
[ $have_vg = 1 ] || fail "valgrind comparisons" "valgrind is not installed"

# Pointers in anonymous memory read in place: one touched page of a 64 MiB
# mapping, and in a fork child the pages it still shares with its parent.
# Equal to valgrind for both processes; the pages never touched are not
# read (the child's own faults stay far below the mapping's 16,384 pages).
d="$T/scan_anon"
run_pair "scan_anon" "$d" "$EX/scan_anon"
top=""; child=""
for m in "$d"/scan_anon.*.meta.json; do
  if [ "$(meta_field "$m" definite_bytes)" = 555 ]; then child=$m; else top=$m; fi
done
check_eq "scan_anon: parent's categories (reachable through a page amid untouched ones)" \
  "222 1 0 0 0 0 111 1" "$([ -n "$top" ] && cats "$top")"
check_eq "scan_anon: fork child's categories (reachable through a page shared with the parent)" \
  "555 2 0 0 0 0 111 1" "$([ -n "$child" ] && cats "$child")"
if [ $have_vg = 1 ]; then
  vg=$(timeout 300 valgrind --leak-check=full --show-leak-kinds=all "$EX/scan_anon" 2>&1 >/dev/null | tr -d , |
    awk '/definitely lost:/ { print "definite", $4, $7 } /still reachable:/ { print "reachable", $4, $7 }' | sort | tr '\n' ' ')
  check_eq "scan_anon: valgrind sees the same in both processes" \
    "definite 222 1 definite 555 2 reachable 111 1 reachable 111 1 " "$vg"
fi
faults=$(KILN_OUT="$T/scan_anon_faults" LD_PRELOAD=$LIBKILN "$EX/scan_anon" faults | sed -n 's/^child minflt //p')
[ -n "$faults" ] && [ "$faults" -lt 8192 ] && pass "scan_anon: the child's scan maps no untouched page ($faults faults)" ||
  fail "scan_anon: the child's scan maps no untouched page" "$faults faults (the mapping has 16384 pages)"

# The kiln leaks report: definitely lost first, fails on definite only.
out=$("$KILN" leaks --error-exitcode 9 "$T/leakcheck" 2>&1); rc=$?
check_eq "kiln leaks: --error-exitcode on definite leaks" 9 "$rc"
echo "$out" | grep -q "300 bytes in 3 blocks are definitely lost" && pass "kiln leaks: category report" ||
  fail "kiln leaks: category report" "$out"

# ------------------------------------------------------------------- C++
for bin in leakcheck_cxx leakcheck_cxx.fp; do
  d="$T/$bin"
  run_pair "$bin" "$d" "$EX/$bin"
  m=$(one "$d/leakcheck_cxx*.meta.json")
  check_eq "$bin: categories by construction" "528 4 200 1 0 0 72 1" "$(cats "$m")"
  check_eq "$bin: category files add up to the same" "528 4 200 1 0 0 72 1" "$(files "$d")"
  [ $have_vg = 1 ] && check_eq "$bin: equal to valgrind's LEAK SUMMARY" "$(vg_cats "$EX/$bin")" "$(cats "$m")"
done
check_eq "leakcheck_cxx: the vector's buffer is indirect under lose_vector" 200 \
  "$(site "$(one "$T/leakcheck_cxx/*.indirect_bytes.folded")" "lose_vector()")"

# ------------------------------------------- threads still running at exit
# 4 blocked, 2 busy, 2 allocating: all paused, none left behind, no hang;
# reachable is 448 B in 6 plus an allocating thread's block in flight.
for i in 1 2 3; do
  for bin in leakcheck_threads leakcheck_threads.fp; do
    d="$T/$bin-$i"
    run_pair "$bin (run $i)" "$d" timeout 60 "$EX/$bin"
    m=$(one "$d/leakcheck_threads*.meta.json")
    set -- $(cats "$m")
    check_eq "$bin (run $i): lost categories exact" "300 3 0 0 0 0" "$1 $2 $3 $4 $5 $6"
    extra=$(( $7 - 448 )); extran=$(( $8 - 6 ))
    if [ $extra = $((24 * extran)) ] && [ $extran -ge 0 ] && [ $extran -le 2 ]; then
      pass "$bin (run $i): reachable $7 B in $8 (448 in 6 held, $extran in flight)"
    else fail "$bin (run $i): reachable" "$7 B in $8"; fi
    check_eq "$bin (run $i): 8 threads paused, none missed" "8 0" \
      "$(meta_field "$m" leak_scan_threads) $(meta_field "$m" leak_scan_threads_unstopped)"
  done
done
# No valgrind run for this one: valgrind runs one thread at a time, and
# with two threads allocating as fast as they can the run took 9 minutes
# here (its categories are checked by construction above).

# ------------------------------------------- a program that frees everything
d="$T/clean"
run_pair "clean" "$d" "$EX/clean"
check_eq "clean: every category 0" "0 0 0 0 0 0 0 0" "$(cats "$(one "$d/clean*.meta.json")")"
check_eq "clean: category files empty" "0 0 0 0 0 0 0 0" "$(files "$d")"

# ---------------------------------------------------------- KILN_LEAK_CHECK
d="$T/summary"
KILN_LEAK_CHECK=summary run_pair "KILN_LEAK_CHECK=summary" "$d" "$EX/leakcheck"
check_eq "KILN_LEAK_CHECK=summary: totals in meta" "380 5 548 2 64 1 188 2" "$(cats "$(one "$d/*.meta.json")")"
check_eq "KILN_LEAK_CHECK=summary: no category files" 0 "$(ls "$d" | grep -c 'definite\|indirect\|possible\|reachable')"
KILN_LEAK_CHECK=summary KILN_QUIET=0 KILN_OUT="$T/sline" LD_PRELOAD=$LIBKILN "$EX/leakcheck" 2>"$T/sline.err" >/dev/null
grep -q "definitely lost 380 B in 5 blocks, indirectly lost 548 B in 2, possibly lost 64 B in 1, still reachable 188 B in 2" \
  "$T/sline.err" && pass "summary line: the four categories" || fail "summary line" "$(cat "$T/sline.err")"
d="$T/off"
KILN_LEAK_CHECK=off run_pair "KILN_LEAK_CHECK=off" "$d" "$EX/leakcheck"
check_eq "KILN_LEAK_CHECK=off: no scan, no category files" "0 0" \
  "$(grep -c leak_scan "$(one "$d/*.meta.json")") $(ls "$d" | grep -c 'definite\|reachable')"
check_eq "KILN_LEAK_CHECK=off: leak files as before" 1180 "$(folded_total "$(one "$d/*.leak_bytes.folded")")"
d="$T/sampled"
KILN_ALLOC_SAMPLE=4096 run_pair "sampled mode" "$d" "$EX/leakcheck"
check_eq "sampled mode: no scan (it needs every block)" 0 "$(ls "$d" | grep -c 'definite')"
KILN_LEAK_CHECK=most KILN_QUIET= run_pair "bad KILN_LEAK_CHECK" "$T/badlc" "$EX/clean"
check_eq "bad KILN_LEAK_CHECK: one kiln: line" 1 "$(grep -c '^kiln: KILN_LEAK_CHECK=most: expected full, summary or off' "$ERR")"

# ------------------------------------------------------------ suppressions
printf '# known leaks\n\nleak:lose_plain\n  leak:^point_*  \nleak:nothing_matches$\n' > "$T/supp.txt"
d="$T/supp"
KILN_SUPPRESS="$T/supp.txt" run_pair "KILN_SUPPRESS" "$d" "$EX/leakcheck"
m=$(one "$d/*.meta.json")
check_eq "KILN_SUPPRESS: matched stacks leave the categories" "80 2 548 2 0 0 188 2" "$(cats "$m")"
check_eq "KILN_SUPPRESS: and are counted" "364 4" "$(meta_field "$m" suppressed_bytes) $(meta_field "$m" suppressed_count)"
check_eq "KILN_SUPPRESS: category files agree" "80 2 548 2 0 0 188 2" "$(files "$d")"
printf 'leak:libleakcheck_nonexistent.so\nleak:main$\n' > "$T/supp2.txt"
d="$T/supp2"
KILN_SUPPRESS="$T/supp2.txt" run_pair "KILN_SUPPRESS (anchored at the end)" "$d" "$EX/leakcheck"
check_eq "KILN_SUPPRESS: 'main\$' matches every stack under main (not the thread's)" "0 0 0 0 0 0 77 1" "$(cats "$(one "$d/*.meta.json")")"
printf 'leak:ok\nrace:lose_plain\n' > "$T/bad.txt"
KILN_SUPPRESS="$T/bad.txt" KILN_QUIET= run_pair "KILN_SUPPRESS: a bad file" "$T/badsupp" "$EX/leakcheck"
check_eq "KILN_SUPPRESS: a bad line is one kiln: line" 1 "$(grep -c "^kiln: .*bad.txt:2: expected leak:PATTERN" "$ERR")"
check_eq "KILN_SUPPRESS: a bad file suppresses nothing" "380 5 548 2 64 1 188 2" "$(cats "$(one "$T/badsupp/*.meta.json")")"
KILN_SUPPRESS="$T/missing.txt" KILN_QUIET= run_pair "KILN_SUPPRESS: a missing file" "$T/nosupp" "$EX/leakcheck"
check_eq "KILN_SUPPRESS: a missing file is one kiln: line" 1 "$(grep -c "^kiln: KILN_SUPPRESS=.*missing.txt" "$ERR")"

# ------------------------------------- CPython (its arenas are mmap'd) (11.11)
# The real interpreter: its object arenas are the program's own mappings,
# roots as valgrind scans them; what __libc_freeres frees (locales, time
# zones, converters, the loader's lists) is not the program's. Exactly
# valgrind's LEAK SUMMARY, with glibc's malloc and with jemalloc behind kiln.
PY=/usr/bin/python3
vg_summary() {
  timeout 120 valgrind --leak-check=full "$@" 2>&1 >/dev/null | tr -d , | awk '
    /definitely lost:/ { db = $4; dn = $7 } /indirectly lost:/ { ib = $4; in_ = $7 }
    /possibly lost:/ { pb = $4; pn = $7 } /still reachable:/ { rb = $4; rn = $7 }
    END { print db+0, dn+0, ib+0, in_+0, pb+0, pn+0, rb+0, rn+0 }'
}
if [ -x "$PY" ]; then
  # The pool's threads are joined when the "with" ends, but each OS thread
  # frees its last blocks after that: the script waits until they are gone
  # (tasks other than the main one and kiln's own), so that what is live at
  # exit is the same in every run (a block or two differed under load).
  threads='import json, os, time, concurrent.futures as cf
with cf.ThreadPoolExecutor(4) as ex: print(sum(ex.map(lambda x: len(json.dumps(list(range(x)))), range(200))))
def others():
  n = 0
  for t in os.listdir("/proc/self/task"):
    try: n += t != str(os.getpid()) and not open("/proc/self/task/" + t + "/comm").read().startswith("kiln")
    except OSError: pass
  return n
while others(): time.sleep(0.001)'
  for script in 'import json, re' "$threads"; do
    name="python3 -c '${script%%$'\n'*}'"
    d=$(mktemp -d "$T/py.XXXXXX")
    run_pair "$name" "$d" "$PY" -c "$script"
    m=$(one "$d/*.meta.json")
    set -- $(cats "$m")
    check_eq "$name: nothing lost" "0 0 0 0 0 0" "$1 $2 $3 $4 $5 $6"
    [ $have_vg = 1 ] && check_eq "$name: valgrind's LEAK SUMMARY" "$(vg_summary "$PY" -c "$script")" "$(cats "$m")"
    je=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2
    if [ -e "$je" ]; then
      d=$(mktemp -d "$T/pyje.XXXXXX")
      KILN_OUT=$d LD_PRELOAD="$LIBKILN:$je" "$PY" -c "$script" >/dev/null 2>&1
      want=$(cats "$m") got=$(cats "$(one "$d/*.meta.json")")
      if [ "$want" = "$got" ]; then pass "$name, jemalloc behind kiln: the same categories"
      else # the stacks that differ, so that a failure says which blocks
        diff <(sort "$(dirname "$m")"/*.reachable_bytes.folded) <(sort "$d"/*.reachable_bytes.folded) | cut -c1-400 > "$d.diff"
        fail "$name, jemalloc behind kiln: the same categories" "expected '$want', got '$got'; reachable stacks: $(head -c 3000 "$d.diff")"
      fi
    fi
  done
  out=$("$KILN" leaks --error-exitcode 7 "$(dirname "$m")" 2>&1); rc=$?
  check_eq "python3: kiln leaks --error-exitcode passes a correct program" 0 "$rc"
else
  fail "python3 leak check" "$PY not installed"
fi

# ------------------------------------------- stream buffers (11.13)
# Only the buffers glibc made are glibc's: one the program gave stdout with
# setvbuf and forgot is definitely lost, as valgrind says.
cc -O2 -g -o "$T/leak_setvbuf" "$(dirname "$0")/leak_setvbuf.c" || fail "leak_setvbuf: build" "cc failed"
for args in "" "stderr-too"; do
  name="setvbuf${args:+ (stdout and stderr)}"
  d=$(mktemp -d "$T/vbuf.XXXXXX")
  run_pair "$name" "$d" "$T/leak_setvbuf" $args
  want="10000 1 0 0 0 0 472 1"; [ -n "$args" ] && want="15000 2 0 0 0 0 472 1"
  check_eq "$name: the program's buffers lost, the open FILE reachable" "$want" "$(cats "$(one "$d/*.meta.json")")"
  [ $have_vg = 1 ] && check_eq "$name: valgrind's LEAK SUMMARY" "$(vg_summary "$T/leak_setvbuf" $args)" "$(cats "$(one "$d/*.meta.json")")"
done

# ---------------------------- threads that block every signal (11.15)
# They cannot be parked with a signal: not waited for (the scan takes
# milliseconds, not a second), stopped with ptrace by a helper process
# instead, their registers and their stacks from the stack pointer up
# scanned: a block held only in a register is reachable, one whose address
# lies in a dead frame below the stack pointer is lost, as valgrind says.
cc -O2 -g -pthread -o "$T/leak_blocked_threads" "$(dirname "$0")/leak_blocked_threads.c" || fail "leak_blocked_threads: build" "cc failed"
d=$(mktemp -d "$T/blocked.XXXXXX")
run_pair "blocked threads" "$d" "$T/leak_blocked_threads"
m=$(one "$d/*.meta.json")
check_eq "blocked threads: categories" "110 7 0 0 0 0 400 4" "$(cats "$m")"
check_eq "blocked threads: all 4 stopped (by ptrace), none left" "4 4 0" \
  "$(meta_field "$m" leak_scan_threads) $(meta_field "$m" leak_scan_threads_traced) $(meta_field "$m" leak_scan_threads_unstopped)"
if awk -v s="$(meta_field "$m" leak_scan_seconds)" 'BEGIN { exit !(s < 0.5) }'; then
  pass "blocked threads: the scan waited for nobody ($(meta_field "$m" leak_scan_seconds) s)"
else fail "blocked threads: the scan took" "$(meta_field "$m" leak_scan_seconds) s"; fi
[ $have_vg = 1 ] && check_eq "blocked threads: valgrind's LEAK SUMMARY (less glibc's thread blocks)" \
  "$(vg_cats "$T/leak_blocked_threads")" "$(cats "$m")"
check_eq "blocked threads: no warning on stderr" "" \
  "$(grep -v '^kiln: [a-z_]*\[[0-9]*\]: ' "$ERR")"
