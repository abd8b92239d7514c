# Sanitizer builds in make test (issue 11, "make asan and make tsan run in
# CI"): build/asan (AddressSanitizer + UBSan) and build/tsan
# (ThreadSanitizer), made by the Makefile's san-build (make asan, make tsan
# run one alone: KILN_SAN=asan|tsan). Checked here:
#  - the unit tests of the runtime's modules under each;
#  - the API from threads, linked (libkiln.a built with the sanitizer):
#    symbolize_race (leak reports against dumps, each with its own
#    symbolizer) and check_api (scopes in four threads at once);
#  - the tool built with ASan+UBSan on every command over the renderer's
#    inputs (its parsers are fuzzed with the same sanitizers in
#    tests/render/test_render_fuzz.sh).
# A sanitizer report fails its check (exit status, or the report's text).
source "$(dirname "$0")/../lib.sh"
cd "$KILN_ROOT"
which=${KILN_SAN:-asan tsan}
ASB="$KILN_ROOT/build/asan" TSB="$KILN_ROOT/build/tsan"
# check_api and symbolize_race leak on purpose: LeakSanitizer would fail them.
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=0:halt_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
unset KILN_MODE KILN_OUT

# san_ok NAME LOG RC: passes when RC is 0 and LOG has no sanitizer report.
san_ok() {
  if [ "$3" = 0 ] && ! grep -qE 'ERROR: (Address|Leak|Thread)Sanitizer|WARNING: ThreadSanitizer|runtime error:' "$2"; then
    pass "$1"
  else
    fail "$1" "exit $3: $(grep -m1 -A12 -E 'Sanitizer|runtime error:|not ok' "$2" | head -14 | tr '\n' '|')"
  fi
}

units() { # units DIR NAME... (env KT_* from the caller)
  local dir=$1 t; shift
  for t in "$@"; do
    if [ ! -x "$dir/tests/unit/$t" ]; then fail "$(basename "$dir"): unit/$t" "not built (make san-build)"; continue; fi
    "$dir/tests/unit/$t" > "$T/u.log" 2>&1
    san_ok "$(basename "$dir"): unit/$t ($(grep -c '^PASS' "$T/u.log") checks)" "$T/u.log" $?
  done
}

linked() { # linked DIR ROUNDS [ENV...]: symbolize_race and check_api
  local dir=$1 rounds=$2 san; san=$(basename "$1"); shift 2
  rm -rf "$T/race"
  env "$@" timeout 300 "$dir/examples/symbolize_race" "$T/race" "$rounds" > "$T/race.log" 2>&1
  san_ok "$san: symbolize_race, $rounds leak reports against $rounds dumps in two threads" "$T/race.log" $?
  mkdir -p "$T/cwd.$san"
  (cd "$T/cwd.$san" && env "$@" timeout 300 "$dir/examples/check_api" "$T/report.$san.txt") > "$T/api.log" 2>&1
  local rc=$?
  san_ok "$san: check_api (scopes in four threads, budgets, reports): $(grep -c '^ok' "$T/api.log") ok" "$T/api.log" $rc
  check_eq "$san: check_api: no 'not ok'" 0 "$(grep -c '^not ok' "$T/api.log")"
}

case " $which " in *" asan "*)
  units "$ASB" test_ring test_stacktab test_options test_symbols test_folded test_fmt test_suppress
  linked "$ASB" 30
  K="$ASB/kiln" IN=tests/render/input
  if [ -x "$K" ]; then
    : > "$T/tool.log"; rc=0
    for f in "$IN"/*.folded; do
      for cmd in "flamegraph -o $T/o.svg" "top" "tree" "convert --to speedscope -o $T/o.json" \
                 "convert --to pprof -o $T/o.pb.gz" "explain" "report -o $T/o.html"; do
        # shellcheck disable=SC2086
        "$K" $cmd "$f" >> "$T/tool.log" 2>&1 < /dev/null
        r=$?
        # a clean refusal (status 1, one kiln: line) is fine; a sanitizer's exit is not
        [ "$r" -le 1 ] || { rc=$r; echo "== $cmd $f: status $r" >> "$T/tool.log"; }
      done
    done
    "$K" diff "$IN/before.folded" "$IN/after.folded" >> "$T/tool.log" 2>&1; [ $? -le 1 ] || rc=1
    "$K" report -o "$T/d.html" "$IN/before.folded" "$IN/after.folded" >> "$T/tool.log" 2>&1; [ $? -le 1 ] || rc=1
    for d in "$IN"/leaks*; do [ -d "$d" ] && { "$K" leaks "$d" >> "$T/tool.log" 2>&1; [ $? -le 1 ] || rc=1; }; done
    san_ok "asan: the tool's commands over $(ls "$IN"/*.folded | wc -l) inputs (flamegraph, top, tree, convert, explain, report, diff, leaks)" "$T/tool.log" $rc
  else
    fail "asan: the tool" "$K not built (make san-build)"
  fi ;;
esac

case " $which " in *" tsan "*)
  # test_symbols' two symbolizing threads: 20 rounds each, not 300 (~0.2 s
  # a round under TSan).
  KT_SYMBOLS_ROUNDS=20 units "$TSB" test_ring test_stacktab test_symbols test_folded
  # libunwind's per-thread cache is freed by a key destructor that runs
  # after ThreadSanitizer has let go of the exiting thread (a crash inside
  # TSan): the allocation stacks are walked with frame pointers here. A
  # dump costs ~8 s under TSan on a loaded 2-core machine: 3 rounds.
  linked "$TSB" 3 KILN_UNWIND=fp ;;
esac
