// Process start + join: mp::Process against the raw system calls it wraps.
//
//   BM_RawForkWaitpid     fork(); child _exit(0); parent waitpid()  (the floor)
//   BM_ProcessStartJoin   mp::Process p(f); p.start(); p.join()     (flush, fork,
//                         pidfd_open, child epilogue, poll + waitid, close)
//   BM_DaemonStartJoin    the same for a daemon (adds the death-signal prctl)
//
// bench/compare/process.py runs this with --benchmark_format=json beside
// Python's multiprocessing.get_context('fork').Process and prints the ratios.
// Goal: mp <= 1.5x raw fork. Wall time is what counts: most of the work is in
// the kernel and in the child.
#include <sys/wait.h>
#include <unistd.h>

#include <benchmark/benchmark.h>

#include <cerrno>
#include <cstdlib>

#include "mp/process.hpp"

namespace {

void nothing() {}

void BM_RawForkWaitpid(benchmark::State& state) {
  for (auto _ : state) {
    pid_t pid = ::fork();
    if (pid < 0) std::abort();
    if (pid == 0) ::_exit(0);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    benchmark::DoNotOptimize(status);
  }
}
BENCHMARK(BM_RawForkWaitpid)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_ProcessStartJoin(benchmark::State& state) {
  for (auto _ : state) {
    mp::Process p(nothing);
    p.start();
    p.join();
    if (p.exitcode() != 0) state.SkipWithError("child failed");
  }
}
BENCHMARK(BM_ProcessStartJoin)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_DaemonStartJoin(benchmark::State& state) {
  for (auto _ : state) {
    mp::Process p(nothing);
    p.set_daemon(true);
    p.start();
    p.join();
    if (p.exitcode() != 0) state.SkipWithError("child failed");
  }
}
BENCHMARK(BM_DaemonStartJoin)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
