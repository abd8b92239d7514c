# CPU time as perf sees it: kernel time at the call site that spent it,
# threads that block signals, no EINTR, kiln's own hook time named as
# kiln's, and kiln's descriptors never the program's.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/cpu_lib.sh"
export KILN_HZ=999 KILN_QUIET=1

root=false
[ "$(id -u)" = 0 ] && root=true
paranoid=$(cat /proc/sys/kernel/perf_event_paranoid 2>/dev/null || echo 3)
kernel_ok=false
if $root || [ "$paranoid" -le 1 ]; then kernel_ok=true; fi

# kiln's share of stacks containing the [kernel] frame, and perf's share of
# samples whose ip is in the kernel, kiln's own thread left out.
kiln_kernel_share() { folded_share "$1" '\[kernel\]'; }
perf_kernel_share() {
  perf script -i "$1" -F comm,ip 2>/dev/null |
    awk '$1 != "kiln-collector" { t++; if ($2 ~ /^ffff/) k++ } END { if (t == 0) print "nan"; else printf "%.1f\n", 100 * k / t }'
}

# 1. Half computation, half pread from the page cache, in one thread: the
# reads' time is kernel time under read_chunks; perf on the same run agrees.
d="$T/io"
if $kernel_ok && command -v perf >/dev/null; then
  plain=$("$EX/io_split" 2 2>/dev/null)
  prof=$(perf record -q -F 999 -e cpu-clock -o "$T/io.perf" -- \
    env KILN_OUT="$d" LD_PRELOAD="$LIBKILN" "$EX/io_split" 2 2>"$T/io.err")
  check_eq "io_split under perf and kiln: same stdout" "$plain" "$prof"
  f=$(one "$d/io_split*.cpu.folded")
  k=$(kiln_kernel_share "$f")
  p=$(perf_kernel_share "$T/io.perf")
  if within "$k" "$p" 5; then pass "io_split: kernel share $k% (perf on the same run: $p%)"
  else fail "io_split: kernel share" "kiln $k% vs perf $p%"; fi
  if within "$k" 40 25; then pass "io_split: kernel time is a large part ($k%)"
  else fail "io_split: kernel share by construction" "$k%"; fi
  # By construction each phase has half the thread's CPU time (user and
  # system): the reads' share, kernel time included, is about half.
  share_ok "io_split: read_chunks (with its kernel time)" "$f" ";read_chunks[^;]*;(__libc_)?pread(64)?$" 50 6
  share_ok "io_split: compute" "$f" ";compute$" 50 6
  kr=$(awk '/\[kernel\]/ { t += $NF; if ($0 ~ /;read_chunks[^;]*;/) r += $NF } END { if (t == 0) print "nan"; else printf "%.1f\n", 100 * r / t }' "$f")
  if within "$kr" 100 10; then pass "io_split: kernel time attributed to read_chunks ($kr%)"
  else fail "io_split: kernel time under read_chunks" "$kr%"; fi
  m=$(one "$d/io_split*.meta.json")
  grep -q '"kernel_time_sampled": true' "$m" && pass "io_split: meta says kernel time is sampled" ||
    fail "io_split: kernel_time_sampled" "$(grep kernel_time "$m")"
  if grep -q '_\[k\]' "$f"; then pass "io_split: kernel functions named (_[k])"
  else fail "io_split: kernel function names" "$(head -3 "$f")"; fi
else
  echo "SKIP io_split kernel share: kernel time cannot be sampled here (not root, perf_event_paranoid $paranoid)"
fi

# 2. KILN_CPU=user: user time only, as before.
d="$T/io-user"
KILN_CPU=user run_pair "io_split (KILN_CPU=user)" "$d" "$EX/io_split" 1
f=$(one "$d/io_split*.cpu.folded")
if [ -n "$f" ] && ! grep -q '\[kernel\]' "$f"; then pass "io_split (KILN_CPU=user): no kernel frames"
else fail "io_split (KILN_CPU=user): kernel frames" "$(grep -c kernel "$f" 2>/dev/null)"; fi
grep -q '"kernel_time_sampled": false' "$(one "$d/io_split*.meta.json")" &&
  pass "io_split (KILN_CPU=user): meta says user time only" || fail "io_split (KILN_CPU=user): meta" "kernel_time_sampled"

# 3. Where kernel time cannot be sampled (an unprivileged user with
# perf_event_paranoid 2), the summary says how much is missing.
if $root && [ "$paranoid" -eq 2 ] && command -v setpriv >/dev/null; then
  d="$T/io-nobody"
  mkdir -p "$d" && chmod 777 "$d"
  setpriv --reuid=nobody --regid=nogroup --clear-groups \
    env KILN_QUIET=0 KILN_OUT="$d" LD_PRELOAD="$LIBKILN" "$EX/io_split" 1 >/dev/null 2>"$T/nobody.err"
  if grep -q "in the kernel and is not in this profile" "$T/nobody.err"; then
    pass "unprivileged: the summary says kernel time is missing ($(grep -o '[0-9]*% of this' "$T/nobody.err"))"
  else fail "unprivileged: missing kernel time reported" "$(cat "$T/nobody.err")"; fi
else
  echo "SKIP unprivileged kernel-time warning: needs root and perf_event_paranoid 2"
fi

# 4. Blocking calls SA_RESTART does not restart, in eight threads, beside
# busy threads, sampled at 4999 Hz: never EINTR (the program prints the
# count; run_pair compares it with the unprofiled run's 0).
d="$T/eintr"
KILN_HZ=4999 run_pair "eintr_storm at 4999 Hz: no EINTR" "$d" "$EX/eintr_storm" 3
m=$(one "$d/eintr_storm*.meta.json")
if [ -n "$m" ] && [ "$(meta_field "$m" samples)" -ge 2000 ]; then
  pass "eintr_storm: sampled meanwhile ($(meta_field "$m" samples) samples)"
else fail "eintr_storm: samples" "$(meta_field "$m" samples)"; fi
d="$T/eintr-alloc"
KILN_HZ=4999 KILN_MODE=cpu,alloc run_pair "eintr_storm (cpu,alloc) at 4999 Hz: no EINTR" "$d" "$EX/eintr_storm" 2
# The fallback signal timer (no perf): SIGPROF with SA_RESTART does land on
# these threads, between their calls; still no call fails.
d="$T/eintr-posix"
KILN_TIMER=posix KILN_HZ=4999 run_pair "eintr_storm (posix timer, signals) at 4999 Hz: no EINTR" "$d" "$EX/eintr_storm" 2
m=$(one "$d/eintr_storm*.meta.json")
grep -q '"timer": "posix thread-cpu timer"' "$m" 2>/dev/null && [ "$(meta_field "$m" samples)" -gt 0 ] &&
  pass "eintr_storm (posix timer): signals were sent ($(meta_field "$m" samples) samples)" ||
  fail "eintr_storm (posix timer): samples" "$(meta_field "$m" samples)"

# 5. Workers created with every signal blocked, a main thread that reads
# SIGPROF through a signalfd: the workers are sampled, no SIGPROF reaches
# the program, it opens as many files as without kiln and sees no
# descriptor of kiln's (its output says all three).
for bin in sigblock_threads sigblock_threads.fp; do
  d="$T/$bin"
  run_pair "$bin" "$d" "$EX/$bin"
  f=$(one "$d/sigblock_threads*.cpu.folded")
  share_ok "$bin: worker_big (all signals blocked)" "$f" "worker_big;spin$" 75 4
  share_ok "$bin: worker_small (all signals blocked)" "$f" "worker_small;spin$" 25 4
  m=$(one "$d/sigblock_threads*.meta.json")
  if [ "$(meta_field "$m" threads)" -ge 2 ] && [ "$(meta_field "$m" threads_unsampled)" = 0 ]; then
    pass "$bin: both workers in the thread list, none unsampled"
  else fail "$bin: threads" "$(grep -E '"threads' "$m")"; fi
done

# 6. cpu,alloc: time in kiln's hooks is one frame under the interposer,
# never kiln's or libunwind's internals as if they were the program's.
d="$T/churn"
KILN_MODE=cpu,alloc run_pair "churn (cpu,alloc)" "$d" "$EX/churn"
f=$(one "$d/churn*.cpu.folded")
# No frame of kiln's or libunwind's: kiln's own time is one marker frame.
inner=$(awk '{ s=$0; sub(/ [0-9]+$/,"",s); n=split(s,a,";");
  for (i = 1; i <= n; i++) if (a[i] ~ /kiln_|_U(L)?x86_64|libunwind|unw_/) { b++; break } }
  END { print b + 0 }' "$f")
check_eq "churn (cpu,alloc): no kiln or libunwind internals in the CPU profile" 0 "$inner"
marked=$(folded_share "$f" '\[kiln: allocation tracking\]$')
if awk -v s="$marked" 'BEGIN { exit !(s > 0) }'; then pass "churn (cpu,alloc): kiln's hook time named ($marked%)"
else fail "churn (cpu,alloc): [kiln: allocation tracking]" "$marked"; fi
bad=$(awk '/\[kiln: allocation tracking\]/ { s=$0; sub(/ [0-9]+$/,"",s); n=split(s,a,";");
  if (n > 1 && a[n-1] !~ /^(malloc|free|calloc|realloc|reallocarray|posix_memalign|aligned_alloc|memalign|valloc|pvalloc)$/) b++ }
  END { print b + 0 }' "$f")
check_eq "churn (cpu,alloc): the marker sits under the interposer frame" 0 "$bad"
m=$(one "$d/churn*.meta.json")
if [ "$(meta_field "$m" kiln_hook_samples)" -gt 0 ]; then pass "churn (cpu,alloc): meta counts kiln's hook samples"
else fail "churn (cpu,alloc): kiln_hook_samples" "$(grep kiln_hook "$m")"; fi

