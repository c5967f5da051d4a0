// Lock benchmarks (bench/compare/lock.py runs this with Python beside it).
//
//   BM_LockAcquireRelease      mp::Lock acquire()+release(), uncontended (goal <= 15 ns)
//   BM_LockGuard               the same through std::lock_guard
//   BM_RLockAcquireRelease     mp::RLock, first level
//   BM_SemaphoreAcquireRelease mp::Semaphore(1)
//   BM_RawRobustMutex          a bare process-shared robust pthread mutex: the floor under mp::Lock
//   BM_RawPlainSharedMutex     a bare process-shared pthread mutex, not robust: what robustness costs
//   BM_TwoProcessCounter       2 processes each add 1 to a shared counter under one
//                              mp::Lock, 1M times each; counter ns_per_increment is
//                              wall time / total increments (goal <= 30 ns)
#include <benchmark/benchmark.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "mp/lock.hpp"
#include "mp/rlock.hpp"
#include "mp/semaphore.hpp"
#include "mp/shared.hpp"

namespace {

void BM_LockAcquireRelease(benchmark::State& state) {
  mp::Lock lock;
  for (auto _ : state) {
    lock.acquire();
    lock.release();
  }
}
BENCHMARK(BM_LockAcquireRelease);

void BM_LockGuard(benchmark::State& state) {
  mp::Lock lock;
  for (auto _ : state) {
    std::lock_guard hold(lock);
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_LockGuard);

void BM_RLockAcquireRelease(benchmark::State& state) {
  mp::RLock lock;
  for (auto _ : state) {
    lock.acquire();
    lock.release();
  }
}
BENCHMARK(BM_RLockAcquireRelease);

void BM_SemaphoreAcquireRelease(benchmark::State& state) {
  mp::Semaphore sem(1);
  for (auto _ : state) {
    sem.acquire();
    sem.release();
  }
}
BENCHMARK(BM_SemaphoreAcquireRelease);

void bare_mutex(benchmark::State& state, bool robust) {
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  if (robust) pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_t mutex;
  pthread_mutex_init(&mutex, &attr);
  for (auto _ : state) {
    pthread_mutex_lock(&mutex);
    pthread_mutex_unlock(&mutex);
  }
  pthread_mutex_destroy(&mutex);
  pthread_mutexattr_destroy(&attr);
}
void BM_RawRobustMutex(benchmark::State& state) { bare_mutex(state, true); }
void BM_RawPlainSharedMutex(benchmark::State& state) { bare_mutex(state, false); }
BENCHMARK(BM_RawRobustMutex);
BENCHMARK(BM_RawPlainSharedMutex);

// Two processes, one lock, one counter. Code between fork() and _exit() is
// the loop in the child below: no allocation, no exceptions escaping.
void BM_TwoProcessCounter(benchmark::State& state) {
  // MP_BENCH_QUICK (bench/run.sh's plumbing test): a token run.
  const long kPerProcess = std::getenv("MP_BENCH_QUICK") != nullptr ? 10'000 : 1'000'000;
  double seconds = 0;
  long total = 0;
  for (auto _ : state) {
    mp::Value<long> counter(0);
    mp::Lock& lock = counter.get_lock();
    std::fflush(nullptr);
    auto start = std::chrono::steady_clock::now();
    pid_t child = ::fork();
    if (child == 0) {
      for (long i = 0; i < kPerProcess; ++i) {
        lock.acquire();
        counter.value() += 1;
        lock.release();
      }
      ::_exit(0);
    }
    for (long i = 0; i < kPerProcess; ++i) {
      lock.acquire();
      counter.value() += 1;
      lock.release();
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    total += 2 * kPerProcess;
    if (counter.value() != 2 * kPerProcess) state.SkipWithError("increments were lost");
  }
  state.counters["ns_per_increment"] = seconds * 1e9 / static_cast<double>(total);
}
BENCHMARK(BM_TwoProcessCounter)->Iterations(3)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
