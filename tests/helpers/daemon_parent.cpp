// Helper for the daemon fault test: starts daemon children (some from the main
// thread, one from a thread that has exited by then), prints "daemon <pid>" for
// each and "ready", then waits to be SIGKILLed. The test checks that every
// daemon dies with this process.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "mp/process.hpp"

namespace {
void sleep_forever() {
  for (;;) ::pause();
}
}  // namespace

int main(int argc, char** argv) {
  const int from_main = argc > 1 ? std::atoi(argv[1]) : 3;
  std::vector<std::unique_ptr<mp::Process>> daemons;
  for (int i = 0; i < from_main; ++i) {
    daemons.push_back(std::make_unique<mp::Process>(sleep_forever));
    daemons.back()->set_daemon(true);
    daemons.back()->start();
  }
  // One started from a short-lived thread: its death signal must not fire when
  // that thread ends, only when this process dies.
  daemons.push_back(std::make_unique<mp::Process>(sleep_forever));
  daemons.back()->set_daemon(true);
  pid_t starter_tid = 0;
  std::thread([&daemons, &starter_tid] {
    starter_tid = ::gettid();
    daemons.back()->start();
  }).join();
  // The kernel sends the death signal once the thread is fully gone.
  std::string task = "/proc/self/task/" + std::to_string(starter_tid);
  while (::access(task.c_str(), F_OK) == 0) std::this_thread::yield();
  for (auto& d : daemons)
    std::printf("daemon %d %s\n", static_cast<int>(d->pid()), d->is_alive() ? "alive" : "dead");
  std::printf("ready\n");
  std::fflush(stdout);
  sleep_forever();
}
