#!/usr/bin/env python3
"""mp::Process start+join against raw fork()+waitpid() and Python's
multiprocessing.get_context('fork').Process, measured in the same run.

Usage: python3 bench/compare/process.py <build-dir>

Runs <build-dir>/bench/process_bench (Google Benchmark, JSON, medians of 3)
and starts+joins Python fork-context Processes with an empty target. Prints a
table (bench/mpbench.py): microseconds per start+join, the ratios to Python's
same start method (goal >= 20x) and the goals against the raw calls: fork <=
1.5x raw fork, forkserver <= 2x raw fork, spawn <= 1.5x a raw posix_spawn.
"""
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time

sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import mpbench  # noqa: E402

PYTHON_PROCESSES = mpbench.scaled(300, 10)
# Python's forkserver and spawn children re-import the main module: tens of ms each.
PYTHON_SLOW_PROCESSES = {"forkserver": mpbench.scaled(40, 3), "spawn": mpbench.scaled(20, 3)}
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
         "--benchmark_report_aggregates_only=true",
         "--benchmark_min_time=" + ("0.01" if mpbench.quick() else "0.3")],
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
    raw = cpp["BM_RawForkWaitpid"]
    raw_spawn = cpp["BM_RawPosixSpawnEmpty"]
    python = {"fork": python_start_join_us("fork"), "forkserver": python_start_join_us("forkserver"),
              "spawn": python_start_join_us("spawn")}

    table = mpbench.Table("Process start+join: mp vs raw fork/posix_spawn and multiprocessing, same method "
                          "(medians of 3; us, wall)")
    table.row("raw fork() + waitpid()", raw, None, "us", True)
    table.row(f"mp::Process fork (<= {GOAL_RATIO_TO_RAW:g}x raw fork)", cpp["BM_ProcessStartJoin"], python["fork"],
              "us", True, ratio_goal=GOAL_VS_PYTHON, mp_goal=GOAL_RATIO_TO_RAW * raw)
    table.row("  daemon", cpp["BM_DaemonStartJoin"], None, "us", True)
    # Start methods (issue 11): forkserver vs raw fork, spawn vs a raw posix_spawn of the same
    # program with an empty main, each vs Python's same method.
    table.row(f"mp forkserver (<= {GOAL_FORKSERVER_TO_RAW_FORK:g}x raw fork)", cpp["BM_ForkserverStartJoin"],
              python["forkserver"], "us", True, ratio_goal=GOAL_VS_PYTHON,
              mp_goal=GOAL_FORKSERVER_TO_RAW_FORK * raw)
    table.row("raw posix_spawn (empty main) + waitpid", raw_spawn, None, "us", True)
    table.row(f"mp spawn (<= {GOAL_SPAWN_TO_RAW_SPAWN:g}x raw posix_spawn)", cpp["BM_SpawnStartJoin"],
              python["spawn"], "us", True, ratio_goal=GOAL_VS_PYTHON, mp_goal=GOAL_SPAWN_TO_RAW_SPAWN * raw_spawn)
    table.print()


if __name__ == "__main__":
    main()
