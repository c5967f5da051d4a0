#!/usr/bin/env bash
# make bench: every comparison script under bench/compare/ runs the C++
# benchmark binaries and the same work in Python's multiprocessing in one go,
# and prints a table with the ratios. The header records machine and commit.
set -euo pipefail
build=${1:-build/release}
echo "mp benchmarks — $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -sr)"
echo "python: $(python3 --version 2>&1)"
for script in bench/compare/*.py; do
  echo
  # -P: do not put bench/compare first on sys.path (its queue.py would
  # shadow the standard library module multiprocessing imports).
  python3 -P "$script" "$build"
done
