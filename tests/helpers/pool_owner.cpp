// pool_owner: makes a Pool(N) (N = argv[1], default 3), makes sure every
// worker has started, prints "ready <pid>" and waits to be killed. The fault
// tests SIGKILL it and check that no worker (nor the zygote) survives.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <set>
#include <vector>

#include "mp/pool.hpp"

namespace {
int pid_after_nap(int) {
  ::usleep(20'000);  // long enough that every worker takes one
  return static_cast<int>(::getpid());
}
}  // namespace

int main(int argc, char** argv) {
  const int processes = argc > 1 ? std::atoi(argv[1]) : 3;
  mp::Pool pool(processes);
  std::set<int> pids;
  for (int round = 0; round < 20 && static_cast<int>(pids.size()) < processes; ++round) {
    for (int pid : pool.map(pid_after_nap, std::vector<int>(static_cast<std::size_t>(processes) * 2, 0), 1)) {
      pids.insert(pid);
    }
  }
  std::printf("ready %d workers:", static_cast<int>(::getpid()));
  for (int pid : pids) std::printf(" %d", pid);
  std::printf("\n");
  std::fflush(stdout);
  for (;;) ::pause();
}
