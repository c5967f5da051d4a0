#!/usr/bin/env python3
"""mp::Process start+join against raw fork()+waitpid() and Python's
multiprocessing.get_context('fork').Process, measured in the same run.

Usage: python3 bench/compare/process.py <build-dir>

Runs <build-dir>/bench/process_bench (Google Benchmark, JSON, medians of 3)
and starts+joins Python fork-context Processes with an empty target. Prints
microseconds per start+join and the ratios; goal: mp <= 1.5x raw fork.
"""
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time

PYTHON_PROCESSES = 300
REPEATS = 3
GOAL_RATIO_TO_RAW = 1.5


def nothing():
    pass


def python_start_join_us():
    ctx = mp.get_context("fork")
    best = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        for _ in range(PYTHON_PROCESSES):
            p = ctx.Process(target=nothing)
            p.start()
            p.join()
        best.append((time.perf_counter() - start) * 1e6 / PYTHON_PROCESSES)
    best.sort()
    return best[len(best) // 2]


def cpp_results(build):
    binary = os.path.join(build, "bench", "process_bench")
    out = subprocess.run(
        [binary, "--benchmark_format=json", "--benchmark_repetitions=3",
         "--benchmark_report_aggregates_only=true", "--benchmark_min_time=0.3"],
        check=True, capture_output=True, text=True).stdout
    results = {}
    for b in json.loads(out)["benchmarks"]:
        if b.get("aggregate_name") != "median":
            continue
        name = b["run_name"].split("/")[0]
        scale = {"ns": 1e-3, "us": 1.0, "ms": 1e3}[b["time_unit"]]
        results[name] = b["real_time"] * scale
    return results


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build/release"
    cpp = cpp_results(build)
    py = python_start_join_us()
    raw = cpp["BM_RawForkWaitpid"]
    mp_us = cpp["BM_ProcessStartJoin"]
    daemon_us = cpp["BM_DaemonStartJoin"]

    print("Process start+join vs raw fork+waitpid and multiprocessing (fork) (medians of 3; us, wall)")
    print(f"{'case':<44}{'us':>10}{'vs raw fork':>14}{'goal':>10}")
    print(f"{'raw fork() + waitpid()':<44}{raw:>10.1f}{1.0:>14.2f}{'':>10}")
    ratio = mp_us / raw
    verdict = "ok" if ratio <= GOAL_RATIO_TO_RAW else "MISSED"
    print(f"{'mp::Process start+join':<44}{mp_us:>10.1f}{ratio:>14.2f}{'<=1.5 ' + verdict:>10}")
    print(f"{'mp::Process start+join (daemon)':<44}{daemon_us:>10.1f}{daemon_us / raw:>14.2f}{'':>10}")
    print(f"{'Python Process start+join (fork context)':<44}{py:>10.1f}{py / raw:>14.2f}{'':>10}")
    print(f"Python / mp: {py / mp_us:.1f}x")


if __name__ == "__main__":
    main()
