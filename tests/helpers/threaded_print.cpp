// Helper for process_output_test (issue 9, defect 4): a thread prints numbered
// lines to stdout (a pipe, so fully buffered) while the main thread starts and
// joins processes that print nothing. Every line must appear exactly once: a
// child must discard the stdio buffers it inherited (other threads may have
// refilled them after the parent's pre-fork flush), never flush them.
// Usage: threaded_print [processes]. Prints "printed N" last.
#include <time.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "mp/process.hpp"

int main(int argc, char** argv) {
  const int processes = argc > 1 ? std::atoi(argv[1]) : 100;
  std::atomic<bool> stop{false};  // relaxed: only ends the loop, orders nothing
  long printed = 0;
  std::thread printer([&] {
    const timespec pause{0, 20'000};  // bounds the volume (about 50,000 lines/s at most)
    while (!stop.load(std::memory_order_relaxed)) {
      std::printf("line %ld\n", printed++);
      ::nanosleep(&pause, nullptr);
    }
  });
  int failed = 0;
  for (int i = 0; i < processes; ++i) {
    mp::Process child([] {});
    child.start();
    child.join();
    if (child.exitcode() != 0) ++failed;
  }
  stop.store(true, std::memory_order_relaxed);
  printer.join();  // makes `printed` visible here
  std::printf("printed %ld\n", printed);
  return failed == 0 ? 0 : 1;
}
