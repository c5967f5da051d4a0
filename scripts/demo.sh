#!/usr/bin/env bash
# Runs every seed program under examples/ from the given build directory:
# NAME.cpp with a NAME.expect runs as it is; NAME.demo is a script for a demo
# that needs a set-up of its own (e.g. a throwaway Redis server).
set -euo pipefail
build=${1:-build/release}
for source in examples/*.cpp; do
  name=$(basename "$source" .cpp)
  program="$build/examples/$name"
  if [ -x "$program" ] && [ -f "examples/$name.expect" ]; then
    echo "=== $name"; "$program"
  fi
done
for demo in examples/*.demo; do
  [ -f "$demo" ] || continue
  echo "=== $(basename "$demo" .demo)"; bash "$demo" "$build"
done
