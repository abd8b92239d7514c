# Names a developer can act on: inlined frames and source lines from DWARF
# (read offline by the tool from the stacks file), equal to addr2line -i on
# the same addresses; pprof with mappings, addresses and lines, equal to
# kiln top; speedscope and flame graph units; stripped code named by its
# function (three hot functions, three entries); MiniDebugInfo and
# .gnu_debuglink; JIT code from a perf map; vDSO symbols; the pprof
# writer with 1,600 return addresses; two threads symbolizing at once.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/cpu_lib.sh"
export KILN_HZ=999 KILN_QUIET=1
PPROF="$B/pprof"
BIN="$EX/inline_hot"

# ---------------------------------------------------------------- inlining
d="$T/inline"
run_pair "inline_hot" "$d" "$BIN" 20
f=$(one "$d/inline_hot*.cpu.folded")
s=$(one "$d/inline_hot*.stacks")
check "inline_hot: a stacks file beside the folded file" test -s "$s"
# The folded file is what it always was: no inlined frame in it.
if grep -q ";mix " "$f"; then fail "inline_hot: folded file unchanged" "an inlined frame in $f"
else pass "inline_hot: folded file has the runtime's frames only"; fi
"$KILN" top -n 0 "$f" > "$T/top.txt"
self_of() { awk -v n="$2" '{ name = $0; sub(/^ *[0-9.,]+ +[0-9.]+% +[0-9.,]+ +[0-9.]+%  /, "", name);
  if (name == n) { gsub(",", "", $1); print $1; exit } }' "$1"; }
total=$(folded_total "$f")
mix=$(self_of "$T/top.txt" "mix")
# hot_mix's loop is mix, inlined: almost all of hot_mix's time is in it.
if [ -n "$mix" ] && [ "$mix" -gt $((total * 25 / 100)) ]; then pass "inline_hot: inlined mix is a frame ($mix of $total)"
else fail "inline_hot: inlined mix is a frame" "self '$mix' of $total"; fi
check "inline_hot: the lambda is a frame" grep -q "  hot_lambda::{lambda}::operator()$" "$T/top.txt"
"$KILN" tree --min 0 "$f" > "$T/tree.txt"
check "inline_hot: std::sort's inlined frames under hot_sort" \
  grep -q "^ *\[[0-9.]*%\] void std::sort<" "$T/tree.txt"

# Lines and inlined chains equal addr2line -i's on every address of the program.
addrs=$(awk -F'\t' '$1 == "frame" && $3 == "1" { print $4 }' "$s" | sort -u)
n=$(echo "$addrs" | wc -w)
"$KILN" lines -e "$BIN" $addrs | awk 'NR % 2 == 0' > "$T/ours.txt"
addr2line -i -f -C -e "$BIN" $addrs | awk 'NR % 2 == 0 { sub(/ \(discriminator [0-9]+\)$/, ""); print }' \
  > "$T/theirs.txt"
if [ "$n" -gt 10 ] && diff -q "$T/ours.txt" "$T/theirs.txt" >/dev/null; then
  pass "inline_hot: lines of $n addresses ($(wc -l < "$T/ours.txt") frames) equal addr2line -i's"
else
  fail "inline_hot: lines equal addr2line -i" "$n addresses; $(diff "$T/ours.txt" "$T/theirs.txt" | head -4 | tr '\n' '|')"
fi

# Hot lines known by construction: each hot function's heaviest line is
# inside its marked statement's range (skid may name the next line).
hot_line() { awk -v n="$2" 'index($0, "  " n " inline_hot.cc:") { split($NF, a, ":"); print a[2]; exit }' "$1"; }
"$KILN" top --lines -n 0 "$f" > "$T/lines.txt"
line_of() { grep -n "HOT:$1" "$KILN_ROOT/examples/inline_hot.cc" | cut -d: -f1; }
for spec in "mix mix 1" "hot_lambda::{lambda}::operator() lambda 0" "geo::Grid<double>::relax(int) relax 1"; do
  set -- $spec
  want=$(line_of "$2"); got=$(hot_line "$T/lines.txt" "$1")
  if [ -n "$got" ] && [ "$got" -ge "$want" ] && [ "$got" -le $((want + $3)) ]; then
    pass "inline_hot: top --lines: $1 hot at line $got (HOT:$2 is $want)"
  else fail "inline_hot: top --lines: $1's hot line" "got '$got', HOT:$2 at $want"; fi
done

# Flame graph: the inlined frame, its tooltip with its line.
"$KILN" flamegraph -o "$T/inline.svg" "$f"
check "flame graph: inlined frame with its line in the tooltip" \
  grep -qE "<title>mix \([0-9,]+ samples, [0-9.]+%; at inline_hot\.cc:3[1-4]\)</title>" "$T/inline.svg"
check "flame graph: valid XML" xmllint --noout "$T/inline.svg"

# pprof: -top equals kiln top, the two instantiations stay two functions,
# -list shows the hot line, mappings carry the build-id.
"$KILN" convert --to pprof -o "$T/inline.pb.gz" "$f"
if [ -x "$PPROF" ]; then
  "$PPROF" -top -nodecount=1000 -nodefraction=0 -sample_index=samples "$T/inline.pb.gz" 2>/dev/null |
    awk '/^ +[0-9]/ && $1 != "0" { flat = $1; name = $0; sub(/^ */, "", name)
      for (i = 0; i < 5; i++) sub(/^[^ ]+ +/, "", name)
      sub(/ \(inline\)$/, "", name); print name "\t" flat }' | sort > "$T/pprof_top.txt"
  awk 'NR > 2 && /^ +[0-9]/ { s = $1; gsub(",", "", s); name = $0;
      sub(/^ *[0-9.,]+ +[0-9.]+% +[0-9.,]+ +[0-9.]+%  /, "", name); if (s > 0) print name "\t" s }' \
    "$T/top.txt" | sort > "$T/kiln_top.txt"
  if [ -s "$T/kiln_top.txt" ] && diff -q "$T/pprof_top.txt" "$T/kiln_top.txt" >/dev/null; then
    pass "pprof -top equals kiln top ($(wc -l < "$T/kiln_top.txt") functions with self samples)"
  else fail "pprof -top equals kiln top" "$(diff "$T/pprof_top.txt" "$T/kiln_top.txt" | head -4 | tr '\n' '|')"; fi
  check "pprof: Grid<double>::relax and Grid<float>::relax not merged" \
    test "$(grep -c '^geo::Grid<\(double\|float\)>::relax(int)	' "$T/pprof_top.txt")" = 2
  "$PPROF" -list 'hot_mix' -sample_index=samples "$T/inline.pb.gz" > "$T/list.txt" 2>/dev/null
  mixline=$(grep -n "acc = mix(acc" "$KILN_ROOT/examples/inline_hot.cc" | cut -d: -f1)
  check "pprof -list hot_mix: the loop line holds the time" \
    grep -qE "^ +[0-9.]+ +[0-9.]+ +$mixline:  for \(long i" "$T/list.txt"
  bid=$(awk -F'\t' '$1 == "module" && $2 == "1" { print $3 }' "$s")
  check "pprof: the program's mapping with its build-id" \
    grep -q "$bid" <("$PPROF" -raw "$T/inline.pb.gz" 2>/dev/null)
else
  fail "pprof checks" "$PPROF missing (make $KILN_BUILD/pprof)"
fi

# pprof without a stacks file, and the runtime's own pprof (interval sets):
# the two instantiations stay two functions there too.
if [ -x "$PPROF" ]; then
  mkdir -p "$T/plain" && cp "$f" "$T/plain/"
  "$KILN" convert --to pprof -o "$T/plain.pb.gz" "$T/plain/$(basename "$f")"
  check "pprof from a folded file alone: Grid<double> and Grid<float> apart" test "$("$PPROF" -top \
    -nodefraction=0 "$T/plain.pb.gz" 2>/dev/null | grep -c ' geo::Grid<\(double\|float\)>::relax(int)$')" = 2
  d="$T/rtpprof"
  # Cumulative sets: the last one holds the whole run, whatever the timing.
  KILN_INTERVAL=1 KILN_INTERVAL_MODE=cumulative run_pair "inline_hot, runtime pprof" "$d" "$BIN" 20
  rt=$(ls "$d"/inline_hot*.cpu.pb.gz 2>/dev/null | sort | tail -n 1)
  check "runtime pprof: Grid<double> and Grid<float> apart" test "$("$PPROF" -top -nodefraction=0 -nodecount=1000000 \
    -sample_index=samples "$rt" 2>/dev/null | grep -c ' geo::Grid<\(double\|float\)>::relax(int)$')" = 2
  check "runtime pprof: mappings with the build-id, locations with addresses" \
    grep -q "$bid" <("$PPROF" -raw "$rt" 2>/dev/null)
fi

# speedscope: CPU in nanoseconds, frames with file and line.
"$KILN" convert --to speedscope -o "$T/inline.json" "$f"
check "speedscope: cpu in nanoseconds, mix with its file and line" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
p = d["profiles"][0]
mix = [f for f in d["shared"]["frames"] if f["name"] == "mix"]
ok = p["unit"] == "nanoseconds" and mix and all(f["file"].endswith("examples/inline_hot.cc") and 31 <= f["line"] <= 34 for f in mix)
sys.exit(0 if ok else 1)' "$T/inline.json"

# Without its stacks file (or with one of another run) a folded file reads as before.
mkdir -p "$T/alone" && cp "$f" "$T/alone/"
"$KILN" top -n 0 "$T/alone/$(basename "$f")" > "$T/alone.txt"
check "folded file alone: the runtime's frames, no inlined ones" test -z "$(self_of "$T/alone.txt" mix)"
cp "$s" "$T/alone/" && echo "_start;main 5" >> "$T/alone/$(basename "$f")"
"$KILN" top -n 0 "$T/alone/$(basename "$f")" > "$T/stale.txt"
check "a stacks file whose total differs is not used" test -z "$(self_of "$T/stale.txt" mix)"

# ---------------------------------------------------------- byte profiles
d="$T/bytes"
KILN_MODE=alloc run_pair "leaky (alloc)" "$d" "$EX/leaky"
fb=$(one "$d/leaky*.alloc_bytes.folded")
"$KILN" flamegraph -o "$T/bytes.svg" "$fb"
check "flame graph of a byte profile counts bytes" grep -qE "<title>all \([0-9,]+ bytes, 100%\)" "$T/bytes.svg"
for kind in alloc_bytes definite_bytes; do
  fk=$(one "$d/leaky*.$kind.folded")
  "$KILN" convert --to speedscope -o "$T/$kind.json" "$fk"
  check "speedscope: $kind in bytes" python3 -c '
import json, sys; sys.exit(0 if json.load(open(sys.argv[1]))["profiles"][0]["unit"] == "bytes" else 1)' "$T/$kind.json"
done
"$KILN" leaks "$d" > "$T/leaks.txt"
check "kiln leaks: at/by lines with file:line" grep -qE "^   at leak_[a-z]+\(\) \(leaky\.cc:[0-9]+\)$" "$T/leaks.txt"

# ---------------------------------------------------------- stripped code
# Function starts of the program, from its symbol table before stripping.
nm --defined-only "$BIN" | awk 'tolower($2) == "t" || tolower($2) == "w" { print $1 }' | sed 's/^0*//' | sort -u > "$T/starts.txt"
strip -o "$T/inline_hot.stripped" "$BIN"
d="$T/stripped"
run_pair "inline_hot stripped" "$d" "$T/inline_hot.stripped" 20
fs=$(one "$d/inline_hot*.cpu.folded")
tr ';' '\n' < "$fs" | sed 's/ [0-9]*$//' | grep -o '^inline_hot\.stripped+0x[0-9a-f]*$' | sort -u > "$T/entries.txt"
nent=$(wc -l < "$T/entries.txt")
bad=$(sed 's/.*+0x//' "$T/entries.txt" | grep -vxFf "$T/starts.txt" | head -3 | tr '\n' ' ')
hot=0
for fn in _Z7hot_mixml _Z10hot_lambdaRKSt6vectorIdSaIdEEi _ZN3geo4GridIdE5relaxEi; do
  a=$(nm "$BIN" | awk -v s="$fn" '$3 == s { sub(/^0*/, "", $1); print $1 }')
  grep -qx "inline_hot.stripped+0x$a" "$T/entries.txt" && hot=$((hot + 1))
done
if [ -z "$bad" ] && [ "$hot" = 3 ] && [ "$nent" -le 16 ]; then
  pass "stripped: $nent entries, each a function's start; hot_mix, hot_lambda, relax one entry each"
else fail "stripped: entries are functions" "$nent entries; not function starts: '$bad'; hot found $hot of 3"; fi

# MiniDebugInfo: the stripped file carries an xz'd symbol table (.gnu_debugdata).
m="$T/inline_hot.minidebug"
nm -D "$BIN" --format=posix --defined-only | awk '{ print $1 }' | sort > "$T/dynsyms"
nm "$BIN" --format=posix --defined-only | awk '$2 == "T" || $2 == "t" { print $1 }' | sort > "$T/funcsyms"
comm -13 "$T/dynsyms" "$T/funcsyms" > "$T/keep"
objcopy --only-keep-debug "$BIN" "$T/full.debug"
objcopy -S --remove-section .gdb_index --remove-section .comment --keep-symbols="$T/keep" "$T/full.debug" "$T/mini"
xz -f "$T/mini"
strip --strip-all -R .comment -o "$m" "$BIN"
objcopy --add-section .gnu_debugdata="$T/mini.xz" "$m"
d="$T/minidebug"
run_pair "inline_hot with MiniDebugInfo" "$d" "$m" 10
check "MiniDebugInfo: hot_mix named" grep -q ";hot_mix(unsigned long, long) [0-9]*$" "$(one "$d/inline_hot*.cpu.folded")"

# .gnu_debuglink: symbols and lines from the debug file next to the program.
mkdir -p "$T/dl"
objcopy --only-keep-debug "$BIN" "$T/dl/inline_hot.debug"
strip --strip-all -o "$T/dl/inline_hot" "$BIN"
(cd "$T/dl" && objcopy --add-gnu-debuglink=inline_hot.debug inline_hot)
d="$T/debuglink"
run_pair "inline_hot with a debuglink" "$d" "$T/dl/inline_hot" 10
fd=$(one "$d/inline_hot*.cpu.folded")
check "debuglink: hot_mix named" grep -q ";hot_mix(unsigned long, long) [0-9]*$" "$fd"
check "debuglink: the tool finds lines through it" grep -q "  mix inline_hot.cc:3[1-4]$" <("$KILN" top --lines -n 0 "$fd")

# ---------------------------------------------------------- JIT and vDSO
d="$T/jit"
run_pair "jit_vdso" "$d" "$EX/jit_vdso" 6
fj=$(one "$d/jit_vdso*.cpu.folded")
# The example leaves its perf maps, as JITs do (both runs of the pair).
grep -l "^[0-9a-f]* d JIT:hot_loop$" /tmp/perf-*.map 2>/dev/null | xargs -r rm -f
# Fixed work in each part: each has a good share whatever the load.
share_ok "jit_vdso: JIT code named from the perf map" "$fj" "JIT:hot_loop$" 50 45
share_ok "jit_vdso: no unnamed leaf" "$fj" "\[unknown\]$" 0 0
share_ok "jit_vdso: vDSO frames named (no [vdso]+0x)" "$fj" "\[vdso\]\+0x" 0 0
share_ok "jit_vdso: time in the vDSO's clock_gettime" "$fj" "clock_gettime;(__vdso_)?clock_gettime$" 50 45

# ---------------------------------------------------------- reliability
# 1,600 distinct return addresses: the pprof writer finishes (it hung).
d="$T/deep"
rm -rf "$d"
KILN_OUT=$d KILN_MODE=cpu,alloc KILN_INTERVAL=1 timeout 60 env LD_PRELOAD="$LIBKILN" "$EX/deep_chains" 10 >/dev/null 2>&1
rc=$?
check_eq "deep_chains: exits with pprof on (8 chains of 200 functions)" 0 "$rc"
heap=$(one "$d/deep_chains*.heap.pb.gz")
if [ -x "$PPROF" ] && [ -n "$heap" ]; then
  nlocs=$("$PPROF" -raw "$heap" 2>/dev/null | awk '/^Locations/ { on = 1; next } /^Mappings/ { on = 0 } on && /^ +[0-9]+: / { n++ } END { print n + 0 }')
  if [ "$nlocs" -ge 1600 ]; then pass "deep_chains: heap profile has $nlocs locations (>= 1600)"
  else fail "deep_chains: all locations" "$nlocs"; fi
else fail "deep_chains: heap profile" "no heap.pb.gz in $d"; fi

# Leak reports and dumps symbolizing at once (it crashed 3 of 3 runs).
ok=0
for i in 1 2 3; do
  rm -rf "$T/race"
  timeout 120 "$EX/symbolize_race" "$T/race" 100 >/dev/null 2>&1 && ok=$((ok + 1))
done
check_eq "symbolize_race: 3 runs of 100 reports against 100 dumps" 3 "$ok"
