# kiln linked into programs (no LD_PRELOAD): the API of include/kiln.h —
# leak scopes, budgets, the C++ guard, a cmocka suite, region profiling —
# and programs built only with the installed pkg-config flags, static and
# shared.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/cpu_lib.sh"
unset KILN_MODE KILN_OUT

# run_checks NAME BINARY: the example prints ok/not ok lines, exits 0.
run_checks() {
  local out rc
  out=$(cd "$T/cwd" && "$2" "$T/report.txt" 2>"$T/err"); rc=$?
  while read -r line; do
    case "$line" in
      "ok "*) pass "$1: ${line#ok }" ;;
      "not ok "*) fail "$1: ${line#not ok }" "$(cat "$T/err")" ;;
    esac
  done <<< "$out"
  check_eq "$1: exit status" 0 "$rc"
}
mkdir -p "$T/cwd"
run_checks "check_api (libkiln.a)" "$EX/check_api"
check_eq "check_api: never started, so no profile files were written" "" "$(ls "$T/cwd")"
grep -q "kiln: 212 bytes in 3 blocks leaked in the scope, from 3 sites" "$T/report.txt" &&
  pass "check_api: report total" || fail "check_api: report total" "$(cat "$T/report.txt")"
awk '/12 bytes in 1 blocks leaked/ { getline a; getline b; print a; print b }' "$T/report.txt" | tr -s ' ' > "$T/site"
check_eq "check_api: report stack of the 12-byte site, leaf first" "$(printf 'kiln: at join\nkiln: by cache_forever')" "$(cat "$T/site")"

# The report is printed after other symbolization sessions: repeated runs
# (a stale lookup cache once crashed here one run in ten).
bad=0
for i in $(seq 1 15); do (cd "$T/cwd" && "$EX/check_api" "$T/report.txt" >/dev/null 2>&1) || bad=$((bad + 1)); done
check_eq "check_api: 15 runs, no failure" 0 "$bad"

# C++ guard: clean scopes pass; a leaking one aborts with the report.
out=$("$EX/check_raii" 2>"$T/err"); rc=$?
check_eq "check_raii: clean guarded scopes pass" "0" "$rc"
grep -q "report_only guard saw 1 leaked block" <<< "$out" && pass "check_raii: report_only guard counts the leak" ||
  fail "check_raii: report_only" "$out"
"$EX/check_raii" leak >/dev/null 2>"$T/err"; rc=$?
check_eq "check_raii leak: aborts (SIGABRT)" 134 "$rc"
grep -q "kiln: 40 bytes in 1 blocks leaked in the scope" "$T/err" && grep -q "at leaky_helper()" "$T/err" &&
  pass "check_raii leak: report names 40 bytes at leaky_helper" || fail "check_raii leak: report" "$(cat "$T/err")"

# cmocka: a fixture's scope fails the leaking test.
"$EX/check_cmocka" >"$T/out" 2>&1; check_eq "check_cmocka: suite passes" 0 "$?"
KILN_DEMO_LEAK=1 "$EX/check_cmocka" >"$T/out" 2>&1; rc=$?
[ "$rc" -ne 0 ] && grep -q "ERROR.*test_dup_upper" "$T/out" && grep -q "7 bytes in 1 blocks leaked" "$T/out" &&
  pass "check_cmocka: a leaking test fails with the report" || fail "check_cmocka leak" "rc $rc $(cat "$T/out")"

# Region profiling, twice, with a reset between.
"$EX/region" "$T/region" >/dev/null 2>&1; check_eq "region: runs" 0 "$?"
for phase in one two; do
  f=$(one "$T/region/$phase/region*.cpu.folded")
  other=$([ $phase = one ] && echo two || echo one)
  share_ok "region $phase: CPU in phase_$phase (kiln_start/stop themselves may take a sample)" "$f" "main;phase_$phase;burn$" 100 1.5
  if grep -q "outside\|phase_$other" "$T/region/$phase"/*.folded; then fail "region $phase: nothing from outside" "$(cat "$T/region/$phase"/*.folded)"
  else pass "region $phase: nothing from outside the region"; fi
done
check_eq "region: allocations of cycle two only" "4000 2" \
  "$(folded_total "$(one "$T/region/two/region*.alloc_bytes.folded")") $(folded_total "$(one "$T/region/two/region*.alloc_count.folded")")"

# Built only with the installed pkg-config flags.
if make -s -C "$KILN_ROOT" install PREFIX="$T/inst" BUILD="$B" >"$T/install.log" 2>&1; then
  pass "make install PREFIX=..."
else
  fail "make install PREFIX=..." "$(tail -5 "$T/install.log")"
fi
for f in bin/kiln lib/libkiln.so lib/libkiln.a include/kiln.h lib/pkgconfig/kiln.pc lib/pkgconfig/kiln-static.pc; do
  [ -f "$T/inst/$f" ] && pass "installed $f" || fail "installed $f" "missing"
done
export PKG_CONFIG_PATH="$T/inst/lib/pkgconfig"
if cc -O1 -o "$T/api_shared" "$KILN_ROOT/examples/check_api.c" $(pkg-config --cflags --libs kiln) -lpthread 2>"$T/cc.err"; then
  pass "pkg-config kiln: builds against libkiln.so"
  ( cd "$T/cwd" && LD_LIBRARY_PATH="$T/inst/lib" "$T/api_shared" "$T/r2" >"$T/o2" 2>&1 ); rc=$?
  check_eq "pkg-config kiln (shared): all checks pass" "0 all passed" "$rc $(tail -n 1 "$T/o2")"
  LD_LIBRARY_PATH="$T/inst/lib" ldd "$T/api_shared" | grep -q "$T/inst/lib/libkiln.so" &&
    pass "pkg-config kiln (shared): linked to the installed libkiln.so" || fail "shared link" "$(ldd "$T/api_shared")"
else
  fail "pkg-config kiln: build" "$(cat "$T/cc.err")"
fi
if cc -O1 -o "$T/api_static" "$KILN_ROOT/examples/check_api.c" $(pkg-config --cflags --libs kiln-static) -lpthread 2>"$T/cc.err"; then
  pass "pkg-config kiln-static: builds against libkiln.a"
  ( cd "$T/cwd" && "$T/api_static" "$T/r3" >"$T/o3" 2>&1 ); rc=$?
  check_eq "pkg-config kiln-static: all checks pass" "0 all passed" "$rc $(tail -n 1 "$T/o3")"
  ldd "$T/api_static" | grep -q libkiln && fail "static link" "depends on a libkiln.so" || pass "pkg-config kiln-static: no libkiln.so needed"
else
  fail "pkg-config kiln-static: build" "$(cat "$T/cc.err")"
fi
check_eq "linked programs never wrote profile files" "" "$(ls "$T/cwd")"

# kiln needs the dynamic loader: a fully static (-static) link is refused
# at build time, never a program left without an allocator.
if cc -static -O1 -I"$KILN_ROOT/include" -o "$T/api_full_static" "$KILN_ROOT/examples/check_api.c" "$B/libkiln.a" \
     -lunwind -llzma -ldl -lm -lpthread >"$T/static.log" 2>&1; then
  fail "-static link refused" "it linked: $T/api_full_static"
else
  grep -q "multiple definition of .malloc" "$T/static.log" && pass "-static link refused at build time (multiple definition of malloc)" ||
    fail "-static link refused" "$(head -3 "$T/static.log")"
fi

# Leak scopes on what tripped them (11.14): a thread created in a scope
# (glibc's TLS vector is glibc's), three leaks from one call site (one
# site), a worker thread's leak (its stack starts at the worker), no frame
# of kiln's own pthread_create wrapper in any report; linked and preloaded.
cc -O2 -g -pthread -Iinclude -I"$KILN_ROOT/include" -o "$T/leak_scopes.a" "$(dirname "$0")/leak_scopes.c" "$B/libkiln.a" -lunwind -ldl -lm &&
  cc -O2 -g -pthread -I"$KILN_ROOT/include" -o "$T/leak_scopes.so" "$(dirname "$0")/leak_scopes.c" -L"$B" -lkiln -Wl,-rpath,"$B" ||
  fail "leak_scopes: build" "cc failed"
for how in linked preloaded; do
  if [ $how = linked ]; then out=$("$T/leak_scopes.a" 2>&1); else
    out=$(KILN_MODE=alloc KILN_QUIET=1 KILN_OUT="$T/scopes-out" LD_PRELOAD=$LIBKILN "$T/leak_scopes.so" 2>&1); fi
  check_eq "scopes ($how): a thread made in the scope leaks nothing (no allocate_dtv)" "thread: blocks 0 sites 0 bytes 0" \
    "$(grep '^thread:' <<< "$out")"
  check_eq "scopes ($how): three leaks from one call site are one site" "loop: blocks 3 sites 1 bytes 48" "$(grep '^loop:' <<< "$out")"
  check_eq "scopes ($how): a worker's leak" "worker: blocks 1 sites 1 bytes 48" "$(grep '^worker:' <<< "$out")"
  check_eq "scopes ($how): its site starts at the worker" "kiln: at leaky_worker" \
    "$(grep -A1 '^worker:' -A3 <<< "$out" | grep -m1 'at ' | tr -s ' ')"
  check_eq "scopes ($how): no kiln frame in any report" 0 "$(grep -c 'kiln:  *\(at\|by\) kiln_' <<< "$out")"
  check_eq "scopes ($how): glibc's allocation in pthread_create: one pthread_create frame (kiln's wrapper cut)" 1 \
    "$(sed -n '/at allocate_dtv/,/by main/p' <<< "$out" | grep -c 'by pthread_create$')"
done
