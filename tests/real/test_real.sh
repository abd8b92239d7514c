#!/usr/bin/env bash
# The CI subset of the real-program suite (tests/real/programs.py, entries
# with ci=True), run by `make test`; `make test-real` runs all of it.
cd "$(dirname "$0")/../.." || exit 1
# run.sh gives a test 600 s: entries not started after 420 s are skipped.
exec python3 tests/real/real.py --set ci --table --budget 420
