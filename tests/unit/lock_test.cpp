// Tests for mp::Lock: threads racing in one process (LockThreads, run under
// ThreadSanitizer) and real processes made with fork().
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "mp/errors.hpp"
#include "mp/lock.hpp"
#include "mp/shared.hpp"
#include "support/child.hpp"

using namespace std::chrono_literals;
using mp::test::fork_child;
using mp::test::wait_child;

namespace {

template <class L>
concept TimedLockable = requires(L l) {
  l.lock();
  l.unlock();
  { l.try_lock() } -> std::same_as<bool>;
  { l.try_lock_for(1ms) } -> std::same_as<bool>;
  { l.try_lock_until(std::chrono::steady_clock::now()) } -> std::same_as<bool>;
  { l.try_lock_until(std::chrono::system_clock::now()) } -> std::same_as<bool>;
};
static_assert(TimedLockable<mp::Lock>);
static_assert(std::is_copy_constructible_v<mp::Lock> && std::is_copy_assignable_v<mp::Lock>);

TEST(LockThreads, MutualExclusionOfAPlainCounter) {
  mp::Lock lock;
  long counter = 0;  // deliberately not atomic: the lock must order it
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) {
        std::lock_guard hold(lock);
        ++counter;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(counter, 80000);
}

TEST(LockThreads, OtherThreadCannotTakeOrReleaseItWhileHeld) {
  mp::Lock lock;
  lock.acquire();
  std::thread other([copy = lock]() mutable {
    EXPECT_FALSE(copy.try_lock());
    EXPECT_FALSE(copy.acquire(false));
    EXPECT_FALSE(copy.acquire(5ms));
    EXPECT_FALSE(copy.try_lock_until(std::chrono::system_clock::now() + 1ms));
    EXPECT_THROW(copy.release(), mp::ValueError);
  });
  other.join();
  lock.release();
  std::thread again([copy = lock]() mutable {
    EXPECT_TRUE(copy.acquire(5s));
    copy.release();
  });
  again.join();
}

TEST(LockThreads, BlockedThreadProceedsAfterRelease) {
  mp::Lock lock;
  std::atomic<int> stage{0};
  lock.acquire();
  std::thread waiter([&] {
    stage = 1;
    lock.acquire();  // blocks until the main thread releases
    stage = 2;
    lock.release();
  });
  ASSERT_TRUE(mp::test::eventually([&] { return stage.load() == 1; }));
  std::this_thread::sleep_for(10ms);
  EXPECT_EQ(stage.load(), 1);  // it cannot have passed: we hold the lock
  lock.release();
  waiter.join();
  EXPECT_EQ(stage.load(), 2);
}

TEST(Lock, AcquireReleaseAndTryForms) {
  mp::Lock lock;
  EXPECT_TRUE(lock.acquire(false));
  EXPECT_FALSE(lock.acquire(false));  // not re-entrant
  EXPECT_FALSE(lock.try_lock());
  lock.release();
  EXPECT_TRUE(lock.acquire(true));
  lock.release();
  EXPECT_TRUE(lock.acquire(0s));
  lock.release();
  EXPECT_TRUE(lock.try_lock_for(-1s));  // a negative timeout still tries once
  lock.unlock();
  EXPECT_TRUE(lock.acquire(std::chrono::hours::max()));                       // saturates, does not overflow
  EXPECT_FALSE(lock.try_lock_until(std::chrono::steady_clock::now() + 1ms));  // held by us
  lock.unlock();
  EXPECT_FALSE(lock.previous_owner_died());
}

TEST(Lock, ReleasingAnUnheldLockIsValueError) {
  mp::Lock lock;
  EXPECT_THROW(lock.release(), mp::ValueError);
  lock.acquire();
  lock.release();
  EXPECT_THROW(lock.release(), mp::ValueError);
}

TEST(Lock, HolderAcquiringAgainIsValueErrorNotADeadlock) {
  mp::Lock lock;
  lock.acquire();
  EXPECT_THROW(lock.acquire(), mp::ValueError);
  EXPECT_FALSE(lock.acquire(1ms));  // with a timeout: runs out, as in Python
  lock.release();
}

TEST(Lock, StandardLockGuardsWork) {
  mp::Lock a;
  mp::Lock b;
  {
    std::lock_guard hold(a);
    EXPECT_FALSE(a.try_lock());
  }
  {
    std::scoped_lock both(a, b);
    EXPECT_FALSE(a.try_lock());
    EXPECT_FALSE(b.try_lock());
  }
  {
    std::unique_lock hold(a, 1s);
    EXPECT_TRUE(hold.owns_lock());
    std::unique_lock second(a, std::try_to_lock);
    EXPECT_FALSE(second.owns_lock());
  }
  EXPECT_TRUE(a.try_lock());
  a.release();
}

TEST(Lock, CopiesShareOneLock) {
  mp::Lock lock;
  mp::Lock copy = lock;
  lock.acquire();
  EXPECT_FALSE(copy.try_lock());
  copy.release();  // same thread, same lock: allowed
  EXPECT_TRUE(lock.try_lock());
  lock.release();
}

TEST(Lock, ChildProcessSeesTheSameLock) {
  mp::Lock lock;
  lock.acquire();
  pid_t child = fork_child([&] {
    if (lock.try_lock()) return 1;     // the parent holds it
    if (lock.acquire(10ms)) return 2;  // still held
    try {
      lock.release();  // not the holder
      return 3;
    } catch (const mp::ValueError&) {
    }
    return 0;
  });
  EXPECT_EQ(wait_child(child), 0);
  lock.release();
  child = fork_child([&] {
    if (!lock.acquire(10s)) return 1;
    lock.release();
    return 0;
  });
  EXPECT_EQ(wait_child(child), 0);
}

TEST(Lock, ChildWaitsUntilParentReleases) {
  mp::Lock lock;
  mp::Value<int> seen(0);
  lock.acquire();
  pid_t child = fork_child([&] {
    std::lock_guard hold(lock);
    seen.value() = 1;
    return 0;
  });
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(seen.value(), 0);  // it cannot get in while we hold the lock
  lock.release();
  EXPECT_EQ(wait_child(child), 0);
  std::lock_guard hold(lock);
  EXPECT_EQ(seen.value(), 1);
}

TEST(Lock, HolderKilledHoldingItIsReportedToTheNextHolder) {
  mp::Lock lock;
  mp::Value<int> held(0);
  pid_t child = fork_child([&] {
    lock.acquire();
    std::atomic_ref<int>(held.value()).store(1);
    ::pause();
    return 0;
  });
  ASSERT_TRUE(mp::test::eventually([&] { return std::atomic_ref<int>(held.value()).load() == 1; }));
  EXPECT_EQ(mp::test::kill_child(child), -SIGKILL);
  ASSERT_TRUE(lock.acquire(10s));  // no deadlock
  EXPECT_TRUE(lock.previous_owner_died());
  lock.release();
  ASSERT_TRUE(lock.acquire(10s));
  EXPECT_FALSE(lock.previous_owner_died());  // only the take-over reports it
  lock.release();
}

TEST(Lock, ChildForkedByTheHolderDoesNotHoldIt) {
  mp::Lock lock;
  lock.acquire();
  pid_t child = fork_child([&] {
    try {
      lock.release();
      return 1;
    } catch (const mp::ValueError&) {
    }
    return lock.try_lock() ? 2 : 0;
  });
  EXPECT_EQ(wait_child(child), 0);
  lock.release();
}

}  // namespace
