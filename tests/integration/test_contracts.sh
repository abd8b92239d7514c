# The build's contracts (issue 11, "contracts the build checks"):
#  - the signal-context files (every handler kiln installs, and the leaves
#    they call: kiln_fmt, the ring) leave undefined only what
#    tests/contracts/signal_allow.txt allows (POSIX's async-signal-safe
#    functions) and kiln's own functions declared [signal]
#    (KILN_SIGNAL_SAFE) in runtime/kiln_internal.h: libunwind's
#    check-namespace habit, on nm -u of each object;
#  - every handler kiln installs (sigaction, kiln_sampler_claim,
#    kiln_sampler_stop_signal) is defined in one of those files;
#  - the checker itself catches a malloc, a snprintf or an unmarked kiln
#    function added to a handler file;
#  - libkiln.so exports exactly the names of the version script
#    (preload/kiln.map), and libkiln.a defines them all.
source "$(dirname "$0")/../lib.sh"
cd "$KILN_ROOT"
CC=${CC:-cc}
SIGNAL_FILES="kiln_fmt kiln_ring kiln_sampler_signal kiln_crash_signal kiln_stopworld_signal"

# [signal] functions of the header: comments stripped (the preprocessor,
# macros kept), statements joined up to their ';', the name before the
# first '(' of each that says KILN_SIGNAL_SAFE.
$CC -fpreprocessed -dD -E -P runtime/kiln_internal.h 2>/dev/null | grep -v '^#' |
  awk '{ buf = buf " " $0 } /;/ { if (buf ~ /KILN_SIGNAL_SAFE/) { if (match(buf, /[A-Za-z_][A-Za-z0-9_]* *\(/)) {
         s = substr(buf, RSTART, RLENGTH); sub(/ *\($/, "", s); print s } } buf = "" }' | sort -u > "$T/signal_decls"
n=$(wc -l < "$T/signal_decls")
if [ "$n" -ge 10 ] && grep -qx kiln_ring_push "$T/signal_decls" && grep -qx kiln_fmt "$T/signal_decls"; then
  pass "contracts: $n functions declared [signal] in kiln_internal.h"
else
  fail "contracts: [signal] declarations read" "only $n: $(tr '\n' ' ' < "$T/signal_decls")"
fi

objs=()
for f in $SIGNAL_FILES; do
  o="$B/runtime/$f.o"
  if [ -f "runtime/$f.c" ] && [ -f "$o" ]; then objs+=("$o"); else fail "contracts: $f" "runtime/$f.c or $o missing"; fi
done
# allowed: the list, the [signal] declarations, what the signal files define.
{ sed -e 's/#.*//' -e 's/[[:space:]]//g' tests/contracts/signal_allow.txt | grep -v '^$'
  cat "$T/signal_decls"
  nm --defined-only -P "${objs[@]}" 2>/dev/null | awk 'NF >= 2 && $2 != "" { print $1 }'
} | sort -u > "$T/allowed"

# unsafe OBJ: its undefined symbols that are not allowed, one a line.
unsafe() { nm -u -P "$1" | awk '$2 == "U" { print $1 }' | sort -u | comm -23 - "$T/allowed"; }

for o in "${objs[@]}"; do
  bad=$(unsafe "$o" | tr '\n' ' ')
  if [ -z "$bad" ]; then
    pass "contracts: $(basename "$o" .o) calls only async-signal-safe functions ($(nm -u -P "$o" | grep -c ' U'))"
  else
    fail "contracts: $(basename "$o" .o) calls what a signal handler must not" "$bad"
  fi
done

# Every handler kiln installs, by name, from the sources.
{ grep -ho 'kiln_sampler_claim([^,]*, *kiln_[a-z_]*' runtime/*.c preload/*.c | sed 's/.*, *//'
  grep -ho 'kiln_sampler_stop_signal(kiln_[a-z_]*)' runtime/*.c preload/*.c | sed 's/.*(\(.*\))/\1/'
  grep -ho 'sa_sigaction = kiln_[a-z_]*;' runtime/*.c preload/*.c | sed 's/sa_sigaction = \(.*\);/\1/'
  grep -ho 'sa_handler = kiln_[a-z_]*;' runtime/*.c preload/*.c | sed 's/sa_handler = \(.*\);/\1/'
} | sort -u > "$T/handlers"
nm --defined-only -P "${objs[@]}" | awk '{ print $1 }' | sort -u > "$T/defined"
missing=$(comm -23 "$T/handlers" "$T/defined" | tr '\n' ' ')
nh=$(wc -l < "$T/handlers")
if [ "$nh" -ge 5 ] && [ -z "$missing" ]; then
  pass "contracts: the $nh handlers kiln installs live in the signal files ($(tr '\n' ' ' < "$T/handlers"))"
else
  fail "contracts: every handler in a signal file" "found $nh; outside them: $missing"
fi

# The checker catches what it is for: a handler that formats with
# snprintf, allocates, logs through kiln_log (not [signal]).
cat > "$T/bad_handler.c" <<'CEOF'
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
void kiln_log(const char *fmt, ...);
void *volatile kiln_bad_block;
void kiln_bad_on_signal(int sig, siginfo_t *si, void *uc) {
  (void)si; (void)uc;
  char line[32];
  snprintf(line, sizeof line, "%d", sig);
  kiln_bad_block = malloc(16);
  free(kiln_bad_block);
  kiln_log("%s", line);
}
CEOF
if $CC -O2 -c -o "$T/bad_handler.o" "$T/bad_handler.c" 2>"$T/cc.err"; then
  check_eq "contracts: the check names malloc, snprintf, free and kiln_log in a bad handler" \
    "free kiln_log malloc snprintf" "$(unsafe "$T/bad_handler.o" | grep -v '__stack_chk_fail' | tr '\n' ' ' | sed 's/ $//')"
else
  fail "contracts: bad handler builds" "$(head -c 300 "$T/cc.err")"
fi

# Exported names: libkiln.so's dynamic symbols are the version script's
# globals, no more, no less.
sed -e 's|/\*.*\*/||g' preload/kiln.map | awk '/global:/ { on = 1; next } /local:/ { on = 0 } on' |
  tr ';' '\n' | tr -d ' \t' | grep -v '^$' | sort -u > "$T/map"
nm -D --defined-only "$LIBKILN" | awk '{ print $NF }' | sort -u > "$T/exported"
extra=$(comm -13 "$T/map" "$T/exported" | tr '\n' ' ')
absent=$(comm -23 "$T/map" "$T/exported" | tr '\n' ' ')
if [ -z "$extra$absent" ] && [ "$(wc -l < "$T/map")" -ge 20 ]; then
  pass "contracts: libkiln.so exports exactly kiln.map's $(wc -l < "$T/map") names"
else
  fail "contracts: libkiln.so's exports against kiln.map" "exported, not in the map: ${extra:-none}; in the map, not exported: ${absent:-none}"
fi
# libkiln.a (linked into programs) defines every one of them but the
# preload-only ones it leaves out on purpose (none today).
nm --defined-only -P "$B/libkiln.a" 2>/dev/null | awk '$2 ~ /^[TWDBR]$/ { print $1 }' | sort -u > "$T/archive"
nodef=$(comm -23 "$T/map" "$T/archive" | tr '\n' ' ')
if [ -z "$nodef" ]; then pass "contracts: libkiln.a defines every exported name"
else fail "contracts: libkiln.a defines the exported names" "missing: $nodef"; fi
