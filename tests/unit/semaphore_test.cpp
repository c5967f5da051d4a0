// Tests for mp::Semaphore and mp::BoundedSemaphore. SemaphoreThreads run
// under ThreadSanitizer.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "mp/errors.hpp"
#include "mp/semaphore.hpp"
#include "mp/shared.hpp"
#include "support/child.hpp"

using namespace std::chrono_literals;
using mp::test::fork_child;
using mp::test::wait_child;

namespace {

TEST(Semaphore, NegativeInitialValueIsValueError) {
  EXPECT_THROW(mp::Semaphore(-1), mp::ValueError);
  EXPECT_THROW(mp::BoundedSemaphore(-3), mp::ValueError);
  EXPECT_NO_THROW(mp::Semaphore(0));
}

TEST(Semaphore, CountsTokens) {
  mp::Semaphore sem(2);
  EXPECT_EQ(sem.get_value(), 2);
  sem.acquire();
  EXPECT_EQ(sem.get_value(), 1);
  EXPECT_TRUE(sem.acquire(false));
  EXPECT_EQ(sem.get_value(), 0);
  EXPECT_FALSE(sem.acquire(false));
  EXPECT_FALSE(sem.acquire(5ms));
  EXPECT_FALSE(sem.try_lock_for(1ms));
  sem.release();
  sem.release();
  sem.release();  // an unbounded semaphore may go above its initial value
  EXPECT_EQ(sem.get_value(), 3);
  {
    std::lock_guard hold(sem);
    EXPECT_EQ(sem.get_value(), 2);
  }
  EXPECT_EQ(sem.get_value(), 3);
}

TEST(Semaphore, BoundedSemaphoreRefusesReleaseAboveItsInitialValue) {
  mp::BoundedSemaphore sem(2);
  EXPECT_THROW(sem.release(), mp::ValueError);
  EXPECT_EQ(sem.get_value(), 2);
  sem.acquire();
  sem.release();
  EXPECT_THROW(sem.release(), mp::ValueError);
  EXPECT_EQ(sem.get_value(), 2);
}

TEST(SemaphoreThreads, NeverMoreHoldersThanTokens) {
  mp::Semaphore sem(2);
  std::atomic<int> inside{0};
  std::atomic<int> most{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        std::lock_guard hold(sem);
        int now = ++inside;
        int seen = most.load();
        while (now > seen && !most.compare_exchange_weak(seen, now)) {
        }
        --inside;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_LE(most.load(), 2);
  EXPECT_EQ(sem.get_value(), 2);
}

TEST(SemaphoreThreads, ReleaseHandsDataToTheWaiter) {
  mp::Semaphore items(0);
  std::vector<int> box;  // written before release(), read after acquire()
  std::thread consumer([&] {
    for (int i = 0; i < 1000; ++i) items.acquire();
    EXPECT_EQ(box.size(), 1000u);
  });
  std::thread producer([&] {
    for (int i = 0; i < 1000; ++i) {
      if (i == 999) box.resize(1000);  // published by the last release
      items.release();
    }
  });
  producer.join();
  consumer.join();
  EXPECT_EQ(items.get_value(), 0);
}

TEST(Semaphore, TokensCrossProcesses) {
  mp::Semaphore items(0);
  pid_t child = fork_child([&] {
    for (int i = 0; i < 100; ++i) items.release();
    return 0;
  });
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(items.acquire(20s));
  EXPECT_EQ(wait_child(child), 0);
  EXPECT_EQ(items.get_value(), 0);
}

TEST(Semaphore, ChildBlockedInAcquireIsWokenByParent) {
  mp::Semaphore sem(0);
  mp::Value<int> got(0);
  pid_t child = fork_child([&] {
    sem.acquire();
    std::atomic_ref<int>(got.value()).store(1);
    return 0;
  });
  std::this_thread::sleep_for(10ms);
  EXPECT_EQ(std::atomic_ref<int>(got.value()).load(), 0);
  sem.release();
  EXPECT_EQ(wait_child(child), 0);
  EXPECT_EQ(got.value(), 1);
}

TEST(Semaphore, WaiterKilledMidWaitDoesNotStrandTokens) {
  mp::Semaphore sem(0);
  pid_t child = fork_child([&] {
    sem.acquire();
    return 0;
  });
  std::this_thread::sleep_for(20ms);  // most likely asleep in futex_wait by now
  EXPECT_EQ(mp::test::kill_child(child), -SIGKILL);
  std::thread waiter([&] { EXPECT_TRUE(sem.acquire(20s)); });
  sem.release();
  waiter.join();
  EXPECT_EQ(sem.get_value(), 0);
}

}  // namespace
