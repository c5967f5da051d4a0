#!/usr/bin/env python3
"""mp::redis against the server's own ceiling, measured in the same run.

Usage: python3 bench/compare/redis.py <build-dir>

Starts a throwaway redis-server (127.0.0.1, free port, temporary directory,
AOF with appendfsync everysec), measures the ceiling with
`redis-benchmark -t lpush -c 50 -n 100000 -q`, runs <build-dir>/bench/redis_bench
(Google Benchmark, JSON) against the same server, measures the ceiling again
(the higher of the two counts), prints a table, and stops the
server by its pid. Goal for 4 producers + 4 consumers (processes), 64-byte
items, put -> get -> task_done: >= 25k items/s and >= 30% of the LPUSH ceiling.
Python's multiprocessing has no Redis backend; the ceiling is the comparison.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

GOAL_ITEMS_PER_SECOND = 25000.0
GOAL_CEILING_FRACTION = 0.30


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def ping(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")  # a loading server answers -LOADING
    except OSError:
        return False


class Server:
    def __init__(self, fsync="everysec"):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="mp-redis-bench-")  # absolute
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--protected-mode", "yes",
             "--save", "", "--appendonly", "yes", "--appendfsync", fsync, "--dir", self.dir,
             "--logfile", os.path.join(self.dir, "redis.log"), "--daemonize", "no"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 20
        while not ping(self.port):
            if time.time() > deadline or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def lpush_ceiling(port):
    out = subprocess.run(["redis-benchmark", "-p", str(port), "-t", "lpush", "-c", "50", "-n", "100000", "-q"],
                         check=True, capture_output=True, text=True).stdout
    # "LPUSH: 85034.01 requests per second, p50=..." (the line may carry \r progress output)
    match = re.findall(r"LPUSH: ([0-9.]+) requests per second", out)
    if not match:
        raise RuntimeError("cannot parse redis-benchmark output: " + out)
    return float(match[-1])


def run_cpp(build_dir, url):
    binary = os.path.join(build_dir, "bench", "redis_bench")
    env = dict(os.environ, MP_REDIS_URL=url)
    out = subprocess.run([binary, "--benchmark_format=json", "--benchmark_min_time=0.5"],
                         check=True, capture_output=True, text=True, env=env).stdout
    return {b["name"]: b for b in json.loads(out)["benchmarks"]}


def seconds(b):
    scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b["time_unit"]]
    return b["real_time"] * scale


def main():
    build_dir = sys.argv[1] if len(sys.argv) > 1 else "build/release"
    server = Server()
    try:
        url = f"redis://127.0.0.1:{server.port}"
        # The ceiling is measured before and after the C++ run and the higher one kept, so a
        # busy moment during one measurement does not flatter the ratio.
        before = lpush_ceiling(server.port)
        cpp = run_cpp(build_dir, url)
        ceiling = max(before, lpush_ceiling(server.port))
    finally:
        server.stop()

    print("Redis: mp::redis against redis-benchmark on the same throwaway server (AOF everysec), same run")
    print(f"{'case':44} {'mp::redis':>16} {'ceiling':>16} {'ratio':>8}  goal")
    for name, label in (("BM_RedisQueue4x4/5000/1000/iterations:2/manual_time", "4+4 procs, 64 B, maxsize 1000"),
                        ("BM_RedisQueue4x4/5000/0/iterations:2/manual_time", "4+4 procs, 64 B, unbounded")):
        b = cpp.get(name)
        if b is None or b.get("error_occurred"):
            print(f"{label:44} {'failed':>16}")
            continue
        rate = b["items_per_second"]
        fraction = rate / ceiling
        verdict = "met" if rate >= GOAL_ITEMS_PER_SECOND and fraction >= GOAL_CEILING_FRACTION else "NOT met"
        print(f"{label:44} {rate:10.0f} item/s {ceiling:10.0f} op/s {fraction * 100:7.1f}%"
              f"  >= {GOAL_ITEMS_PER_SECOND / 1000:.0f}k/s and >= {GOAL_CEILING_FRACTION * 100:.0f}%: {verdict}")
    rt = cpp.get("BM_RedisRoundTrip/real_time")
    if rt:
        print(f"{'1 -> 1 round trip (put, get, put, get)':44} {seconds(rt) * 1e6:13.1f} us"
              f" {'':>16} {'':>8}  (reported)")
    lock = cpp.get("BM_RedisLock/real_time")
    if lock:
        print(f"{'Lock acquire + release':44} {seconds(lock) * 1e6:13.1f} us {'':>16} {'':>8}  (reported)")


if __name__ == "__main__":
    main()
