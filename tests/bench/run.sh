#!/usr/bin/env bash
# make bench: runs every tests/bench/*_bench.{sh,py} in turn.
set -u
cd "$(dirname "$0")/../.."
export KILN_BUILD=${KILN_BUILD:-build}
status=0
for b in tests/bench/*_bench.py tests/bench/*_bench.sh; do
  [ -f "$b" ] || continue
  echo "== $b"
  case "$b" in
    *.py) python3 "$b" || status=1 ;;
    *.sh) bash "$b" || status=1 ;;
  esac
done
exit $status
