#!/usr/bin/env python3
"""mp::redis against the server's own ceiling, measured in the same run.

Usage: python3 bench/compare/redis.py <build-dir>

Starts a throwaway redis-server (mpbench.RedisServer: 127.0.0.1, free port,
temporary directory, AOF with appendfsync everysec), measures the ceiling with
`redis-benchmark -t lpush -c 50 -n 100000 -q`, runs <build-dir>/bench/redis_bench
(Google Benchmark, JSON) against the same server, measures the ceiling again
(the higher of the two counts), prints a table (bench/mpbench.py), and stops the
server by its pid. Goal for 4 producers + 4 consumers (processes), 64-byte
items, put -> get -> task_done: >= 30% of the LPUSH ceiling (issue 12) and
>= 25k items/s. Python's multiprocessing has no Redis backend; the ceiling is
the comparison (its column is the python column of the table).
"""
import json
import os
import re
import subprocess
import sys

sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import mpbench  # noqa: E402

GOAL_ITEMS_PER_SECOND = 25000.0
GOAL_CEILING_FRACTION = 0.30


def lpush_ceiling(server):
    """(LPUSH requests/s, server CPU us per LPUSH) by redis-benchmark, 50 clients."""
    requests = 10000 if mpbench.quick() else 100000
    cpu = server.cpu_seconds()
    out = subprocess.run(["redis-benchmark", "-p", str(server.port), "-t", "lpush", "-c", "50", "-n", str(requests),
                          "-q"], check=True, capture_output=True, text=True).stdout
    cpu = server.cpu_seconds() - cpu
    # "LPUSH: 85034.01 requests per second, p50=..." (the line may carry \r progress output)
    match = re.findall(r"LPUSH: ([0-9.]+) requests per second", out)
    if not match:
        raise RuntimeError("cannot parse redis-benchmark output: " + out)
    return float(match[-1]), cpu * 1e6 / requests


def run_cpp(build_dir, server, name_filter):
    """{benchmark name: record} of redis_bench's benchmarks matching name_filter; each record
    also gets the server's CPU time and command count during the run (server_cpu, server_calls)."""
    binary = os.path.join(build_dir, "bench", "redis_bench")
    env = dict(os.environ, MP_REDIS_URL=server.url)
    args = [binary, "--benchmark_format=json", "--benchmark_filter=" + name_filter,
            "--benchmark_min_time=" + ("0.01" if mpbench.quick() else "0.5")]
    cpu, calls = server.cpu_seconds(), server.command_calls()
    out = subprocess.run(args, check=True, capture_output=True, text=True, env=env).stdout
    cpu, calls = server.cpu_seconds() - cpu, server.command_calls() - calls
    records = {b["name"]: b for b in json.loads(out)["benchmarks"]}
    for b in records.values():
        b["server_cpu"], b["server_calls"] = cpu, calls
    return records


QUEUE_CASES = (("BM_RedisQueue4x4/5000/1000/iterations:2/manual_time", "4+4 procs, 64 B, maxsize 1000"),
               ("BM_RedisQueue4x4/5000/0/iterations:2/manual_time", "4+4 procs, 64 B, unbounded"))
QUEUE_ITEMS = 2 * 4 * 5000  # iterations x producers x items each


def main():
    build_dir = sys.argv[1] if len(sys.argv) > 1 else "build/release"
    with mpbench.RedisServer() as server:
        # The ceiling is measured before and after the C++ runs and the higher one kept, so a
        # busy moment during one measurement does not flatter the ratio.
        before, before_cpu = lpush_ceiling(server)
        cpp = {}
        for name, _ in QUEUE_CASES:  # one run each, so that the server's CPU time is per case
            cpp.update(run_cpp(build_dir, server, "^" + name.split("/iterations")[0] + "/"))
        cpp.update(run_cpp(build_dir, server, "BM_RedisRoundTrip|BM_RedisLock"))
        after, after_cpu = lpush_ceiling(server)
        ceiling, ceiling_cpu = max((before, before_cpu), (after, after_cpu))

    table = mpbench.Table("Redis: mp::redis against redis-benchmark LPUSH (50 clients) on the same throwaway "
                          "server (AOF everysec); python column: the ceiling")
    for name, label in QUEUE_CASES:
        b = cpp.get(name)
        ok = b is not None and not b.get("error_occurred")
        table.row(label + " (item/s)", b["items_per_second"] if ok else None, ceiling, "/s", False,
                  ratio_goal=GOAL_CEILING_FRACTION, mp_goal=GOAL_ITEMS_PER_SECOND, percent=True)
        if ok:
            table.row("  server CPU per item (python: per LPUSH)", b["server_cpu"] * 1e6 / QUEUE_ITEMS, ceiling_cpu,
                      "us", True)
            table.row("  server commands per item (FCALL + inside)", b["server_calls"] / QUEUE_ITEMS, None, "", True)
    rt = cpp.get("BM_RedisRoundTrip/real_time")
    if rt:
        table.row("1 -> 1 round trip (put, get, put, get)", mpbench.ns(rt) / 1e3, None, "us", True)
    lock = cpp.get("BM_RedisLock/real_time")
    if lock:
        table.row("Lock acquire + release", mpbench.ns(lock) / 1e3, None, "us", True)
    table.print()


if __name__ == "__main__":
    main()
