// Tests for mp::Value and mp::Array. SharedValueThreads run under
// ThreadSanitizer.
#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <numeric>
#include <thread>
#include <vector>

#include "mp/shared.hpp"
#include "support/child.hpp"

using namespace std::chrono_literals;
using mp::test::fork_child;
using mp::test::wait_child;

namespace {

struct alignas(64) Wide {
  double x;
  int y;
};

TEST(SharedValue, ValueHoldsItsInitialValue) {
  mp::Value<int> zero;
  EXPECT_EQ(zero.value(), 0);
  mp::Value<double> half(0.5);
  EXPECT_EQ(half.value(), 0.5);
  mp::Value<Wide> wide(Wide{1.5, 2});
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(&wide.value()) % 64, 0u);
  EXPECT_EQ(wide.value().y, 2);
}

TEST(SharedValue, CopiesShareTheValueAndTheLock) {
  mp::Value<long> value(1);
  mp::Value<long> copy = value;
  copy.value() = 5;
  EXPECT_EQ(value.value(), 5);
  mp::Lock lock = value.get_lock();
  lock.acquire();
  EXPECT_FALSE(copy.get_lock().try_lock());
  lock.release();
  EXPECT_TRUE(copy.get_lock().try_lock());
  copy.get_lock().release();
}

TEST(SharedValue, ArrayConstructionAndIteration) {
  mp::Array<int> filled(4, 7);
  EXPECT_EQ(filled.size(), 4u);
  EXPECT_EQ(std::accumulate(filled.begin(), filled.end(), 0), 28);
  mp::Array<double> listed{1.0, 2.0, 3.5};
  EXPECT_EQ(listed.size(), 3u);
  EXPECT_EQ(listed[2], 3.5);
  mp::Array<char> empty(0);
  EXPECT_EQ(empty.size(), 0u);
  EXPECT_EQ(empty.begin(), empty.end());
  const mp::Array<int>& view = filled;
  EXPECT_EQ(view[3], 7);
}

TEST(SharedValue, ValueWrittenByAChildIsSeenByTheParent) {
  mp::Value<int> value(1);
  mp::Array<long> array(3);
  pid_t child = fork_child([&] {
    value.value() = 42;
    array[2] = 9;
    return 0;
  });
  EXPECT_EQ(wait_child(child), 0);
  EXPECT_EQ(value.value(), 42);
  EXPECT_EQ(array[2], 9);
}

TEST(SharedValue, ProcessesIncrementUnderGetLock) {
  mp::Value<long> counter(0);
  mp::Array<int> slots(4, 0);
  std::vector<pid_t> children;
  for (int c = 0; c < 4; ++c)
    children.push_back(fork_child([&] {
      for (int i = 0; i < 1000; ++i) {
        {
          std::lock_guard hold(counter.get_lock());
          ++counter.value();
        }
        std::lock_guard hold(slots.get_lock());
        for (int& slot : slots) ++slot;
      }
      return 0;
    }));
  for (pid_t pid : children) EXPECT_EQ(wait_child(pid), 0);
  EXPECT_EQ(counter.value(), 4000);
  for (int slot : slots) EXPECT_EQ(slot, 4000);
}

TEST(SharedValueThreads, ThreadsIncrementUnderGetLock) {
  mp::Value<long> counter(0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([counter]() mutable {
      mp::Lock lock = counter.get_lock();
      for (int i = 0; i < 5000; ++i) {
        std::lock_guard hold(lock);
        ++counter.value();
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(counter.value(), 20000);
}

}  // namespace
