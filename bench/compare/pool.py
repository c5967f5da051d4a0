#!/usr/bin/env python3
"""mp::Pool against Python's multiprocessing.Pool, measured in the same run.

Usage: python3 bench/compare/pool.py <build-dir>

Runs <build-dir>/bench/pool_bench (Google Benchmark, JSON) and the same work
with multiprocessing.Pool(2) (fork): apply_async(f, x).get() round trip,
map(trivial, 20k items, chunksize=1), map(trivial, 200k items, default
chunksize), imap_unordered(trivial, 100k items), and Pool(2) create + close +
join (also under forkserver and spawn, against Python's same method). Prints per-call / per-item times, the ratio
Python / mp and the goal (issue 10's, for an idle machine; on a busy one apply_async >= 2x Python).
"""
import os
import sys

# This directory holds queue.py, pipe.py, ...: keep them from shadowing the
# standard modules multiprocessing imports (queue, ...).
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import multiprocessing as mp  # noqa: E402
import time  # noqa: E402

sys.path.append(os.path.join(_HERE, ".."))
import mpbench  # noqa: E402


def trivial(x):
    return x + 1


def best_of(repeats, fn):
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def python_results():
    ctx = mp.get_context("fork")
    results = {}
    with ctx.Pool(2) as pool:
        pool.map(trivial, range(1000))  # warm up
        n = 2000

        def round_trips():
            x = 0
            for _ in range(n):
                x = pool.apply_async(trivial, (x,)).get()

        results["apply"] = best_of(3, round_trips) / n
        results["map1"] = best_of(3, lambda: pool.map(trivial, range(20000), chunksize=1)) / 20000
        results["map"] = best_of(5, lambda: pool.map(trivial, range(200000))) / 200000
        results["imap_unordered"] = best_of(3, lambda: list(pool.imap_unordered(trivial, range(100000)))) / 100000

    def create():
        p = ctx.Pool(2)
        p.close()
        p.join()

    results["create"] = best_of(10, create)

    for method in ("forkserver", "spawn"):
        other = mp.get_context(method)

        def create_under():
            p = other.Pool(2)
            p.close()
            p.join()

        create_under()  # a forkserver starts its server once
        results["create_" + method] = best_of(3, create_under)
    return results


def main():
    build_dir = sys.argv[1] if len(sys.argv) > 1 else "build/release"
    cpp = mpbench.gbench(os.path.join(build_dir, "bench", "pool_bench"), extra=["--benchmark_min_time=0.5"])
    py = python_results()
    rows = [
        ("apply_async(f, x).get() round trip", mpbench.ns(cpp["BM_PoolApplyAsyncRoundTrip/real_time"]) * 1e-9,
         py["apply"], {"idle": 20, "busy": 2}),
        ("map 20k items, chunksize=1, per item", mpbench.ns(cpp["BM_PoolMapChunksize1/20000/real_time"]) * 1e-9 / 20000,
         py["map1"], 20),
        ("map 200k items, default chunksize, per item",
         mpbench.ns(cpp["BM_PoolMapDefaultChunksize/200000/real_time"]) * 1e-9 / 200000, py["map"], 5),
        ("imap_unordered 100k items, per item", mpbench.ns(cpp["BM_PoolImapUnordered/100000/real_time"]) * 1e-9 / 100000,
         py["imap_unordered"], 20),
        ("Pool(2) create + close + join", mpbench.ns(cpp["BM_PoolCreateCloseJoin/real_time"]) * 1e-9, py["create"], None),
        ("  the same under forkserver", mpbench.ns(cpp["BM_PoolCreateCloseJoinUnder/1/real_time"]) * 1e-9,
         py["create_forkserver"], None),
        ("  the same under spawn", mpbench.ns(cpp["BM_PoolCreateCloseJoinUnder/2/real_time"]) * 1e-9,
         py["create_spawn"], None),
    ]
    print("Pool: mp::Pool(2) vs multiprocessing.Pool(2) (fork), same run")
    print(f"{'case':46} {'mp':>12} {'python':>12} {'python/mp':>10}  goal")
    for name, mine, theirs, goal in rows:
        ratio = theirs / mine
        verdict = mpbench.ratio_verdict(ratio, goal)
        print(f"{name:46} {mine * 1e6:9.3f} us {theirs * 1e6:9.3f} us {ratio:9.1f}x  {verdict}")


if __name__ == "__main__":
    main()
