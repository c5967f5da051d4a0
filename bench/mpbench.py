"""Shared helpers for bench/compare/*.py (import with
sys.path.append(<bench dir>); `python3 -P` keeps the standard library first).

  condition()   "idle" or "busy": set by bench/run.sh (MP_BENCH_CONDITION), which
                runs every comparison twice, the second time with one busy-looping
                process per core started by itself.
  quick()       MP_BENCH_QUICK=1: a plumbing test, every benchmark shortened
                (figures meaningless); scaled(n) shrinks Python-side loop counts.
  gbench(path)  runs a Google Benchmark binary (JSON) and returns
                {name: record}, the median when repetitions were asked for.
  Table         the one table format: case, mp, Python, ratio, goal, met.
  ratio_verdict(ratio, goal)
                the goal column of a ratio row printed by hand (queue, pipe, pool).

Goals are the issues' goals, and the issues set them for an idle machine; issue
10 alone sets three for the busy one too (Queue small items >= 20x Python, every
round trip no slower than Python's, Pool apply_async >= 2x Python). So a goal
given as a plain number holds in the idle run only: the busy run names it as
"(idle goal ...)" and does not judge it. A goal for both is a dict
{"idle": x, "busy": y}.
"""
import json
import os
import subprocess


def condition():
    return os.environ.get("MP_BENCH_CONDITION", "idle")


def quick():
    return os.environ.get("MP_BENCH_QUICK", "") not in ("", "0")


def scaled(n, minimum=1):
    """n, or n/100 (at least `minimum`) in quick mode."""
    return max(minimum, n // 100) if quick() else n


# Parts of a Google Benchmark run name that are options, not arguments.
_OPTION_PARTS = {"iterations", "repeats", "min_time", "min_warmup_time", "threads"}


def gbench(binary, repetitions=1, extra=()):
    """{benchmark name: record}, the name with its arguments ("BM_X/4096",
    "BM_X/bytes:4096") but without Google Benchmark's option parts
    ("/iterations:3"); with repetitions > 1, the medians."""
    args = [binary, "--benchmark_format=json", *extra]
    if quick():
        args.append("--benchmark_min_time=0.01")
        repetitions = 1
    if repetitions > 1:
        args += [f"--benchmark_repetitions={repetitions}", "--benchmark_report_aggregates_only=true"]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    results = {}
    for b in json.loads(out)["benchmarks"]:
        if repetitions > 1 and b.get("aggregate_name") != "median":
            continue
        name = "/".join(part for part in b.get("run_name", b["name"]).split("/")
                        if part.split(":")[0] not in _OPTION_PARTS)
        results[name] = b
    return results


def ns(record):
    """A Google Benchmark record's real time in ns."""
    return record["real_time"] * {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}[record["time_unit"]]


def _goal_for(goal):
    """The goal in force now: a plain goal in the idle run only, a dict
    {"idle": x, "busy": y} by condition."""
    if isinstance(goal, dict):
        return goal.get(condition())
    return goal if condition() == "idle" else None


def _idle_goal(goal):
    """The idle goal a busy run names without judging it (None: there is none)."""
    return goal.get("idle") if isinstance(goal, dict) else goal


def ratio_verdict(ratio, goal=None):
    """The goal column of a row whose goal is a least ratio (plain or by
    condition, as for Table.row): e.g. ">= 20x: met"; in the busy run a row
    with an idle goal only says "(idle goal >= 20x)"."""
    now, idle = _goal_for(goal), _idle_goal(goal)
    if now is not None:
        return f">= {now:g}x: {'met' if ratio >= now else 'NOT met'}"
    if idle is not None:
        return f"(idle goal >= {idle:g}x)"
    return "(info)"


class Table:
    """Rows of mp against Python measured in the same run.

    row(case, mp, python, unit, lower_is_better, ratio_goal=None, mp_goal=None):
      ratio is how many times better mp is (python/mp for times, mp/python for
      rates); ratio_goal is the least acceptable ratio, mp_goal an absolute
      bound on mp's own figure (<= for times, >= for rates). Either may be a
      dict by condition. A row with no goal says "(info)".
    """

    def __init__(self, title):
        self.title = title
        self.rows = []

    def row(self, case, mp, python, unit, lower_is_better, ratio_goal=None, mp_goal=None, percent=False):
        """percent=True: the ratio (and its goal) printed as a percentage (mp as a share of a
        ceiling in the python column)."""
        ratio = None
        if mp is not None and python is not None and mp > 0 and python > 0:
            ratio = python / mp if lower_is_better else mp / python

        def texts(ratio_goal, mp_goal):
            goals = []
            if ratio_goal is not None:
                goals.append(f">= {ratio_goal * 100:g}%" if percent else f">= {ratio_goal:g}x")
            if mp_goal is not None:
                goals.append(f"{'<=' if lower_is_better else '>='} {mp_goal:g} {unit}")
            return ", ".join(goals)

        met = []
        now_ratio, now_mp = _goal_for(ratio_goal), _goal_for(mp_goal)
        if now_ratio is not None:
            met.append(ratio is not None and ratio >= now_ratio)
        if now_mp is not None:
            met.append(mp is not None and (mp <= now_mp if lower_is_better else mp >= now_mp))
        goal_text = texts(now_ratio, now_mp)
        verdict = ("met" if all(met) else "NOT MET") if met else "(info)"
        idle_text = texts(_idle_goal(ratio_goal), _idle_goal(mp_goal))
        if not met and idle_text:  # the busy run, a row with idle goals only: named, not judged
            goal_text, verdict = f"idle: {idle_text}", "(idle goal)"
        self.rows.append((case, mp, python, unit, ratio, goal_text, verdict, percent))

    def print(self):
        print(f"{self.title} [{condition()}{', QUICK: figures meaningless' if quick() else ''}]")
        header = f"{'case':46} {'mp':>12} {'python':>12} {'unit':6} {'ratio':>8}  {'goal':22} met"
        print(header)
        print("-" * len(header))

        def cell(v):
            return f"{v:12.2f}" if v is not None else f"{'-':>12}"

        for case, mp, python, unit, ratio, goal, verdict, percent in self.rows:
            if ratio is None:
                ratio_text = f"{'-':>8}"
            elif percent:
                ratio_text = f"{ratio * 100:7.1f}%"
            else:
                ratio_text = f"{ratio:7.1f}x"
            print(f"{case:46} {cell(mp)} {cell(python)} {unit:6} {ratio_text}  {goal:22} {verdict}")


def free_port():
    """A free TCP port on 127.0.0.1 (for a throwaway server)."""
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class RedisServer:
    """A throwaway redis-server: 127.0.0.1, a free port, a temporary directory,
    AOF with appendfsync `fsync`; stop() stops it by its pid and removes the
    directory. Use as a context manager. url is redis://127.0.0.1:port."""

    def __init__(self, fsync="everysec"):
        import tempfile
        import time
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        self.dir = tempfile.mkdtemp(prefix="mp-redis-bench-")  # absolute (redis chdirs into it)
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--protected-mode", "yes",
             "--save", "", "--appendonly", "yes", "--appendfsync", fsync, "--dir", self.dir,
             "--logfile", os.path.join(self.dir, "redis.log"), "--daemonize", "no"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 20
        while not self.ping():
            if time.time() > deadline or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def ping(self):
        import socket
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")  # a loading server answers -LOADING
        except OSError:
            return False

    def command(self, *args):
        """redis-cli's output of one command on this server (e.g. "INFO", "commandstats")."""
        return subprocess.run(["redis-cli", "-p", str(self.port), *args], check=True, capture_output=True,
                              text=True).stdout

    def info(self, section):
        """INFO section as {field: value} (numbers as float where they parse)."""
        fields = {}
        for line in self.command("INFO", section).splitlines():
            if ":" not in line or line.startswith("#"):
                continue
            key, value = line.strip().split(":", 1)
            try:
                fields[key] = float(value)
            except ValueError:
                fields[key] = value
        return fields

    def cpu_seconds(self):
        """The server's CPU time so far (user + system), from INFO cpu."""
        cpu = self.info("cpu")
        return cpu["used_cpu_user"] + cpu["used_cpu_sys"]

    def command_calls(self):
        """Commands the server ran so far (FCALL and the commands inside it each count)."""
        total = 0
        for value in self.info("commandstats").values():
            total += int(value.split("calls=", 1)[1].split(",", 1)[0]) if isinstance(value, str) else 0
        return total

    def stop(self):
        import shutil
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
