#!/usr/bin/env python3
"""mp::Queue against Python's multiprocessing.Queue (and Boost.Interprocess
message_queue), measured in the same run.

Usage: python3 bench/compare/queue.py <build-dir>

Runs <build-dir>/bench/queue_bench (Google Benchmark, JSON) and the same work in
Python with multiprocessing (start method fork):
  * 1 producer process -> 1 consumer, small items (an int): msg/s
    goals: >= 100x Python, >= 3x Boost message_queue
  * 1 -> 1, 4 KiB bytes items: MB/s, goal >= 12x Python
  * 1 -> 1, 1 MiB bytes items: MB/s, goal >= 7x Python
  * ping-pong round trip over two Queues: goal <= Python's Pipe round trip / 15
  * 3 producers + 3 consumers, small items: msg/s (reported with Python's)
  * JoinableQueue: put N, 2 consumers get + task_done, join: items/s
Python moves fewer items than C++ (it is much slower); rates are per second of
wall time, so the ratios compare like with like. On a busy shared machine the
wall time includes time a process was not scheduled at all.
"""
import os
import sys

# This file is named queue.py, which would shadow the standard library's
# `queue` module that multiprocessing imports: drop our directory from the path.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
sys.modules.pop("queue", None)

import json  # noqa: E402
import multiprocessing as mp  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

CTX = mp.get_context("fork")


# ---- Python side -------------------------------------------------------------

def _produce(q, n, item):
    for _ in range(n):
        q.put(item)


def py_one_to_one(n, item):
    q = CTX.Queue()
    child = CTX.Process(target=_produce, args=(q, n, item))
    start = time.perf_counter()
    child.start()
    for _ in range(n):
        q.get()
    elapsed = time.perf_counter() - start
    child.join()
    return elapsed


def _echo(requests, replies):
    while True:
        v = requests.get()
        if v < 0:
            return
        replies.put(v + 1)


def py_queue_ping_pong_us(n=3000):
    requests, replies = CTX.Queue(), CTX.Queue()
    child = CTX.Process(target=_echo, args=(requests, replies))
    child.start()
    v = 0
    start = time.perf_counter()
    for _ in range(n):
        requests.put(v)
        v = replies.get()
    elapsed = time.perf_counter() - start
    requests.put(-1)
    child.join()
    return elapsed * 1e6 / n


def _pipe_echo(conn):
    while True:
        v = conn.recv()
        if v < 0:
            return
        conn.send(v + 1)


def py_pipe_ping_pong_us(n=5000):
    a, b = CTX.Pipe()
    child = CTX.Process(target=_pipe_echo, args=(b,))
    child.start()
    v = 0
    start = time.perf_counter()
    for _ in range(n):
        a.send(v)
        v = a.recv()
    elapsed = time.perf_counter() - start
    a.send(-1)
    child.join()
    return elapsed * 1e6 / n


def _consume(q):
    while q.get() >= 0:
        pass


def py_three_by_three(per_producer):
    q = CTX.Queue()
    consumers = [CTX.Process(target=_consume, args=(q,)) for _ in range(3)]
    producers = [CTX.Process(target=_produce, args=(q, per_producer, 1)) for _ in range(3)]
    start = time.perf_counter()
    for p in consumers + producers:
        p.start()
    for p in producers:
        p.join()
    for _ in consumers:
        q.put(-1)
    for p in consumers:
        p.join()
    return time.perf_counter() - start


def _joinable_consume(q):
    while True:
        v = q.get()
        q.task_done()
        if v < 0:
            return


def py_joinable(n):
    q = CTX.JoinableQueue()
    consumers = [CTX.Process(target=_joinable_consume, args=(q,)) for _ in range(2)]
    for p in consumers:
        p.start()
    start = time.perf_counter()
    for i in range(n):
        q.put(i)
    q.join()
    elapsed = time.perf_counter() - start
    q.put(-1)
    q.put(-1)
    for p in consumers:
        p.join()
    return elapsed


# ---- C++ side ----------------------------------------------------------------

def cpp_results(build):
    binary = os.path.join(build, "bench", "queue_bench")
    out = subprocess.run([binary, "--benchmark_format=json"], check=True, capture_output=True, text=True).stdout
    results = {}
    for b in json.loads(out)["benchmarks"]:
        results[b["name"].split("/")[0] + ("/" + b["name"].split("/")[1] if "Bytes" in b["name"] else "")] = b
    return results


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    cpp = cpp_results(sys.argv[1])

    n_small = 200_000
    py_small = n_small / py_one_to_one(n_small, 12345)
    n_4k = 20_000
    py_4k = n_4k * 4096 / py_one_to_one(n_4k, b"\x07" * 4096) / 1e6
    n_1m = 300
    py_1m = n_1m * (1 << 20) / py_one_to_one(n_1m, b"\x07" * (1 << 20)) / 1e6
    py_pipe_rt = py_pipe_ping_pong_us()
    py_queue_rt = py_queue_ping_pong_us()
    per = 60_000
    py_3x3 = 3 * per / py_three_by_three(per)
    n_join = 100_000
    py_join = n_join / py_joinable(n_join)

    def rate(name, key="items_per_second"):
        return cpp[name][key] if name in cpp else float("nan")

    mp_small = rate("BM_Queue_SmallItems_1P1C")
    boost_small = rate("BM_BoostMessageQueue_SmallItems_1P1C")
    mp_4k = rate("BM_Queue_Bytes_1P1C/4096", "bytes_per_second") / 1e6
    mp_1m = rate("BM_Queue_Bytes_1P1C/1048576", "bytes_per_second") / 1e6
    mp_rt = cpp["BM_Queue_PingPong"]["real_time"] if "BM_Queue_PingPong" in cpp else float("nan")
    if "BM_Queue_PingPong" in cpp and cpp["BM_Queue_PingPong"]["time_unit"] == "ns":
        mp_rt /= 1000.0
    mp_3x3 = rate("BM_Queue_SmallItems_3P3C")
    mp_join = rate("BM_JoinableQueue_PutGetTaskDoneJoin")

    def verdict(ok):
        return "meets goal" if ok else "BELOW GOAL"

    print("Queue: mp::Queue vs Python multiprocessing.Queue (and Boost message_queue), same run")
    print(f"{'case':44} {'mp':>14} {'python':>14} {'ratio':>9}  goal")
    rows = [
        ("1P->1C small items, msg/s", mp_small, py_small, mp_small / py_small, ">= 100x", mp_small / py_small >= 100),
        ("1P->1C small items vs Boost message_queue", mp_small, boost_small, mp_small / boost_small,
         ">= 3x Boost", mp_small / boost_small >= 3),
        ("1P->1C 4 KiB items, MB/s", mp_4k, py_4k, mp_4k / py_4k, ">= 12x", mp_4k / py_4k >= 12),
        ("1P->1C 1 MiB items, MB/s", mp_1m, py_1m, mp_1m / py_1m, ">= 7x", mp_1m / py_1m >= 7),
        ("ping-pong round trip (us) vs Python Pipe", mp_rt, py_pipe_rt, py_pipe_rt / mp_rt, ">= 15x faster",
         py_pipe_rt / mp_rt >= 15),
        ("ping-pong round trip (us) vs Python Queue", mp_rt, py_queue_rt, py_queue_rt / mp_rt, "(info)", None),
        ("3P->3C small items, msg/s", mp_3x3, py_3x3, mp_3x3 / py_3x3, "(report)", None),
        ("JoinableQueue put/get+task_done/join, items/s", mp_join, py_join, mp_join / py_join, "(report)", None),
    ]
    for name, a, b, r, goal, ok in rows:
        tail = goal if ok is None else f"{goal}: {verdict(ok)}"
        print(f"{name:44} {a:14.1f} {b:14.1f} {r:8.1f}x  {tail}")
    print("(the 'python' column of the Boost row is Boost.Interprocess message_queue; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
