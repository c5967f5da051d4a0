// Process start + join: mp::Process against the raw system calls it wraps.
//
//   BM_RawForkWaitpid     fork(); child _exit(0); parent waitpid()  (the floor)
//   BM_ProcessStartJoin   mp::Process p(f); p.start(); p.join()     (flush, fork,
//                         pidfd_open, child epilogue, poll + waitid, close)
//   BM_DaemonStartJoin    the same for a daemon (adds the death-signal prctl)
//   BM_ForkserverStartJoin  mp::Process(StartMethod::forkserver, f): a request to
//                         the fork server, its fork, the pidfd back, the status
//                         pipe (goal: <= 2x BM_RawForkWaitpid)
//   BM_RawPosixSpawnEmpty posix_spawn of this program with an empty main + waitpid
//   BM_SpawnStartJoin     mp::Process(StartMethod::spawn, f): fork + exec of this
//                         program, init() runs f (goal: <= 1.5x BM_RawPosixSpawnEmpty)
//
// bench/compare/process.py runs this with --benchmark_format=json beside
// Python's multiprocessing.get_context('fork').Process and prints the ratios.
// Goal: mp <= 1.5x raw fork. Wall time is what counts: most of the work is in
// the kernel and in the child.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <benchmark/benchmark.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "mp/context.hpp"
#include "mp/process.hpp"

extern char** environ;

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

void BM_ForkserverStartJoin(benchmark::State& state) {
  for (auto _ : state) {
    mp::Process p(mp::StartMethod::forkserver, nothing);
    p.start();
    p.join();
    if (p.exitcode() != 0) state.SkipWithError("child failed");
  }
}
BENCHMARK(BM_ForkserverStartJoin)->Unit(benchmark::kMicrosecond)->UseRealTime();

constexpr const char* kEmptyMain = "--mp-empty-main";

void BM_RawPosixSpawnEmpty(benchmark::State& state) {
  char exe[] = "/proc/self/exe";
  char empty[32];
  std::strcpy(empty, kEmptyMain);
  char* argv[] = {exe, empty, nullptr};
  for (auto _ : state) {
    pid_t pid = 0;
    if (::posix_spawn(&pid, exe, nullptr, nullptr, argv, environ) != 0) std::abort();
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    benchmark::DoNotOptimize(status);
  }
}
BENCHMARK(BM_RawPosixSpawnEmpty)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_SpawnStartJoin(benchmark::State& state) {
  for (auto _ : state) {
    mp::Process p(mp::StartMethod::spawn, nothing);
    p.start();
    p.join();
    if (p.exitcode() != 0) state.SkipWithError("child failed");
  }
}
BENCHMARK(BM_SpawnStartJoin)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], kEmptyMain) == 0) return 0;  // BM_RawPosixSpawnEmpty's child
  mp::init(argc, argv);  // a spawn child runs its target here and never returns
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
