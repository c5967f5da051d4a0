// Helper for the fork-with-threads warning test. Usage: fork_warning MODE
//   threads:  a thread runs while two processes are started under the default
//             method -> exactly one warning naming forkserver;
//   explicit: the same after set_start_method(fork) -> no warning;
//   quiet:    no other thread -> no warning.
#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "mp/context.hpp"
#include "mp/process.hpp"

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "threads";
  if (mode == "explicit") mp::set_start_method(mp::StartMethod::fork);
  std::atomic<bool> stop{false};  // relaxed: only ends the loop
  std::thread other;
  if (mode != "quiet")
    other = std::thread([&] {
      while (!stop.load(std::memory_order_relaxed)) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    });
  for (int i = 0; i < 2; ++i) {
    mp::Process p([] {});
    p.start();
    p.join();
  }
  stop.store(true, std::memory_order_relaxed);
  if (other.joinable()) other.join();
  return 0;
}
