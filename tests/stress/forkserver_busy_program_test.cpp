// Stress (issue 11 goal): 50 forkserver children started while 8 other
// threads hold locks and allocate all the time. Under fork a child could
// inherit a lock one of them held and hang; under forkserver every child is
// forked by the single-threaded server, so each one runs, allocates, takes a
// lock of its own copy of the program, and exits. A hang here is caught by
// ctest's timeout.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "mp/context.hpp"
#include "mp/process.hpp"

namespace {

std::mutex g_shared_lock;

// The child allocates and takes the lock the parent's threads keep taking.
void allocate_and_lock(int n) {
  std::vector<std::unique_ptr<std::string>> blocks;
  for (int i = 0; i < 1000; ++i) blocks.push_back(std::make_unique<std::string>(256, 'x'));
  std::lock_guard lock(g_shared_lock);
  mp::exit(static_cast<int>(blocks.size() % 7) + n % 2);
}

TEST(ForkserverStress, FiftyChildrenWhileEightBusyWorkersHoldLocksAndAllocate) {
  std::atomic<bool> stop{false};  // relaxed: only ends the loops
  std::vector<std::thread> busy;
  for (int t = 0; t < 8; ++t)
    busy.emplace_back([&stop] {
      while (!stop.load(std::memory_order_relaxed)) {
        std::lock_guard lock(g_shared_lock);
        for (int i = 0; i < 20; ++i) auto block = std::make_unique<std::string>(1024, 'y');
      }
    });
  std::vector<mp::Process> children;
  for (int n = 0; n < 50; ++n) children.emplace_back(mp::StartMethod::forkserver, allocate_and_lock, n);
  for (auto& child : children) child.start();
  for (int n = 0; n < 50; ++n) {
    children[static_cast<std::size_t>(n)].join();
    EXPECT_EQ(children[static_cast<std::size_t>(n)].exitcode(), 1000 % 7 + n % 2) << n;
  }
  stop.store(true, std::memory_order_relaxed);
  for (auto& thread : busy) thread.join();
  children.clear();
  mp::detail::stop_forkserver();  // leave nothing behind for the leak check
}

}  // namespace
