#!/usr/bin/env bash
# Lint: clang-format must leave every file as it is; clang-tidy must find
# nothing in our sources (.clang-tidy says which checks).
set -euo pipefail
build=${1:-build/debug}
files=$(git ls-files '*.hpp' '*.cpp')
clang-format --dry-run -Werror $files
echo "clang-format: clean"
sources=$(git ls-files 'src/*.cpp' 'src/**/*.cpp')
[ -z "$sources" ] || clang-tidy -p "$build" --quiet $sources 2>/dev/null | tee /tmp/mp-tidy.log
if grep -q "warning:\|error:" /tmp/mp-tidy.log 2>/dev/null; then echo "clang-tidy: warnings above"; exit 1; fi
echo "clang-tidy: clean"
