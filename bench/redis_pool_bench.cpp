// bench/redis_pool_bench — mp::redis::Pool map throughput against a running server.
//
// The server comes from $MP_REDIS_URL (bench/compare/redis_pool.py starts a
// throwaway one and sets it); without it every benchmark is skipped.
//   BM_RedisPoolMap/N/H/P   map of N trivial tasks (int -> int) over H worker hosts
//                           (mp::redis::serve, each a process here) of P local
//                           worker processes each; tasks/s. /20000/1/2 is issue 12's
//                           case: one host, 2 worker processes (Celery's `worker -c 2`).
// The hosts are forked before the submitter's Pool exists (it runs a thread),
// warmed up with a short map, and stopped with SIGTERM after; the code between
// fork and _exit is in this file (spawn()).
#include <benchmark/benchmark.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include "mp/redis/pool.hpp"

namespace bench_tasks {
// The trivial task: what Celery's and RQ's sides run too (return x + 1).
inline long long increment(long long x) { return x + 1; }
}  // namespace bench_tasks

MP_TASK(bench_tasks::increment);

namespace {

const char* server_url() { return std::getenv("MP_REDIS_URL"); }

std::string unique_name(const char* what) {
  return std::string(what) + "-" + std::to_string(::getpid()) + "-" +
         std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
}

pid_t spawn(const std::function<int()>& body) {
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    int code = 1;
    try {
      code = body();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "bench child: %s\n", e.what());
    }
    std::fflush(nullptr);
    ::_exit(code);
  }
  return pid;
}

bool stop_and_reap(const std::vector<pid_t>& pids) {
  for (pid_t pid : pids) ::kill(pid, SIGTERM);
  bool ok = true;
  for (pid_t pid : pids) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    ok = ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }
  return ok;
}

void BM_RedisPoolMap(benchmark::State& state) {
  const char* url = server_url();
  if (url == nullptr) {
    state.SkipWithError("set MP_REDIS_URL (bench/compare/redis_pool.py does)");
    return;
  }
  // MP_REDIS_POOL_TASKS: fewer tasks (bench/compare/redis_pool.py's quick mode).
  const char* override_tasks = std::getenv("MP_REDIS_POOL_TASKS");
  const auto tasks =
      static_cast<std::size_t>(override_tasks != nullptr ? std::atoll(override_tasks) : state.range(0));
  const int hosts = static_cast<int>(state.range(1));
  const int processes = static_cast<int>(state.range(2));
  std::vector<long long> items(tasks);
  std::iota(items.begin(), items.end(), 0LL);
  for (auto _ : state) {
    const std::string name = unique_name("benchpool");
    std::vector<pid_t> workers;
    for (int h = 0; h < hosts; ++h) {
      workers.push_back(spawn([&] {
        mp::redis::ServeOptions options;
        options.processes = processes;
        return mp::redis::serve(url, name, options);
      }));
    }
    bool ok = true;
    double elapsed = 0;
    {
      mp::redis::Pool pool(url, name);
      // Warm up: every host has started its local pool and is taking tasks.
      (void)pool.map(&bench_tasks::increment,
                     std::vector<long long>(static_cast<std::size_t>(20 * hosts), 1));
      auto start = std::chrono::steady_clock::now();
      std::vector<long long> out = pool.map(&bench_tasks::increment, items);
      elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      for (std::size_t i = 0; i < tasks; ++i) ok = ok && out[i] == items[i] + 1;
    }
    ok = stop_and_reap(workers) && ok;
    state.SetIterationTime(elapsed);
    if (!ok) {
      state.SkipWithError("a wrong result, or a worker host failed");
      return;
    }
  }
  state.counters["tasks_per_second"] = benchmark::Counter(
      static_cast<double>(tasks) * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.SetItemsProcessed(static_cast<std::int64_t>(tasks) * state.iterations());
}
BENCHMARK(BM_RedisPoolMap)
    ->ArgNames({"tasks", "hosts", "processes"})
    ->Args({20000, 1, 2})
    ->Args({20000, 2, 1})
    ->UseManualTime()
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
