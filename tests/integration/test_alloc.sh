# Allocation profiling and leak hunting under the real preload: per-site
# leak bytes and blocks by construction and against valgrind, totals equal
# to the program's own, exact accounting under 4-thread stress, sampled
# estimates, other allocators, and the program unchanged.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/cpu_lib.sh"
export KILN_MODE=alloc KILN_QUIET=1

# site FILE FUNC: the count of the stack whose leaf is FUNC.
site() { awk -v f="$2" '{ s=$0; sub(/ [0-9]+$/,"",s); n=split(s,a,";"); if (a[n]==f) t+=$NF } END { print t+0 }' "$1"; }

for unwind in libunwind fp; do
  d="$T/leaky-$unwind"
  KILN_UNWIND=$unwind run_pair "leaky ($unwind)" "$d" "$EX/leaky.fp"
  lb=$(one "$d/leaky*.leak_bytes.folded"); lc=$(one "$d/leaky*.leak_count.folded")
  # Frame pointers cannot see through libstdc++'s frameless operator new:
  # there the new sites are checked with libunwind only.
  cxx="leak_new() 48 1|leak_new_array() 400 1"
  [ $unwind = fp ] && cxx=
  IFS='|' read -r -a more <<< "$cxx"
  for want in "leak_malloc() 300 3" "leak_calloc() 480 2" "leak_realloc() 1024 1" "leak_memalign() 200 1" \
              "leak_aligned() 8192 1" "make_owner() 532 2" "${more[@]}"; do
    set -- $want
    check_eq "leaky ($unwind): $1 leaks $2 bytes in $3 blocks" "$2 $3" "$(site "$lb" "$1") $(site "$lc" "$1")"
  done
  check_eq "leaky ($unwind): nothing else leaks" "11176 12" "$(folded_total "$lb") $(folded_total "$lc")"
  if grep -q "operator new" "$lb"; then fail "leaky ($unwind): stacks end at the caller of operator new" "$(cat "$lb")"
  else pass "leaky ($unwind): stacks end at the caller of operator new"; fi
  grep -q "main;leak_owner();make_owner() 532$" "$lb" &&
    pass "leaky ($unwind): whole stacks, root first" || fail "leaky ($unwind): stack shape" "$(cat "$lb")"
done

# The same binary under valgrind memcheck: "in use at exit" must agree.
if command -v valgrind >/dev/null; then
  vg=$(valgrind "$EX/leaky" 2>&1 >/dev/null | sed -n 's/.*in use at exit: \([0-9,]*\) bytes in \([0-9,]*\) blocks.*/\1 \2/p' | tr -d ,)
  lb=$(one "$T/leaky-libunwind/leaky*.leak_bytes.folded"); lc=$(one "$T/leaky-libunwind/leaky*.leak_count.folded")
  check_eq "leaky: kiln's leaks equal valgrind's 'in use at exit'" "$vg" "$(folded_total "$lb") $(folded_total "$lc")"
else
  fail "leaky: valgrind comparison" "valgrind is not installed"
fi

# A program that frees everything: empty leak files, its own totals.
d="$T/clean"
run_pair "clean" "$d" "$EX/clean"
want=$("$EX/clean" | sed -n 's/clean: allocated \([0-9]*\) bytes in \([0-9]*\) blocks.*/\1 \2/p')
m=$(one "$d/clean*.meta.json")
check_eq "clean: allocation totals equal the program's own" "$want" "$(meta_field "$m" alloc_bytes) $(meta_field "$m" alloc_count)"
check_eq "clean: alloc_bytes file adds up to the same" "${want% *}" "$(folded_total "$(one "$d/clean*.alloc_bytes.folded")")"
check_eq "clean: leak files empty" "0 0" "$(wc -c < "$(one "$d/clean*.leak_bytes.folded")") $(wc -c < "$(one "$d/clean*.leak_count.folded")")"
check_eq "clean: nothing live at exit" "0 0" "$(meta_field "$m" live_bytes) $(meta_field "$m" live_count)"

# 4 threads, 1.2M operations, cross-thread frees: exact accounting.
for unwind in libunwind fp; do
  d="$T/stress-$unwind"
  KILN_UNWIND=$unwind run_pair "alloc_stress ($unwind)" "$d" "$EX/alloc_stress.fp"
  m=$(one "$d/alloc_stress*.meta.json")
  ab=$(meta_field "$m" alloc_bytes); fb=$(meta_field "$m" freed_bytes); lb=$(meta_field "$m" live_bytes)
  ac=$(meta_field "$m" alloc_count); fc=$(meta_field "$m" freed_count); lc=$(meta_field "$m" live_count)
  check_eq "alloc_stress ($unwind): allocated - freed = live (bytes)" "$lb" "$((ab - fb))"
  check_eq "alloc_stress ($unwind): allocated - freed = live (blocks)" "$lc" "$((ac - fc))"
  check_eq "alloc_stress ($unwind): live at exit is the known leak" "4000 100" "$lb $lc"
  check_eq "alloc_stress ($unwind): leak files agree" "4000 100" \
    "$(folded_total "$(one "$d/alloc_stress*.leak_bytes.folded")") $(folded_total "$(one "$d/alloc_stress*.leak_count.folded")")"
  [ $((ac + fc)) -gt 1000000 ] && pass "alloc_stress ($unwind): $((ac + fc)) allocations and frees tracked" ||
    fail "alloc_stress ($unwind): count" "$ac + $fc"
done

# Sampled mode: unbiased estimates, same order of sites.
d="$T/churn-exact"; run_pair "churn (exact)" "$d" "$EX/churn" 2000000
e=$(one "$d/churn*.alloc_bytes.folded")
d="$T/churn-sampled"; KILN_ALLOC_SAMPLE=524288 run_pair "churn (sampled, 512 KiB)" "$d" "$EX/churn" 2000000
s=$(one "$d/churn*.alloc_bytes.folded")
et=$(folded_total "$e"); st=$(folded_total "$s")
err=$(awk -v a="$st" -v b="$et" 'BEGIN { printf "%.2f", 100 * (a - b) / b }')
if within "$err" 0 5; then pass "churn: sampled total bytes within 5% of exact ($err%)"
else fail "churn: sampled estimate" "$st vs $et ($err%)"; fi
order() { for k in 1 2 3 4 5 6; do echo "$(folded_share "$1" ";site$k;") site$k"; done | sort -rn | awk '{ printf "%s ", $2 }'; }
check_eq "churn: sites in the same order by bytes, sampled as exact" "$(order "$e")" "$(order "$s")"
check_eq "churn: exact order is by construction" "site6 site5 site4 site3 site2 site1 " "$(order "$e")"

# Other allocators: kiln forwards to the next malloc, the program sees it.
for a in jemalloc tcmalloc; do
  d="$T/peer-$a"
  run_pair "allocator_check linked with $a" "$d" "$EX/allocator_check.$a"
  check_eq "allocator_check ($a): leaks exact" "192 3" \
    "$(folded_total "$(one "$d/allocator_check*.leak_bytes.folded")") $(folded_total "$(one "$d/allocator_check*.leak_count.folded")")"
done

# fork, exec, dlopen/dlclose, early thread exit, C++, with CPU and allocations.
export KILN_MODE=cpu,alloc
run_pair "forker (cpu,alloc)" "$T/f" "$EX/forker"
check_eq "forker (cpu,alloc): each process has its own alloc profile" 2 "$(ls "$T"/f/forker.*.alloc_bytes.folded | wc -l)"
run_pair "forkexec (cpu,alloc)" "$T/fe" "$EX/forkexec"
# (It leaks nothing: below the top, its empty leak profile is not written.)
[ -s "$(one "$T/fe/cpu_split.*.alloc_count.folded")" ] && [ -z "$(one "$T/fe/cpu_split.*.leak_bytes.folded")" ] &&
  pass "forkexec (cpu,alloc): exec'd program tracked (allocations; no empty leak file)" || fail "forkexec (cpu,alloc)" "$(ls "$T/fe")"
# A shell's fork children exec commands: at exec every block is given
# back, so what the child inherited and had live then is no leak (valgrind
# says none either): no leak files for the exec set, only what it did.
run_pair "bash pipelines in command substitutions (cpu,alloc)" "$T/sh" bash -c 'for i in 1 2 3; do v=$(echo $i | cat); done; echo $v'
bad=0; execs=0
for m in "$T"/sh/bash.*.meta.json; do
  grep -q '"dump_reason": "exec"' "$m" || continue
  execs=$((execs + 1))
  [ "$(meta_field "$m" live_count)" -gt 0 ] || bad=$((bad + 1))
  grep -o '"files": .*' "$m" | grep -q 'leak_' && bad=$((bad + 1))
done
check_eq "bash: each of the 3 fork children that exec cat had live blocks and wrote no leak file" "3 0" "$execs $bad"
run_pair "plugin (cpu,alloc)" "$T/p" "$EX/plugin"
run_pair "threads (cpu,alloc)" "$T/t" "$EX/threads"
run_pair "shapes (cpu,alloc)" "$T/s" "$EX/shapes"
run_pair "blocking_read (cpu,alloc)" "$T/b" "$EX/blocking_read"
share_ok "threads (cpu,alloc): CPU shares still right" "$(one "$T/t/threads*.cpu.folded")" "worker_big;burn$" 75 3

# Bad values.
KILN_ALLOC_SAMPLE=lots KILN_QUIET= run_pair "bad KILN_ALLOC_SAMPLE" "$T/bad" "$EX/clean"
grep -q "^kiln: KILN_ALLOC_SAMPLE=lots" "$ERR" && pass "bad KILN_ALLOC_SAMPLE: one kiln: line" || fail "bad KILN_ALLOC_SAMPLE" "$(cat "$ERR")"
