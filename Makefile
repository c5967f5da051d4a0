# mp — the two commands users need are `make demo` and `make test`.
# Every target first installs the Debian packages it needs and does not find.
SHELL := /bin/bash
JOBS ?= 2

PACKAGES := cmake ninja-build g++ pkg-config libgtest-dev libgmock-dev libbenchmark-dev \
            libhiredis-dev redis-server libboost-dev python3 clang clang-format clang-tidy \
            libclang-rt-14-dev ccache libssl-dev doxygen dpkg-dev

.PHONY: deps demo test test-release test-asan tsan bench lint format fuzz package docs clean

deps:
	@missing=""; for p in $(PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "run as root (or install:$$missing)"; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

# Keep the configured tree: make would otherwise delete this "intermediate" file.
.PRECIOUS: build/%/build.ninja

build/%/build.ninja: deps
	cmake --preset $*

build-%: build/%/build.ninja
	cmake --build --preset $* -j $(JOBS)

# make demo: build and run every seed program under examples/.
demo: build-release
	@bash scripts/demo.sh build/release

# make test: the whole suite, optimised and under AddressSanitizer+UBSan.
test: test-release test-asan

test-release: build-release
	ctest --preset release -j $(JOBS)

test-asan: build-asan
	ctest --preset asan -j $(JOBS)

# ThreadSanitizer over the thread-world tests (suites named *Threads*).
tsan: build-tsan
	ctest --preset tsan -j $(JOBS)

# make bench: Google Benchmark plus the same work in Python, side by side. Celery and RQ
# (bench/compare/redis_pool.py) are Debian's packages, seen by /usr/bin/python3; only make bench needs them.
BENCH_PACKAGES := python3-celery python3-rq

bench: build-release
	@missing=""; for p in $(BENCH_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "not root: the Celery / RQ rows stay empty (install:$$missing)"; else \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi; \
	fi
	@bash bench/run.sh build/release

lint: deps build/debug/build.ninja
	@bash scripts/lint.sh build/debug

format:
	@git ls-files '*.hpp' '*.cpp' | xargs clang-format -i

# make fuzz: the libFuzzer targets, optimised with ASan+UBSan, FUZZ_SECONDS each (default 60).
fuzz: deps
	@bash scripts/fuzz.sh

# make package: the Debian package libmp-dev_VERSION_ARCH.deb in build/release.
package: build-release
	cd build/release && cpack -G DEB

# make docs: the API reference (Doxygen) in build/release/docs/html.
docs: deps build/release/build.ninja
	cmake --build --preset release --target docs

clean:
	rm -rf build
