#!/usr/bin/env bash
# make bench: every comparison script under bench/compare/ runs the C++
# benchmark binaries and the same work in Python's multiprocessing in one go,
# and prints a table with the ratios and issue 10's goals (bench/mpbench.py).
# Every table is printed twice: on the machine as it is ("idle": the load
# average printed first says how idle), then "busy": with one busy-looping
# process per core, started here and stopped after.
#
# redis.py and redis_pool.py each start (and stop) their own throwaway redis-server;
# redis_pool.py runs Celery and RQ under /usr/bin/python3 (Debian's python3-celery and
# python3-rq, which make bench installs when missing).
#
#   MP_BENCH_QUICK=1 bash bench/run.sh build/release   # plumbing test: every benchmark shortened
#   MP_BENCH_ONLY="lock pool" bash bench/run.sh          # only these comparisons
set -uo pipefail
build=${1:-build/release}
cores=$(nproc)
echo "mp benchmarks — $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min) on $cores cores"
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -sr)"
echo "python: $(python3 --version 2>&1)"
[ -n "${MP_BENCH_QUICK:-}" ] && echo "MP_BENCH_QUICK is set: shortened runs, figures meaningless"

busy=()
stop_busy() {
  [ ${#busy[@]} -eq 0 ] && return
  kill "${busy[@]}" 2>/dev/null
  wait "${busy[@]}" 2>/dev/null
  busy=()
}
trap stop_busy EXIT INT TERM

status=0
for condition in idle busy; do
  echo
  if [ "$condition" = busy ]; then
    for ((i = 0; i < cores; ++i)); do
      (while :; do :; done) &
      busy+=($!)
    done
    echo "=== busy: $cores busy-looping processes compete for the $cores cores ==="
  else
    echo "=== idle: the machine as it is (load average above) ==="
  fi
  for script in bench/compare/*.py; do
    name=$(basename "$script" .py)
    [ -n "${MP_BENCH_ONLY:-}" ] && [[ " $MP_BENCH_ONLY " != *" $name "* ]] && continue
    echo
    # -P: do not put bench/compare first on sys.path (its queue.py would
    # shadow the standard library module multiprocessing imports).
    if ! MP_BENCH_CONDITION=$condition python3 -P "$script" "$build"; then
      echo "FAILED: $script ($condition)"
      status=1
    fi
  done
  stop_busy
done
exit $status
