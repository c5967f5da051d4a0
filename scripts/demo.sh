#!/usr/bin/env bash
# Runs every seed program under examples/ from the given build directory.
set -euo pipefail
build=${1:-build/release}
for source in examples/*.cpp; do
  name=$(basename "$source" .cpp)
  program="$build/examples/$name"
  [ -x "$program" ] || continue
  if [ -f "examples/$name.demo" ]; then   # an example that needs a set-up (e.g. a Redis server)
    echo "=== $name"; bash "examples/$name.demo" "$build"
  elif [ -f "examples/$name.expect" ]; then
    echo "=== $name"; "$program"
  fi
done
