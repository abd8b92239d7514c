# The runtime linked into a program (libkiln.a), started from code after
# its threads already run: those threads are found and sampled, with both
# unwinders (the fp walker has no stack bounds for them and reads through
# the kernel).
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/cpu_lib.sh"
for variant in "libunwind late_start" "fp late_start.fp"; do
  set -- $variant
  d="$T/late-$1"
  out=$(KILN_UNWIND=$1 KILN_HZ=999 "$EX/$2" "$d" 2>"$T/err"); rc=$?
  check_eq "late_start ($1): runs and dumps" "0 late_start: dump ok" "$rc $out"
  f=$(one "$d/late_start*.cpu.folded")
  [ -n "$f" ] || { fail "late_start ($1): profile" "none in $d"; continue; }
  share_ok "late_start ($1): early_a sampled" "$f" "early_a$" 50 25
  share_ok "late_start ($1): early_b sampled" "$f" "early_b$" 50 25
  # Samples follow CPU time, not wall time: compare with what was used.
  hz=$(meta_field "$(one "$d/late_start*.meta.json")" hz_delivered)
  if within "$hz" 999 100; then pass "late_start ($1): delivered $hz Hz of 999 on threads started before kiln"
  else fail "late_start ($1): delivered rate" "$hz Hz"; fi
done
# Linked but never started: `region` links libkiln.a and, given no
# directory, exits before kiln_start. Nothing may be written.
d="$T/never"
mkdir -p "$d"
( cd "$d" && "$EX/region" >/dev/null 2>&1 ); rc=$?
check_eq "a program linking kiln that never starts it: exit status its own, nothing written" "2 " "$rc $(ls "$d")"
