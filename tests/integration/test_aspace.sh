# Address space in proportion (issue 11, item 8): under ulimit -v, a
# program that takes all the address space it can get gets within a small
# margin of what it gets unprofiled (kiln's tables grow as they fill, its
# threads have no 8 MiB stacks or unused rings), and the profile is still
# written; when kiln's own maps were refused, the profile says it is
# partial (meta.json and the summary line).
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/cpu_lib.sh"
LIMIT_KB=400000
# Fixed cost allowed beyond what kiln reports it uses (profiler_memory_bytes:
# perf rings, stack table, live map): its code, libunwind, the collector's
# stack, the dump's reserve, the module and thread tables (~11 MiB now).
FIXED_MIB=16

largest() { sed -n 's/^largest_mib \([0-9]*\)$/\1/p' "$1"; }
base_out="$T/plain.out"
(ulimit -v $LIMIT_KB; "$EX/aspace" > "$base_out" 2>/dev/null)
base=$(largest "$base_out")
if [ -z "$base" ] || [ "$base" -lt 100 ]; then
  fail "aspace: unprofiled run" "no usable answer under ulimit -v $LIMIT_KB: '$(cat "$base_out")'"
  exit 0
fi

for mode in cpu alloc cpu,alloc; do
  d="$T/out.$mode"
  (ulimit -v $LIMIT_KB; KILN_MODE=$mode KILN_OUT="$d" KILN_QUIET= LD_PRELOAD="$LIBKILN" \
     "$EX/aspace" > "$T/$mode.out" 2> "$T/$mode.err")
  got=$(largest "$T/$mode.out")
  meta=$(one "$d/aspace.*.meta.json")
  if [ -z "$meta" ]; then
    fail "$mode: the profile is written with the address space full" "no meta.json; stderr: $(head -c 400 "$T/$mode.err")"
    continue
  fi
  pass "$mode: the profile is written with the address space full"
  mem=$(meta_field "$meta" profiler_memory_bytes)
  allow=$((FIXED_MIB + ${mem:-0} / 1048576))
  if [ -n "$got" ] && [ $((base - got)) -le "$allow" ]; then
    pass "$mode: the program gets ${got} of ${base} MiB (kiln's share $((base - got)) <= $allow MiB)"
  else
    fail "$mode: the program gets its address space" "${got:-nothing} of ${base} MiB, allowed $allow MiB less"
  fi
  check_eq "$mode: its big malloc succeeds" "malloc_ok 1" "$(grep malloc_ok "$T/$mode.out")"
  case $mode in
    *cpu*) f=$(one "$d/aspace.*.cpu.folded")
           check "$mode: CPU samples in work()" grep -q ';work' "$f" ;;
  esac
  case $mode in
    *alloc*) f=$(one "$d/aspace.*.alloc_bytes.folded")
             check "$mode: the held block is in alloc_bytes" awk -v min=$(((got - 1) * 1048576)) \
               '$NF >= min { ok = 1 } END { exit !ok }' "$f" ;;
  esac
  refused=$(meta_field "$meta" memory_refusals)
  if [ "${refused:-0}" -gt 0 ]; then
    if grep -q 'this profile is partial' "$meta" && grep -q '^kiln: .*this profile is partial' "$T/$mode.err"; then
      pass "$mode: $refused refused maps: meta.json and the summary line say the profile is partial"
    else
      fail "$mode: refused maps are reported" "memory_refusals $refused but no 'partial' warning"
    fi
  else
    check "$mode: no refusal, no 'partial' warning" bash -c "! grep -q 'this profile is partial' '$meta'"
  fi
done
