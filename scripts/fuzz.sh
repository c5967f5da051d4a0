#!/usr/bin/env bash
# make fuzz: builds the libFuzzer targets under fuzz/ with clang and runs each
# for a bounded time (FUZZ_SECONDS, default 60).
set -euo pipefail
seconds=${FUZZ_SECONDS:-60}
cmake -S . -B build/fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Debug \
  -DMP_BUILD_FUZZERS=ON -DMP_WERROR=ON -DMP_BUILD_TESTS=OFF -DMP_BUILD_BENCHMARKS=OFF -DMP_BUILD_EXAMPLES=OFF >/dev/null
cmake --build build/fuzz -j 2
for target in build/fuzz/fuzz/fuzz_*; do
  [ -x "$target" ] || continue
  echo "=== $(basename "$target") for ${seconds}s"
  mkdir -p "build/fuzz/corpus/$(basename "$target")"
  "$target" -max_total_time="$seconds" -max_len=4096 "build/fuzz/corpus/$(basename "$target")"
done
