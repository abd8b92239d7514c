#!/usr/bin/env bash
# The CI subset of the real-program suite (tests/real/programs.py, entries
# with ci=True), run by `make test`; `make test-real` runs all of it.
cd "$(dirname "$0")/../.." || exit 1
exec python3 tests/real/real.py --set ci --table
