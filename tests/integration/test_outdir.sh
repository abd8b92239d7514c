# Where profiles are written (kiln_out.c), against a hostile shared
# directory and across privilege changes: a symlink planted at a missing
# part of KILN_OUT is not followed (issue 11.22), planted temporary names do
# not stop a write, a directory at a final name is one clear line; a
# set-user-ID program that calls kiln_start(NULL) writes nothing into its
# caller's directory (11.23); nginx's workers, which start as root and
# become nobody, keep their profiles, owned by nobody, none world-writable
# (10.4). The privilege checks need root (skipped otherwise, with a note).
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/cpu_lib.sh"
export KILN_MODE=cpu KILN_QUIET=1
root=0; [ "$(id -u)" = 0 ] && root=1
chmod 755 "$T" # other users (nobody) must reach what the tests make here

# ------------------------------------- a symlink planted in a shared dir
W="$T/shared" V="$T/victim"
mkdir -p "$W" "$V"
chmod 1777 "$W"
ln -s "$V" "$W/a"
if [ $root = 1 ]; then
  chown -h nobody "$W/a"
  run_pair "planted symlink" "$W/a/b/c" "$EX/clean"
  check_eq "planted symlink: nothing written through it" "" "$(ls -A "$V")"
  check_eq "planted symlink: one kiln: line says why" 1 \
    "$(grep -c "^kiln: cannot write profiles to $W/a/b/c: $W/a is a symlink owned by uid [0-9]* in a directory others may write; not followed$" "$ERR")"
  # The same link made by root (the process's own user) is followed.
  chown -h root "$W/a"
  KILN_OUT="$W/a/b/c" LD_PRELOAD=$LIBKILN "$EX/clean" >/dev/null 2>"$T/err"
  check_eq "a symlink owned by root is followed; missing parts made 0755" "drwxr-xr-x 1" \
    "$(stat -c %A "$V/b/c") $(ls "$V/b/c" | grep -c '^clean\..*\.cpu\.folded$')"
else
  echo "(not root: the planted-symlink checks need another user's link)"
fi
# Missing components are made; a regular file in the way is one line.
d="$T/made/x/y"
run_pair "missing components" "$d" "$EX/clean"
check_eq "missing components: created and written" 1 "$(ls "$d" | grep -c '^clean\..*\.meta\.json$')"
touch "$T/afile"
run_pair "a file in the path" "$T/afile/sub" "$EX/clean"
check_eq "a file in the path: one kiln: line" 1 "$(grep -c "^kiln: cannot write profiles to $T/afile/sub: $T/afile is not a directory$" "$ERR")"

# ------------------------------------------- planted temporary names
# The program runs as the shell's own pid (exec), so its names are known:
# 300 names of each file in the old pid.sequence pattern are taken first.
D="$T/planted"
mkdir -p "$D"
out=$(sh -c 'for f in cpu.folded meta.json; do i=0; while [ $i -lt 300 ]; do : > "$1/.clean.$$.$f.$$.$i.tmp"; i=$((i+1)); done; done
  export KILN_OUT="$1" LD_PRELOAD="$2"; exec "$3"' sh "$D" "$LIBKILN" "$EX/clean" 2>"$T/err"); rc=$?
check_eq "planted temporary names: the program ran as before" "0" "$rc"
check_eq "planted temporary names: the profile is written anyway" 2 "$(ls "$D" | grep -c '^clean\.[0-9]*\.\(cpu\.folded\|meta\.json\)$')"
check_eq "planted temporary names: no kiln: line" "" "$(cat "$T/err")"
check_eq "planted temporary names: no temporary of kiln's left" 600 "$(ls -A "$D" | grep -c '\.tmp$')"

# ------------------------------------------- a directory at the final name
D="$T/dirname"
mkdir -p "$D"
out=$(sh -c 'mkdir "$1/clean.$$.cpu.folded"; export KILN_OUT="$1" LD_PRELOAD="$2"; exec "$3"' sh "$D" "$LIBKILN" "$EX/clean" 2>"$T/err"); rc=$?
check_eq "a directory at the final name: the program ran as before" "0" "$rc"
check_eq "a directory at the final name: one clear kiln: line" 1 \
  "$(grep -c "^kiln: cannot write profiles to $D: $D/clean\.[0-9]*\.cpu\.folded is a directory$" "$T/err")"
check_eq "a directory at the final name: nothing else on stderr, no temporary left" "1 0" \
  "$(wc -l < "$T/err") $(ls -A "$D" | grep -c '\.tmp$')"

# ------------------------------------- a set-user-ID program (11.23)
if [ $root = 1 ]; then
  S="$T/suid"
  cc -O2 -g -pthread -I"$KILN_ROOT/include" -o "$S" "$(dirname "$0")/suid_start.c" "$B/libkiln.a" -lunwind -ldl -lm &&
    chown root:root "$S" && chmod 4755 "$S" || fail "suid_start: build" "cc failed"
  C="$T/caller"
  mkdir -p "$C" && chown nobody "$C"
  out=$(cd "$C" && setpriv --reuid=65534 --regid=65534 --clear-groups "$S" 2>"$T/err"); rc=$?
  check_eq "set-user-ID kiln_start(NULL): refused (-EPERM), the program runs on" "kiln_start: -1 0" "$out $rc"
  check_eq "set-user-ID kiln_start(NULL): no file in the caller's directory" "" "$(ls -A "$C")"
  check_eq "set-user-ID kiln_start(NULL): one kiln: line says what to do" 1 \
    "$(grep -c '^kiln: kiln_start: a set-user-ID or set-group-ID program must name its output directory' "$T/err")"
  mkdir -p "$T/suid-out"
  out=$(cd "$C" && setpriv --reuid=65534 --regid=65534 --clear-groups "$S" "$T/suid-out" 2>"$T/err")
  check_eq "set-user-ID with an explicit directory: profiles there (folded, stacks, meta), none in the caller's" "kiln_start: 0 3 0" \
    "$out $(ls "$T/suid-out" | grep -c '^suid\.') $(ls -A "$C" | wc -l)"
else
  echo "(not root: the set-user-ID checks need root)"
fi

# ------------------------------------- nginx: root master, nobody workers (10.4)
if [ $root = 1 ] && command -v nginx >/dev/null && command -v curl >/dev/null; then
  N="$T/nginx"
  P="$N/prof"
  mkdir -p "$N/logs"
  ok=0
  for try in 1 2 3 4 5; do
    port=$((20000 + (RANDOM % 20000)))
    cat > "$N/nginx.conf" <<EOF
user nobody nogroup;
worker_processes 4;
daemon off;
master_process on;
pid $N/nginx.pid;
error_log $N/logs/error.log;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path $N/body; proxy_temp_path $N/proxy; fastcgi_temp_path $N/fcgi;
  uwsgi_temp_path $N/uwsgi; scgi_temp_path $N/scgi;
  server { listen 127.0.0.1:$port; location / { return 200 "ok\n"; } }
}
EOF
    rm -rf "$P"
    KILN_OUT=$P KILN_QUIET=0 LD_PRELOAD=$LIBKILN nginx -c "$N/nginx.conf" -p "$N" 2>"$N/stderr" &
    master=$!
    for i in $(seq 50); do curl -s "http://127.0.0.1:$port/" >/dev/null 2>&1 && break; sleep 0.1; done
    if curl -s "http://127.0.0.1:$port/" | grep -qx ok; then ok=1; break; fi
    kill -KILL $master 2>/dev/null; wait $master 2>/dev/null
  done
  check_eq "nginx: serves on loopback under kiln" 1 "$ok"
  for i in $(seq 100); do curl -s "http://127.0.0.1:$port/" >/dev/null; done
  kill -QUIT $master
  for i in $(seq 100); do kill -0 $master 2>/dev/null || break; sleep 0.1; done
  if kill -0 $master 2>/dev/null; then # a hang: never wait for it
    pkill -KILL -P $master; kill -KILL $master
    fail "nginx: exits within 10 s of SIGQUIT" "still running"
  fi
  wait $master; rc=$?
  check_eq "nginx: exits 0 on SIGQUIT" 0 "$rc"
  check_eq "nginx: the master's profile, root's, 0644" "1 root -rw-r--r--" \
    "$(ls "$P" | grep -c '^nginx\.[0-9]*\.cpu\.folded$') $(stat -c '%U %A' "$P"/nginx.*.cpu.folded 2>/dev/null | sort -u)"
  check_eq "nginx: the 4 workers' profiles, nobody's, 0644, in uid-65534/" "4 nobody -rw-r--r--" \
    "$(ls "$P/uid-65534" 2>/dev/null | grep -c '^nginx\.[0-9]*\.cpu\.folded$') $(stat -c '%U %A' "$P"/uid-65534/nginx.*.cpu.folded 2>/dev/null | sort -u)"
  check_eq "nginx: the workers' directory is nobody's, not world-writable" "nobody drwxr-xr-x" "$(stat -c '%U %A' "$P/uid-65534")"
  check_eq "nginx: no world-writable file or directory, no symlink, no temporary" "" \
    "$(find "$P" \( -perm -o+w -o -type l -o -name '*.tmp' \) -print)"
  bad=0
  # nginx sends its stderr to its error log: the summary lines are there.
  cat "$N/stderr" "$N/logs/error.log" > "$N/all"
  for f in $(sed -n 's/^kiln: nginx\[[0-9]*\]: .* -> //p' "$N/all"); do [ -e "$f" ] || bad=$((bad + 1)); done
  # One summary for the tree: the master's line and its tree line, which
  # counts the workers, nobody's after setuid, from the records they wrote
  # to the tree file they opened while still root.
  check_eq "nginx: every summary line names a file that exists (the master's, the tree's)" "2 0" \
    "$(grep -c '^kiln: nginx\[[0-9]*\]: .* -> ' "$N/all") $bad"
  check_eq "nginx: the tree line counts the 4 workers' profiles (a folded file and a meta file each)" 1 \
    "$(grep -c '^kiln: nginx\[[0-9]*\]: tree: 4 processes below: 4 profiled (4 nginx), 0 recorded nothing (no files written); 8 files -> ' "$N/all")"
  check_eq "nginx: no kiln error in its log or on stderr" 0 "$(cat "$N/logs/error.log" "$N/stderr" | grep -c 'kiln: cannot')"
else
  echo "(not root, or no nginx/curl: the nginx checks are skipped)"
fi

# ------------------------- setpriv: keep-caps, capset, then the group ids
# setpriv --reuid keeps its capabilities across the uid change (keep-caps,
# then capset) to change the group ids after it. glibc makes every thread
# take each id change and aborts the process if one fails; capabilities
# are per thread, so kiln's collector takes on the caller's first
# (kiln_collector_share_creds), in cpu and in alloc mode.
if [ $root = 1 ] && command -v setpriv >/dev/null; then
  for mode in cpu cpu,alloc; do
    d="$T/setpriv-$mode"
    want=$(setpriv --reuid=65534 --regid=65534 --clear-groups id 2>&1; echo "rc=$?")
    got=$(KILN_MODE=$mode KILN_OUT="$d" LD_PRELOAD=$LIBKILN setpriv --reuid=65534 --regid=65534 --clear-groups id 2>"$T/sp.err"; echo "rc=$?")
    check_eq "setpriv --reuid --regid ($mode): same output and status as unprofiled" "$want" "$got"
    check_eq "setpriv ($mode): nothing on stderr, the profile written in uid-65534/" "0 1" \
      "$(wc -c < "$T/sp.err") $(ls "$d/uid-65534" 2>/dev/null | grep -c '^setpriv\.[0-9]*\.meta\.json$')"
  done
else
  echo "(not root, or no setpriv: the setpriv checks are skipped)"
fi
