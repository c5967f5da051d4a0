#!/usr/bin/env bash
# make fuzz: builds the libFuzzer targets (fuzz/CMakeLists.txt) with clang,
# optimised (-O2) with AddressSanitizer+UBSan over mp and the targets, and runs
# each for FUZZ_SECONDS (default 60) on one core, starting from its seed corpus
# in fuzz/corpus/NAME (read only) and keeping what it finds in
# build/fuzz/corpus/NAME. A crash stops the run with the failing input saved
# in build/fuzz/ (artifact_prefix) and a non-zero exit.
#   FUZZ_SECONDS=600 make fuzz        # a long run
#   FUZZ_TARGETS=fuzz_codec make fuzz # only these targets
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-60}
build=build/fuzz
cmake -S . -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=None \
  "-DCMAKE_CXX_FLAGS=-O2 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all" \
  -DMP_BUILD_FUZZERS=ON -DMP_WERROR=ON -DMP_BUILD_TESTS=OFF -DMP_BUILD_BENCHMARKS=OFF -DMP_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$build" -j "${JOBS:-2}"
status=0
for target in "$build"/fuzzers/*; do
  name=$(basename "$target")
  [ -x "$target" ] || continue
  if [ -n "${FUZZ_TARGETS:-}" ] && [[ " $FUZZ_TARGETS " != *" $name "* ]]; then continue; fi
  mkdir -p "$build/corpus/$name" "fuzz/corpus/$name"
  echo "=== $name for ${seconds}s"
  rc=0
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$target" -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$build/$name-" "$build/corpus/$name" "fuzz/corpus/$name" >"$build/$name.log" 2>&1 || rc=$?
  # libFuzzer's progress lines are many; show the rest (the stats, any report).
  grep -v "^#[0-9]*[[:space:]]*\(NEW\|REDUCE\|pulse\|RELOAD\)" "$build/$name.log" | tail -n 60
  if [ "$rc" != 0 ]; then
    echo "$name failed ($rc): see $build/$name.log and $build/$name-*"
    status=1
  fi
done
exit $status
