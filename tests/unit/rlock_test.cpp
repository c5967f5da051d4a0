// Tests for mp::RLock: re-entrance, ownership by process + thread, death of
// the holder. RLockThreads run under ThreadSanitizer.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "mp/errors.hpp"
#include "mp/rlock.hpp"
#include "mp/shared.hpp"
#include "support/child.hpp"

using namespace std::chrono_literals;
using mp::test::fork_child;
using mp::test::wait_child;

namespace {

TEST(RLock, ReentrantForTheHolder) {
  mp::RLock lock;
  lock.acquire();
  EXPECT_TRUE(lock.acquire(false));
  EXPECT_TRUE(lock.acquire(1s));
  { std::lock_guard again(lock); }
  lock.release();
  lock.release();
  lock.release();
  EXPECT_THROW(lock.release(), mp::ValueError);  // released more than acquired
}

TEST(RLock, ReleasingAnUnheldRLockIsValueError) {
  mp::RLock lock;
  EXPECT_THROW(lock.release(), mp::ValueError);
}

TEST(RLockThreads, OtherThreadWaitsUntilEveryLevelIsReleased) {
  mp::RLock lock;
  lock.acquire();
  lock.acquire();
  auto try_from_other_thread = [&] {
    bool got = false;
    std::thread other([&] {
      got = lock.try_lock();
      if (got) lock.release();
    });
    other.join();
    return got;
  };
  EXPECT_FALSE(try_from_other_thread());
  lock.release();
  EXPECT_FALSE(try_from_other_thread());  // one level still held
  lock.release();
  EXPECT_TRUE(try_from_other_thread());
}

TEST(RLockThreads, NonOwnerThreadReleaseIsValueError) {
  mp::RLock lock;
  lock.acquire();
  std::thread other([&] { EXPECT_THROW(lock.release(), mp::ValueError); });
  other.join();
  lock.release();
}

TEST(RLockThreads, NestedMutualExclusion) {
  mp::RLock lock;
  long counter = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 5000; ++i) {
        std::lock_guard outer(lock);
        std::lock_guard inner(lock);
        ++counter;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(counter, 20000);
}

TEST(RLock, ChildOfTheHoldingThreadDoesNotHoldIt) {
  mp::RLock lock;
  lock.acquire();
  lock.acquire();
  pid_t child = fork_child([&] {
    if (lock.acquire(false)) return 1;  // another process holds it
    try {
      lock.release();
      return 2;
    } catch (const mp::ValueError&) {
    }
    return 0;
  });
  EXPECT_EQ(wait_child(child), 0);
  lock.release();
  lock.release();
  child = fork_child([&] {
    if (!lock.acquire(10s)) return 1;
    if (!lock.acquire(false)) return 2;  // re-entrant in the child too
    lock.release();
    lock.release();
    return 0;
  });
  EXPECT_EQ(wait_child(child), 0);
}

TEST(RLock, HolderKilledAtDepthThreeFreesIt) {
  mp::RLock lock;
  mp::Value<int> held(0);
  pid_t child = fork_child([&] {
    lock.acquire();
    lock.acquire();
    lock.acquire();
    std::atomic_ref<int>(held.value()).store(1);
    ::pause();
    return 0;
  });
  ASSERT_TRUE(mp::test::eventually([&] { return std::atomic_ref<int>(held.value()).load() == 1; }));
  EXPECT_EQ(mp::test::kill_child(child), -SIGKILL);
  ASSERT_TRUE(lock.acquire(10s));
  EXPECT_TRUE(lock.previous_owner_died());
  lock.release();  // depth was 1, not 4
  EXPECT_THROW(lock.release(), mp::ValueError);
}

}  // namespace
