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
# Python's forkserver and spawn children re-import the main module: tens of ms each.
PYTHON_SLOW_PROCESSES = {"forkserver": 40, "spawn": 20}
GOAL_FORKSERVER_TO_RAW_FORK = 2.0
GOAL_SPAWN_TO_RAW_SPAWN = 1.5
GOAL_VS_PYTHON = 20.0
REPEATS = 3
GOAL_RATIO_TO_RAW = 1.5


def nothing():
    pass


def python_start_join_us(method="fork"):
    ctx = mp.get_context(method)
    count = PYTHON_SLOW_PROCESSES.get(method, PYTHON_PROCESSES)
    if method != "fork":
        p = ctx.Process(target=nothing)  # starts the fork server outside the measurement
        p.start()
        p.join()
    best = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        for _ in range(count):
            p = ctx.Process(target=nothing)
            p.start()
            p.join()
        best.append((time.perf_counter() - start) * 1e6 / count)
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

    # Start methods (issue 11): forkserver vs raw fork, spawn vs a raw
    # posix_spawn of the same program with an empty main, each vs Python's same method.
    raw_spawn = cpp["BM_RawPosixSpawnEmpty"]
    print()
    print("Start methods: start+join (medians of 3; us, wall)")
    print(f"{'case':<44}{'us':>10}{'ratio':>10}{'goal':>16}")
    fs = cpp["BM_ForkserverStartJoin"]
    sp = cpp["BM_SpawnStartJoin"]
    ratio = fs / raw
    verdict = "ok" if ratio <= GOAL_FORKSERVER_TO_RAW_FORK else "MISSED"
    print(f"{'mp forkserver / raw fork+waitpid':<44}{fs:>10.1f}{ratio:>10.2f}{'<=2 ' + verdict:>16}")
    print(f"{'raw posix_spawn (empty main) + waitpid':<44}{raw_spawn:>10.1f}{1.0:>10.2f}{'':>16}")
    ratio = sp / raw_spawn
    verdict = "ok" if ratio <= GOAL_SPAWN_TO_RAW_SPAWN else "MISSED"
    print(f"{'mp spawn / raw posix_spawn':<44}{sp:>10.1f}{ratio:>10.2f}{'<=1.5 ' + verdict:>16}")
    for method, ours in (("fork", mp_us), ("forkserver", fs), ("spawn", sp)):
        theirs = py if method == "fork" else python_start_join_us(method)
        speedup = theirs / ours
        verdict = "ok" if speedup >= GOAL_VS_PYTHON else "MISSED"
        print(f"{'Python ' + method + ' / mp ' + method:<44}{theirs:>10.1f}{speedup:>9.1f}x{'>=20x ' + verdict:>16}")


if __name__ == "__main__":
    main()
