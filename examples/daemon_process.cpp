// daemon_process — a daemon child dies with its parent, as in
//
//   d = Process(target=heartbeat, daemon=True); d.start()
//   worker = Process(target=work); worker.start(); worker.join()
//   # main ends: the daemon is terminated, never joined
//
// mp's exit hook terminates running daemons when main returns (and the kernel
// kills them if the parent dies abruptly, even by SIGKILL).
#include <unistd.h>

#include <cstdio>

#include "mp/process.hpp"

void heartbeat() {
  for (int beat = 1;; ++beat) {
    std::printf("heartbeat %d\n", beat);
    std::fflush(stdout);
    ::usleep(20000);
  }
}

void work() {
  ::usleep(100000);
  std::printf("worker done\n");
}

int main() {
  static mp::Process daemon(heartbeat);  // outlives main: the exit hook ends it
  daemon.set_daemon(true);
  daemon.start();

  mp::Process worker(work);
  worker.start();
  worker.join();

  std::printf("main exiting; daemon alive: %s, daemon flag: %s\n", daemon.is_alive() ? "yes" : "no",
              daemon.daemon() ? "true" : "false");
  return 0;  // the exit hook sends SIGTERM to the daemon and reaps it
}
