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

Rows that explain the figure (info, no goal):
  * the same work through the batch calls mp::redis::Pool's hosts use (QueueCore::put_many,
    get_many, task_done_many; the public put/get/task_done cannot batch), with its server and
    client CPU per item;
  * server and client CPU per item (client: the 8 processes' user + system time), and the
    server's commands per item (an FCALL and each command inside it count);
  * the floor for this shape: 4 redis-benchmark processes doing LPUSH and 4 doing RPOP, one
    connection each, one command per round trip: what 4 + 4 processes that each wait for
    their reply get from this server with no bookkeeping at all (mp's put is one round trip,
    get + the previous task_done one more);
  * the server's CPU per call of mp2_put and mp2_task_done (redis-benchmark, 50 clients, the
    way mp calls them) beside LPUSH's: what the Lua functions cost on top of a plain command.
"""
import json
import os
import re
import subprocess
import sys
import time

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


def children_cpu():
    """CPU seconds (user + system) of this script's waited-for children and their children."""
    t = os.times()
    return t.children_user + t.children_system


def run_cpp(build_dir, server, name_filter):
    """{benchmark name: record} of redis_bench's benchmarks matching name_filter; each record
    also gets the server's CPU time, its command count and the clients' CPU time during the run
    (server_cpu, server_calls, client_cpu)."""
    binary = os.path.join(build_dir, "bench", "redis_bench")
    env = dict(os.environ, MP_REDIS_URL=server.url)
    args = [binary, "--benchmark_format=json", "--benchmark_filter=" + name_filter,
            "--benchmark_min_time=" + ("0.01" if mpbench.quick() else "0.5")]
    cpu, calls, client = server.cpu_seconds(), server.command_calls(), children_cpu()
    out = subprocess.run(args, check=True, capture_output=True, text=True, env=env).stdout
    cpu, calls, client = server.cpu_seconds() - cpu, server.command_calls() - calls, children_cpu() - client
    records = {b["name"]: b for b in json.loads(out)["benchmarks"]}
    for b in records.values():
        b["server_cpu"], b["server_calls"], b["client_cpu"] = cpu, calls, client
    return records


def benchmark(server, *command, clients=50, requests=None):
    """redis-benchmark of one command: (requests/s, server CPU us per request). __rand_int__ in
    an argument becomes a random number per request."""
    requests = requests or (2000 if mpbench.quick() else 50000)
    cpu = server.cpu_seconds()
    out = subprocess.run(["redis-benchmark", "-p", str(server.port), "-c", str(clients), "-n", str(requests),
                          "-r", "1000000000", "-q", *command], check=True, capture_output=True, text=True).stdout
    cpu = server.cpu_seconds() - cpu
    match = re.findall(r"([0-9.]+) requests per second", out)
    if not match:
        raise RuntimeError("cannot parse redis-benchmark output: " + out)
    return float(match[-1]), cpu * 1e6 / requests


def floor(server):
    """(items/s, server CPU us per item, clients' CPU us per item) of 4 processes LPUSHing and 4
    RPOPping one 64-byte item per round trip (redis-benchmark -c 1 each; the list is filled first
    so that every RPOP finds an item)."""
    each = 2500 if mpbench.quick() else 20000
    port, key, payload = str(server.port), "floor:{bench}", "x" * 64
    benchmark(server, "LPUSH", key, payload, requests=4 * each)
    cpu, client, start = server.cpu_seconds(), children_cpu(), time.monotonic()
    procs = [subprocess.Popen(["redis-benchmark", "-p", port, "-c", "1", "-n", str(each), "-q", *command],
                              stdout=subprocess.DEVNULL)
             for command in [["LPUSH", key, payload]] * 4 + [["RPOP", key]] * 4]
    for proc in procs:
        proc.wait()
    elapsed = time.monotonic() - start
    cpu, client = server.cpu_seconds() - cpu, children_cpu() - client
    server.command("DEL", key)
    items = 4 * each
    return items / elapsed, cpu * 1e6 / items, client * 1e6 / items


def function_costs(server):
    """Server CPU us per call of mp2_put and mp2_task_done as mp sends them in the 4+4 case (an
    unbounded queue; put's first send, no record lookup; a deferred task_done, looked up), and of
    LPUSH / RPOP beside them, each by redis-benchmark with 50 clients. The library is loaded
    already (the C++ runs connected)."""
    p = "mpq:{benchcalls}:"
    payload = "x" * 64
    costs = {"LPUSH": benchmark(server, "LPUSH", p + "plain", payload)[1],
             "mp2_put": benchmark(server, "FCALL", "mp2_put", "5", p + "items", p + "meta", p + "unfinished",
                                  p + "producers", p + "notfull", payload, "bench", "__rand_int__", "0", "0", "0")[1]}
    # task_done acknowledges held items: fill the in-flight list first
    benchmark(server, "LPUSH", p + "inflight:c", payload, requests=2 * (2000 if mpbench.quick() else 50000))
    costs["RPOP"] = benchmark(server, "RPOP", p + "inflight:c")[1]
    costs["mp2_task_done"] = benchmark(server, "FCALL", "mp2_task_done", "3", p + "inflight:c", p + "unfinished",
                                       p + "acks", p + "joined", "bench", "__rand_int__", "1", "0")[1]
    return costs


QUEUE_CASES = (("BM_RedisQueue4x4/5000/1000/iterations:2/manual_time", "4+4 procs, 64 B, maxsize 1000"),
               ("BM_RedisQueue4x4/5000/0/iterations:2/manual_time", "4+4 procs, 64 B, unbounded"))
# The same through QueueCore's batch calls (put_many 64, get_many 16 + task_done_many), which
# mp::redis::Pool's hosts use; not the public API, so no goal (info rows).
BATCHED_CASES = (("BM_RedisQueue4x4Batched/5000/1000/iterations:2/manual_time", "  batched (Pool's calls), maxsize 1000"),
                 ("BM_RedisQueue4x4Batched/5000/0/iterations:2/manual_time", "  batched (Pool's calls), unbounded"))
QUEUE_ITEMS = 2 * 4 * 5000  # iterations x producers x items each


def main():
    build_dir = sys.argv[1] if len(sys.argv) > 1 else "build/release"
    with mpbench.RedisServer() as server:
        # The ceiling is measured before and after the C++ runs and the higher one kept, so a
        # busy moment during one measurement does not flatter the ratio.
        before, before_cpu = lpush_ceiling(server)
        cpp = {}
        for name, _ in QUEUE_CASES + BATCHED_CASES:  # one run each: the server's CPU time is per case
            cpp.update(run_cpp(build_dir, server, "^" + name.split("/iterations")[0] + "/"))
        cpp.update(run_cpp(build_dir, server, "BM_RedisRoundTrip|BM_RedisLock"))
        floor_rate, floor_server, floor_client = floor(server)
        costs = function_costs(server)
        after, after_cpu = lpush_ceiling(server)
        ceiling, ceiling_cpu = max((before, before_cpu), (after, after_cpu))
        load = os.getloadavg()[0]

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
            table.row("  client CPU per item (8 processes)", b["client_cpu"] * 1e6 / QUEUE_ITEMS, None, "us", True)
            table.row("  server commands per item (FCALL + inside)", b["server_calls"] / QUEUE_ITEMS, None, "", True)
    for name, label in BATCHED_CASES:
        b = cpp.get(name)
        ok = b is not None and not b.get("error_occurred")
        table.row(label + " (item/s)", b["items_per_second"] if ok else None, ceiling, "/s", False, percent=True)
        if ok:
            table.row("    server CPU per item", b["server_cpu"] * 1e6 / QUEUE_ITEMS, None, "us", True)
            table.row("    client CPU per item", b["client_cpu"] * 1e6 / QUEUE_ITEMS, None, "us", True)
    table.row("floor: 4 LPUSH + 4 RPOP procs, 1 cmd/round trip", floor_rate, ceiling, "/s", False, percent=True)
    table.row("  server CPU per item (python: per LPUSH)", floor_server, ceiling_cpu, "us", True)
    table.row("  client CPU per item (8 processes)", floor_client, None, "us", True)
    for name, plain in (("mp2_put", "LPUSH"), ("mp2_task_done", "RPOP")):
        table.row(f"server CPU per {name} call (python: {plain})", costs[name], costs[plain], "us", True)
    rt = cpp.get("BM_RedisRoundTrip/real_time")
    if rt:
        table.row("1 -> 1 round trip (put, get, put, get)", mpbench.ns(rt) / 1e3, None, "us", True)
    lock = cpp.get("BM_RedisLock/real_time")
    if lock:
        table.row("Lock acquire + release", mpbench.ns(lock) / 1e3, None, "us", True)
    table.row("load average (1 min) at the end of this table", load, None, "", True)
    table.print()


if __name__ == "__main__":
    main()
