// process_forkserver_threads — starting processes safely from a program that
// runs threads (issue 11). A logging thread holds its mutex while it formats,
// and other threads allocate all the time; fork() from such a program copies
// one thread and every lock the others held, so a forked child that logs or
// allocates may hang forever. With the forkserver start method every child is
// forked by a single-threaded server that mp::init started from the quiet
// first line of main(), so nothing the threads do can be locked in it.
//
// Python: multiprocessing.set_start_method('forkserver'); Process(target=f, args=(n,)).
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "mp/context.hpp"
#include "mp/process.hpp"

namespace {

std::mutex g_log_mutex;
std::atomic<bool> g_stop{false};  // relaxed: only ends the loops

// The target travels to the server's child: a plain function and an int.
void sum_of_squares(int n) {
  long total = 0;
  for (int i = 1; i <= n; ++i) total += static_cast<long>(i) * i;
  std::printf("worker %s (n=%d): sum of squares = %ld\n", mp::current_process().name().c_str(), n, total);
  mp::exit(static_cast<int>(total % 256));
}

}  // namespace

int main(int argc, char** argv) {
  mp::init(argc, argv);  // first line: starts the fork server from a quiet state
  mp::set_start_method(mp::StartMethod::forkserver);

  std::vector<std::thread> busy;
  busy.emplace_back([] {  // a logger that holds its lock while it works
    while (!g_stop.load(std::memory_order_relaxed)) {
      std::lock_guard lock(g_log_mutex);
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  for (int t = 0; t < 3; ++t)
    busy.emplace_back([] {  // threads that allocate all the time
      while (!g_stop.load(std::memory_order_relaxed)) {
        for (int i = 0; i < 100; ++i) auto block = std::make_unique<std::string>(4096, 'x');
        std::this_thread::sleep_for(std::chrono::microseconds(100));
      }
    });

  std::vector<mp::Process> workers;
  for (int n = 1; n <= 8; ++n) workers.emplace_back(sum_of_squares, n);
  for (auto& worker : workers) worker.start();
  int finished = 0;
  for (auto& worker : workers) {
    worker.join();
    if (worker.exitcode().has_value()) ++finished;
  }
  g_stop.store(true, std::memory_order_relaxed);
  for (auto& thread : busy) thread.join();
  std::printf("%d workers finished under %s while %zu threads ran\n", finished,
              mp::to_string(mp::get_start_method()), busy.size());
  return finished == 8 ? 0 : 1;
}
