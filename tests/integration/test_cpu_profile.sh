# CPU profiles of the examples under the real preload: shares of samples by
# construction, delivered rate, deep and truncated stacks, both unwinders.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/cpu_lib.sh"
export KILN_HZ=999 KILN_QUIET=1

# 60/30/10 by construction, with each unwinder on the binary it suits.
for variant in "libunwind cpu_split" "libunwind cpu_split.fp" "fp cpu_split.fp"; do
  set -- $variant
  d="$T/split-$1-$2"
  KILN_UNWIND=$1 run_pair "cpu_split ($1, $2)" "$d" "$EX/$2" 40
  f=$(one "$d/cpu_split*.cpu.folded")
  [ -n "$f" ] || { fail "cpu_split ($1, $2): profile written" "no file in $d"; continue; }
  share_ok "cpu_split ($1, $2) work60" "$f" ";work60;spin$" 60 2
  share_ok "cpu_split ($1, $2) work30" "$f" ";work30;spin$" 30 2
  share_ok "cpu_split ($1, $2) work10" "$f" ";work10;spin$" 10 2
  share_ok "cpu_split ($1, $2) rooted at main" "$f" "main;work" 100 1
  m=$(one "$d/cpu_split*.meta.json")
  hz=$(meta_field "$m" hz_delivered)
  if within "$hz" 999 100; then pass "cpu_split ($1, $2): delivered $hz Hz of 999 (>= 90%)"
  else fail "cpu_split ($1, $2): delivered rate" "$hz Hz of 999"; fi
  check_eq "cpu_split ($1, $2): no drops" 0 "$(meta_field "$m" dropped)"
  # Its one thread starts on a small first ring, which gives way to a
  # full one at 10 ms (the rate above spans the switch).
  grep -q '"timer": "perf cpu-clock"' "$m" &&
    check_eq "cpu_split ($1, $2): rings opened: a first one, then a full one" 2 "$(meta_field "$m" perf_rings_opened)"
  samples=$(meta_field "$m" samples)
  check_eq "cpu_split ($1, $2): folded total = samples counted" "$samples" "$(folded_total "$f")"
done

# fp on a binary without frame pointers: short stacks allowed, never a crash.
d="$T/fp-nofp"
KILN_UNWIND=fp run_pair "shapes (fp on a no-frame-pointer binary)" "$d" "$EX/shapes"
f=$(one "$d/shapes*.cpu.folded")
share_ok "shapes (fp, no-FP binary): leaves still named" "$f" "relax\(int\)$" 100 1

# Two threads, unequal work; the smaller one exits first.
d="$T/threads"
run_pair "threads" "$d" "$EX/threads"
f=$(one "$d/threads*.cpu.folded")
share_ok "threads: worker_big" "$f" "worker_big;burn$" 75 3
share_ok "threads: worker_small (exited early)" "$f" "worker_small;burn$" 25 3
# The two workers, each with its samples; main, which only creates and
# joins them, is there when one of its few instants was sampled.
m=$(one "$d/threads*.meta.json")
busy=$(grep -o '"samples": [0-9]*' <<<"$(sed -n 's/.*"threads_list": \[\(.*\)\],*$/\1/p' "$m")" | awk '$2 >= 50' | wc -l)
seen=$(meta_field "$m" threads)
{ [ "$busy" = 2 ] && [ "$seen" -ge 2 ] && [ "$seen" -le 3 ]; } &&
  pass "threads: both workers seen with their samples ($seen threads in all)" ||
  fail "threads: threads seen" "busy $busy, threads $seen"
# A program with one thread is followed by one ring of its own; its first
# pthread_create turns to one ring a CPU, inherited by every thread (the
# shares above are from those).
if grep -q '"timer": "perf cpu-clock"' "$(one "$d/threads*.meta.json")"; then
  check_eq "threads: rings opened: its own, then one a CPU" $((1 + $(getconf _NPROCESSORS_ONLN))) \
    "$(meta_field "$(one "$d/threads*.meta.json")" perf_rings_opened)"
fi

# 200-deep recursion: complete by default.
d="$T/recursion"
run_pair "recursion 200" "$d" "$EX/recursion" 200
f=$(one "$d/recursion*.cpu.folded")
deep=$(awk '{ n = gsub(/(^|;)recurse(;|$)/, "&"); if (n > m) m = n } END { print m + 0 }' "$f")
full=$(awk '{ s=$0; sub(/ [0-9]+$/,"",s); n=split(s,a,";"); c=0; for(i=1;i<=n;i++) if (a[i]=="recurse") c++; if (c>=199 && a[1]=="_start" && a[n]=="bottom") t+=$NF; s2+=$NF } END { printf "%d", 100*t/s2 }' "$f")
if [ "$full" -ge 95 ]; then pass "recursion: $full% of samples are whole (_start ... 199 x recurse ... bottom; recurse(1) tail-calls bottom)"
else fail "recursion: complete deep stacks" "only $full% complete"; fi
if grep -q "kiln: truncated" "$f"; then fail "recursion: no truncation marker at depth 200" "$(head -c 200 "$f")"
else pass "recursion: no truncation marker at default depth"; fi

# Deeper than the limit: the marker frame, then exactly max_depth frames.
for unwind in libunwind fp; do
  d="$T/trunc-$unwind"
  KILN_UNWIND=$unwind KILN_MAX_DEPTH=64 run_pair "recursion, max depth 64 ($unwind)" "$d" "$EX/recursion.fp" 200
  f=$(one "$d/recursion*.cpu.folded")
  # Every stack at the bottom of the recursion (not the start-up, the final
  # printf, or the short descent and climb, which a sample may land in) is
  # cut: the marker, then 64 frames.
  # (Kernel frames count in the 64; a run too short to name them leaves
  # them out of the line, so a stack through [kernel] may show fewer.)
  bad=$(awk '/;bottom/ { s=$0; sub(/ [0-9]+$/,"",s); n=split(s,a,";");
    if (a[1] != "[kiln: truncated]" || n > 65 || (n != 65 && s !~ /;\[kernel\]/)) b++ } END { print b + 0 }' "$f")
  check_eq "recursion, max depth 64 ($unwind): every stack is marker + 64 frames" 0 "$bad"
  deep=$(awk '/;bottom/ { n += $NF } END { print n + 0 }' "$f")
  if [ "$deep" -ge 100 ]; then pass "recursion, max depth 64 ($unwind): $deep samples in the recursion"
  else fail "recursion, max depth 64 ($unwind): samples in the recursion" "$deep"; fi
  m=$(one "$d/recursion*.meta.json")
  cut=$(awk '/^\[kiln: truncated\]/ { n += $NF } END { print n + 0 }' "$f")
  check_eq "recursion, max depth 64 ($unwind): truncated counted" "$cut" "$(meta_field "$m" truncated)"
done
# The health line names the right cause: the depth limit above, the end of
# the sample's stack copy below (a 256 KiB frame: the copy is 64 KiB).
m=$(one "$T/trunc-libunwind/recursion*.meta.json")
if grep -q 'deeper than KILN_MAX_DEPTH=64' "$m" && ! grep -q 'a sample copies' "$m"; then
  pass "recursion, max depth 64: health blames the depth limit"
else fail "recursion, max depth 64: health" "$(grep -A3 warnings "$m")"; fi
for unwind in libunwind fp; do
  d="$T/bigframe-$unwind"
  KILN_UNWIND=$unwind run_pair "big_frame ($unwind)" "$d" "$EX/big_frame.fp"
  f=$(one "$d/big_frame*.cpu.folded")
  m=$(one "$d/big_frame*.meta.json")
  cut=$(awk '/^\[kiln: truncated\];with_buffer;spin[ ;]/ { n += $NF } END { print n + 0 }' "$f")
  if [ "$cut" -ge 100 ]; then pass "big_frame ($unwind): $cut samples end at the 256 KiB frame, marked cut"
  else fail "big_frame ($unwind): cut samples" "$(cat "$f")"; fi
  if grep -q 'went on past the 64 KiB of stack a sample copies' "$m" && ! grep -q 'KILN_MAX_DEPTH' "$m"; then
    pass "big_frame ($unwind): health names the stack copy, not the depth limit"
  else fail "big_frame ($unwind): health" "$(grep -A3 warnings "$m")"; fi
done

# C++: demangled names, namespaces and templates, 2/3 vs 1/3.
d="$T/shapes"
run_pair "shapes (C++)" "$d" "$EX/shapes"
f=$(one "$d/shapes*.cpu.folded")
share_ok "shapes: demangled template methods under main" "$f" "main;geo::Grid<(double|float)>::relax\(int\)$" 100 1
for name in "geo::Grid<double>::relax(int)" "geo::Grid<float>::relax(int)"; do
  if grep -qF ";$name " "$f"; then pass "shapes: $name named"; else fail "shapes: $name named" "$(cat "$f")"; fi
done

# A plugin dlopen'd, run, dlclose'd: still named.
d="$T/plugin"
run_pair "plugin" "$d" "$EX/plugin"
f=$(one "$d/plugin*.cpu.folded")
share_ok "plugin: samples in the dlclose'd plugin named" "$f" "main;plugin_spin$" 67 4
share_ok "plugin: samples after dlclose" "$f" "main;main_spin$" 33 4

# Slower timers, chosen explicitly, still give the right shape. They tick
# near CONFIG_HZ (250 here): 100 rounds (2.5 s) give about 900 samples, and
# a share of 60% measured from n samples has a standard deviation of
# sqrt(0.24 / n); the check allows 4 of them (at least 4 points), so that
# counting noise alone fails it about once in 15,000 runs (40 rounds and
# a fixed 4 points failed about one run in ten: 57.9 to 63.9% in 8 runs).
for timer in posix itimer; do
  d="$T/timer-$timer"
  KILN_TIMER=$timer run_pair "cpu_split (KILN_TIMER=$timer)" "$d" "$EX/cpu_split" 100
  f=$(one "$d/cpu_split*.cpu.folded")
  n=$(awk '{ t += $NF } END { print t + 0 }' "$f")
  tol=$(awk -v n="$n" 'BEGIN { t = n > 0 ? 400 * sqrt(0.24 / n) : 100; printf "%.1f", t < 4 ? 4 : t }')
  share_ok "cpu_split (KILN_TIMER=$timer) work60 ($n samples)" "$f" ";work60;spin$" 60 "$tol"
  grep -q "\"timer\": \"$( [ $timer = posix ] && echo posix || echo setitimer)" "$(one "$d/cpu_split*.meta.json")" &&
    pass "cpu_split (KILN_TIMER=$timer): meta names the timer" || fail "KILN_TIMER=$timer: meta" "timer not named"
done
