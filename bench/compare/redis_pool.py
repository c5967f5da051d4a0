#!/usr/bin/env python3
"""mp::redis::Pool against Celery 5 and RQ on one throwaway Redis server, same run.

Usage: python3 bench/compare/redis_pool.py <build-dir>

Starts one throwaway redis-server (mpbench.RedisServer: AOF everysec) for the
whole run and stops it after. On it, in turn:
  mp      <build-dir>/bench/redis_pool_bench: mp::redis::Pool.map of 20,000
          trivial tasks (x + 1) over one worker host (mp::redis::serve) with
          2 worker processes; also (info) two hosts of 1 process each.
  Celery  Debian's python3-celery: one `celery worker -c 2 -P prefork` (2 worker
          processes, Redis broker and result backend, defaults otherwise); the map
          is group(increment.s(i) ...).apply_async().get(), CELERY_TASKS tasks.
  RQ      Debian's python3-rq: 2 `rq worker` processes; the map is
          Queue.enqueue_many, then waiting for every job and fetching its result.
          The goal row uses RQ's default Worker (it forks one work horse per job);
          the SimpleWorker row (jobs run in the worker process) is shown beside it.
Every side is warmed up (workers started and one task run) before its clock
starts; the clock stops when every result is back at the submitter. Beside
each comparison: the Redis server's CPU time per task (INFO cpu) while the
side ran (Celery / RQ: their timed map; mp: its whole run, host start and
warm-up included). RQ and
Celery run fewer tasks than mp (so the bench stays short); the ratio is of
tasks/s. Celery and RQ are imported by /usr/bin/python3 (Debian's packages),
not by the python3 running this script; they are installed here when missing
(apt-get, as root). Issue 12's goals: mp >= 10x Celery and >= 50x RQ.

The Celery and RQ sides run as `/usr/bin/python3 redis_pool.py --celery|--rq ...`
(this file), each printing one JSON line.
"""
import os
import sys

# This directory holds queue.py, pipe.py, ...: keep them from shadowing the
# standard modules (queue, ...) that Celery, kombu and RQ import.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

import json  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

SYSTEM_PYTHON = "/usr/bin/python3"
MP_TASKS = 20000
CELERY_TASKS = 2000
RQ_TASKS = 300          # default Worker: one fork per job
RQ_SIMPLE_TASKS = 1000  # SimpleWorker
GOAL_VS_CELERY = 10.0
GOAL_VS_RQ = 50.0
WORKER_START_TIMEOUT = 120  # seconds for a worker to run its first task


def quick():
    return os.environ.get("MP_BENCH_QUICK", "") not in ("", "0")


# ---- the Celery and RQ sides (run by /usr/bin/python3) ------------------------------

CELERY_APP = '''
import os
from celery import Celery
app = Celery("mpbench", broker=os.environ["MPBENCH_REDIS_URL"], backend=os.environ["MPBENCH_REDIS_URL"])
@app.task
def increment(x):
    return x + 1
'''

RQ_TASKS_MODULE = '''
def increment(x):
    return x + 1
'''


def server_cpu(url):
    """The Redis server's CPU time so far (INFO cpu), through redis-py."""
    from redis import Redis
    cpu = Redis.from_url(url).info("cpu")
    return cpu["used_cpu_user"] + cpu["used_cpu_sys"]


def start_workers(commands, workdir, url):
    """Starts the worker commands in their own session (so that stop_workers stops
    their children too), logging to workdir; returns the Popen objects."""
    env = dict(os.environ, PYTHONPATH=workdir, MPBENCH_REDIS_URL=url)
    procs = []
    for i, command in enumerate(commands):
        log = open(os.path.join(workdir, f"worker{i}.log"), "wb")
        procs.append(subprocess.Popen(command, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                      stderr=subprocess.STDOUT, start_new_session=True))
        log.close()
    return procs


def stop_workers(procs):
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        try:
            os.killpg(p.pid, signal.SIGKILL)  # a child left behind in the worker's session
        except ProcessLookupError:
            pass


def celery_side(url, n):
    workdir = tempfile.mkdtemp(prefix="mpbench-celery-")
    with open(os.path.join(workdir, "mpbench_celery_app.py"), "w") as f:
        f.write(CELERY_APP)
    os.environ["MPBENCH_REDIS_URL"] = url
    sys.path.insert(0, workdir)
    import mpbench_celery_app as tasks
    from celery import group
    workers = start_workers([[SYSTEM_PYTHON, "-m", "celery", "-A", "mpbench_celery_app", "worker", "-c", "2",
                              "-P", "prefork", "--loglevel=WARNING", "--without-gossip", "--without-mingle",
                              "--without-heartbeat", "-n", f"mpbench{os.getpid()}@localhost"]], workdir, url)
    try:
        assert tasks.increment.delay(1).get(timeout=WORKER_START_TIMEOUT) == 2  # warm up
        start, cpu = time.perf_counter(), server_cpu(url)
        results = group(tasks.increment.s(i) for i in range(n)).apply_async().get(timeout=600)
        elapsed, cpu = time.perf_counter() - start, server_cpu(url) - cpu
        assert results == [i + 1 for i in range(n)], "Celery returned wrong results"
    finally:
        stop_workers(workers)
        shutil.rmtree(workdir, ignore_errors=True)
    return {"tasks": n, "seconds": elapsed, "server_cpu": cpu}


def rq_side(url, n, worker_class):
    workdir = tempfile.mkdtemp(prefix="mpbench-rq-")
    with open(os.path.join(workdir, "mpbench_rq_tasks.py"), "w") as f:
        f.write(RQ_TASKS_MODULE)
    sys.path.insert(0, workdir)
    import mpbench_rq_tasks as tasks
    from redis import Redis
    from rq import Queue
    from rq.job import Job
    connection = Redis.from_url(url)
    queue_name = f"mpbench{os.getpid()}{worker_class.rsplit('.', 1)[-1]}"
    queue = Queue(queue_name, connection=connection)
    rq_main = "import sys; from rq.cli import main; sys.exit(main())"
    workers = start_workers([[SYSTEM_PYTHON, "-c", rq_main, "worker", "--url", url, "--worker-class", worker_class,
                              "--logging_level", "WARNING", "--disable-job-desc-logging", "-n",
                              f"{queue_name}-{i}", queue_name] for i in range(2)], workdir, url)

    def run(count):
        jobs = queue.enqueue_many([Queue.prepare_data(tasks.increment, (i,)) for i in range(count)])
        finished = queue.finished_job_registry
        failed = queue.failed_job_registry
        deadline = time.time() + 600
        while finished.count + failed.count < count:
            if time.time() > deadline:
                raise RuntimeError("RQ did not finish in time")
            time.sleep(0.005)
        fetched = Job.fetch_many([job.id for job in jobs], connection=connection)
        values = [job.result for job in fetched]
        for job in fetched:
            job.delete()  # leaves the registries empty for the next run
        return values

    try:
        warm = run(1)
        assert warm == [1], f"RQ warm-up job failed: {warm} (logs in {workdir})"
        start, cpu = time.perf_counter(), server_cpu(url)
        values = run(n)
        elapsed, cpu = time.perf_counter() - start, server_cpu(url) - cpu
        assert values == [i + 1 for i in range(n)], "RQ returned wrong results"
    finally:
        stop_workers(workers)
        shutil.rmtree(workdir, ignore_errors=True)
    return {"tasks": n, "seconds": elapsed, "server_cpu": cpu}


# ---- the comparison (run by any python3) ------------------------------------------

def have_python_packages():
    check = subprocess.run([SYSTEM_PYTHON, "-c", "import celery, rq"], capture_output=True)
    if check.returncode == 0:
        return True
    if os.geteuid() != 0:
        print("Celery / RQ missing: run as root, or apt-get install python3-celery python3-rq")
        return False
    print("installing Debian's python3-celery and python3-rq (apt-get)", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    installed = subprocess.run(["apt-get", "install", "-y", "-qq", "python3-celery", "python3-rq"], env=env,
                               stdout=subprocess.DEVNULL)
    if installed.returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, stdout=subprocess.DEVNULL)
        installed = subprocess.run(["apt-get", "install", "-y", "-qq", "python3-celery", "python3-rq"], env=env,
                                   stdout=subprocess.DEVNULL)
    return installed.returncode == 0


def python_side(url, *args):
    out = subprocess.run([SYSTEM_PYTHON, os.path.abspath(__file__), *args, url], capture_output=True, text=True)
    if out.returncode != 0:
        print(f"{args[0]} side failed:\n{out.stderr[-2000:]}")
        return None, None
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result["tasks"] / result["seconds"], result["server_cpu"] * 1e6 / result["tasks"]


def main():
    sys.path.append(os.path.join(_HERE, ".."))
    import mpbench

    build = sys.argv[1] if len(sys.argv) > 1 else "build/release"
    celery_tasks = mpbench.scaled(CELERY_TASKS, 20)
    rq_tasks = mpbench.scaled(RQ_TASKS, 10)
    rq_simple_tasks = mpbench.scaled(RQ_SIMPLE_TASKS, 10)
    mp_tasks = mpbench.scaled(MP_TASKS, 200)
    packages = have_python_packages()
    with mpbench.RedisServer() as server:
        env = dict(os.environ, MP_REDIS_URL=server.url, MP_REDIS_POOL_TASKS=str(mp_tasks))
        cpp, mp_cpu = {}, {}
        for hosts, processes in ((1, 2), (2, 1)):  # one run each: the server's CPU time per case
            cpu = server.cpu_seconds()
            out = subprocess.run([os.path.join(build, "bench", "redis_pool_bench"), "--benchmark_format=json",
                                  f"--benchmark_filter=/hosts:{hosts}/processes:{processes}/"],
                                 check=True, capture_output=True, text=True, env=env).stdout
            mp_cpu[hosts, processes] = (server.cpu_seconds() - cpu) * 1e6 / mp_tasks  # warm-up and start included
            cpp.update({b["run_name"]: b for b in json.loads(out)["benchmarks"]})
        celery = rq = rq_simple = (None, None)
        if packages:
            celery = python_side(server.url, "--celery", str(celery_tasks))
            rq = python_side(server.url, "--rq", str(rq_tasks), "rq.worker.Worker")
            rq_simple = python_side(server.url, "--rq", str(rq_simple_tasks), "rq.worker.SimpleWorker")

    def rate(hosts, processes):
        b = cpp.get(f"BM_RedisPoolMap/tasks:20000/hosts:{hosts}/processes:{processes}/iterations:1/manual_time")
        return None if b is None or b.get("error_occurred") else b["tasks_per_second"]

    table = mpbench.Table(f"Redis Pool: mp::redis::Pool.map ({mp_tasks} tasks) vs Celery 5 ({celery_tasks}) and "
                          f"RQ ({rq_tasks} / {rq_simple_tasks}), one redis-server, 2 worker processes each")
    one_host = rate(1, 2)
    table.row("map, 1 host x 2 processes vs Celery -c 2", one_host, celery[0], "task/s", False,
              ratio_goal=GOAL_VS_CELERY)
    table.row("  server CPU per task (mp vs Celery)", mp_cpu[1, 2], celery[1], "us", True)
    table.row("map, 1 host x 2 processes vs 2 RQ Workers", one_host, rq[0], "task/s", False, ratio_goal=GOAL_VS_RQ)
    table.row("  server CPU per task (mp vs RQ)", mp_cpu[1, 2], rq[1], "us", True)
    table.row("  vs 2 RQ SimpleWorkers (no fork per job)", one_host, rq_simple[0], "task/s", False)
    table.row("  server CPU per task (mp vs RQ SimpleWorker)", mp_cpu[1, 2], rq_simple[1], "us", True)
    table.row("map, 2 hosts x 1 process vs Celery -c 2", rate(2, 1), celery[0], "task/s", False)
    table.print()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--celery":
        print(json.dumps(celery_side(sys.argv[3], int(sys.argv[2]))))
    elif len(sys.argv) > 1 and sys.argv[1] == "--rq":
        print(json.dumps(rq_side(sys.argv[4], int(sys.argv[2]), sys.argv[3])))
    else:
        main()
