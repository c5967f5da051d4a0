#!/usr/bin/env python3
"""mp::Lock against Python's multiprocessing.Lock, measured in the same run.

Usage: python3 bench/compare/lock.py <build-dir>

Runs <build-dir>/bench/lock_bench (Google Benchmark, JSON) and the same work in
Python: an uncontended acquire+release, and two processes each incrementing a
shared counter under one lock. Prints a table with the ratios and the goals
(Lock acquire+release <= 15 ns; <= 30 ns per increment with 2 processes).
CPU time is shown beside wall time for the single-process cases: on a busy
shared machine wall time includes time the benchmark was not running at all.
"""
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time

ACQUIRES = 1_000_000
INCREMENTS_PER_PROCESS = 200_000
GOAL_ACQUIRE_NS = 15.0
GOAL_INCREMENT_NS = 30.0


def python_acquire_release_ns():
    lock = mp.get_context("fork").Lock()
    acquire, release = lock.acquire, lock.release
    start, start_cpu = time.perf_counter(), time.process_time()
    for _ in range(ACQUIRES):
        acquire()
        release()
    return ((time.perf_counter() - start) * 1e9 / ACQUIRES,
            (time.process_time() - start_cpu) * 1e9 / ACQUIRES)


def add(lock, counter, n):
    for _ in range(n):
        with lock:
            counter.value += 1


def python_two_process_counter_ns():
    ctx = mp.get_context("fork")
    lock = ctx.Lock()
    counter = ctx.Value("q", 0, lock=False)
    start = time.perf_counter()
    child = ctx.Process(target=add, args=(lock, counter, INCREMENTS_PER_PROCESS))
    child.start()
    add(lock, counter, INCREMENTS_PER_PROCESS)
    child.join()
    elapsed = time.perf_counter() - start
    assert counter.value == 2 * INCREMENTS_PER_PROCESS, "increments were lost"
    return elapsed * 1e9 / (2 * INCREMENTS_PER_PROCESS)


def cpp_results(build):
    binary = os.path.join(build, "bench", "lock_bench")
    out = subprocess.run(
        [binary, "--benchmark_format=json", "--benchmark_repetitions=3",
         "--benchmark_report_aggregates_only=true"],
        check=True, capture_output=True, text=True).stdout
    results = {}
    for b in json.loads(out)["benchmarks"]:
        if b.get("aggregate_name") != "median":
            continue
        name = b["run_name"].split("/")[0]
        scale = {"ns": 1.0, "us": 1e3, "ms": 1e6}[b["time_unit"]]
        results[name] = {"real": b["real_time"] * scale, "cpu": b["cpu_time"] * scale,
                         "per_increment": b.get("ns_per_increment")}
    return results


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build/release"
    cpp = cpp_results(build)
    py_acquire = python_acquire_release_ns()
    py_counter = python_two_process_counter_ns()

    print("mp::Lock vs multiprocessing.Lock (medians of 3; ns)")
    header = (f"{'case':44} {'mp wall':>9} {'mp cpu':>9} {'py wall':>9} {'py cpu':>9} "
              f"{'speed-up':>9} {'goal':>8}")
    print(header)
    print("-" * len(header))

    def cell(value):
        return f"{value:9.1f}" if value is not None else f"{'':>9}"

    # Single-process rows are judged and compared on CPU time (the machine may
    # be shared); the two-process row on wall time (it is what it measures).
    def row(label, wall, cpu, py_wall, py_cpu, goal):
        mine = cpu if cpu is not None else wall
        theirs = py_cpu if (cpu is not None and py_cpu is not None) else py_wall
        ok = "ok" if goal is None or mine <= goal else "MISSED"
        ratio = f"{theirs / mine:8.1f}x" if theirs is not None else f"{'':>9}"
        goal_text = f"<={goal:.0f} {ok}" if goal is not None else ""
        print(f"{label:44} {cell(wall)} {cell(cpu)} {cell(py_wall)} {cell(py_cpu)} {ratio} {goal_text}")

    lock = cpp["BM_LockAcquireRelease"]
    row("Lock acquire+release, uncontended", lock["real"], lock["cpu"], py_acquire[0], py_acquire[1],
        GOAL_ACQUIRE_NS)
    for name, label in [("BM_LockGuard", "  via std::lock_guard"),
                        ("BM_RLockAcquireRelease", "RLock acquire+release"),
                        ("BM_SemaphoreAcquireRelease", "Semaphore acquire+release"),
                        ("BM_RawRobustMutex", "  floor: bare robust pshared pthread mutex"),
                        ("BM_RawPlainSharedMutex", "  bare non-robust pshared pthread mutex")]:
        if name in cpp:
            row(label, cpp[name]["real"], cpp[name]["cpu"], None, None, None)
    counter = cpp["BM_TwoProcessCounter"]["per_increment"]
    row("2 processes x increment under one Lock", counter, None, py_counter, None, GOAL_INCREMENT_NS)


if __name__ == "__main__":
    main()
