// Stress: a lock holder SIGKILLed at random points, 100 rounds per lock type.
//
// Each round forks a child that takes and releases the lock in a tight loop
// (holding it for a random few microseconds). Rounds cycle through three
// kinds: (0) the parent holds the lock while it kills the child, so the child
// dies waiting in acquire (or about to); (1) the parent contends for a while,
// then kills the child at a random moment (holding or not, as it falls on a
// loaded machine); (2) the child stops in the middle of holding it (after a
// random number of loops) and is killed there. After reaping,
// the kernel's robust-futex word says whether the child died holding it; the
// next acquire must succeed within 10 s (never a deadlock) and
// previous_owner_died() must be true exactly when it did.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <random>
#include <thread>

#include "mp/barrier.hpp"
#include "mp/condition.hpp"
#include "mp/lock.hpp"
#include "mp/rlock.hpp"
#include "mp/shared.hpp"
#include "support/child.hpp"

using namespace std::chrono_literals;

namespace {

void spin_for(std::chrono::nanoseconds d) {
  auto until = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < until) {
  }
}

template <class LockType>
void kill_holders(int rounds) {
  LockType lock;
  mp::Value<int> started(0);
  std::mt19937 random(12345);
  int died_holding = 0;
  int died_waiting = 0;
  for (int round = 0; round < rounds; ++round) {
    std::atomic_ref<int>(started.value()).store(0);
    const unsigned seed = random();
    const int kind = round % 3;
    pid_t child = mp::test::fork_child([&] {
      std::minstd_rand child_random(seed);
      std::atomic_ref<int>(started.value()).store(1);
      const unsigned stop_after = kind == 2 ? child_random() % 50 : UINT32_MAX;
      for (unsigned loop = 0;; ++loop) {
        lock.acquire();
        if constexpr (std::is_same_v<LockType, mp::RLock>) lock.acquire();  // die at depth 2 too
        if (loop == stop_after) {
          std::atomic_ref<int>(started.value()).store(2);
          for (;;) ::pause();  // holding it until killed
        }
        spin_for(std::chrono::nanoseconds(child_random() % 20000));
        if constexpr (std::is_same_v<LockType, mp::RLock>) lock.release();
        lock.release();
      }
      return 0;
    });
    ASSERT_TRUE(mp::test::eventually([&] { return std::atomic_ref<int>(started.value()).load() != 0; }));
    const auto& state = *mp::detail::LockAccess::state(lock);
    if (kind == 0) {
      // Kill it while we hold the lock: it dies acquiring (or just before).
      ASSERT_TRUE(lock.acquire(10s)) << "round " << round;
      EXPECT_FALSE(lock.previous_owner_died()) << "round " << round;  // the child was alive
      spin_for(std::chrono::nanoseconds(random() % 200000));
      EXPECT_EQ(mp::test::kill_child(child), -SIGKILL);
      EXPECT_FALSE(state.mutex.owner_died_pending()) << "round " << round;
      lock.release();
      ++died_waiting;
    } else {
      // Contend for a while, then kill it at a random moment (kind 1), or
      // once it stopped holding the lock (kind 2).
      // (Kind 2 does not contend: its child may be holding the lock for good.)
      const int contend = kind == 1 ? static_cast<int>(random() % 20) : 0;
      for (int i = 0; i < contend; ++i) {
        ASSERT_TRUE(lock.acquire(10s)) << "round " << round;
        EXPECT_FALSE(lock.previous_owner_died()) << "round " << round;
        lock.release();
      }
      if (kind == 2) {
        ASSERT_TRUE(mp::test::eventually([&] { return std::atomic_ref<int>(started.value()).load() == 2; }));
      } else {
        spin_for(std::chrono::nanoseconds(random() % 200000));
      }
      EXPECT_EQ(mp::test::kill_child(child), -SIGKILL);
      // The kernel marks the word FUTEX_OWNER_DIED iff the child held it.
      const bool held_at_death = state.mutex.owner_died_pending();
      died_holding += held_at_death ? 1 : 0;
      if (kind == 2) {
        EXPECT_TRUE(held_at_death) << "round " << round;
      }
      ASSERT_TRUE(lock.acquire(10s)) << "round " << round << ": deadlock after the holder died";
      EXPECT_EQ(lock.previous_owner_died(), held_at_death) << "round " << round;
      lock.release();
    }
    // Whatever happened, the lock works normally afterwards.
    ASSERT_TRUE(lock.try_lock()) << "round " << round;
    EXPECT_FALSE(lock.previous_owner_died()) << "round " << round;
    lock.release();
  }
  // Both kinds of death happened (kind 2 always dies holding it).
  EXPECT_GT(died_holding, 0);
  EXPECT_GT(died_waiting, 0);
}

TEST(LockHolderKill, LockHolderKilledAtRandomPoints) { kill_holders<mp::Lock>(100); }

TEST(LockHolderKill, RLockHolderKilledAtRandomPoints) { kill_holders<mp::RLock>(100); }

// Condition waiters (and lock holders) killed at random points: a child
// loops waiting for ticks while the parent ticks; it is SIGKILLed at a random
// moment (inside wait(), re-acquiring, or holding the RLock). Afterwards a
// live waiter must still be woken by a single notify(1).
TEST(LockHolderKill, ConditionWaitersKilledAtRandomPoints) {
  mp::Condition cond;
  mp::Value<long> ticks(0);  // under the condition's lock
  std::mt19937 random(777);
  for (int round = 0; round < 50; ++round) {
    pid_t child = mp::test::fork_child([&] {
      for (;;) {
        std::lock_guard hold(cond);
        const long seen = ticks.value();
        cond.wait_for([&] { return ticks.value() != seen; }, 50ms);
      }
      return 0;
    });
    const int tick_count = static_cast<int>(random() % 30);
    for (int i = 0; i < tick_count; ++i) {
      std::lock_guard hold(cond);
      ++ticks.value();
      if (i % 2) {
        cond.notify();
      } else {
        cond.notify_all();
      }
    }
    spin_for(std::chrono::nanoseconds(random() % 100000));
    EXPECT_EQ(mp::test::kill_child(child), -SIGKILL);

    bool woken = false;
    bool ready = false;  // under the lock
    std::thread waiter([&] {
      std::lock_guard hold(cond);
      const long seen = ticks.value();
      ready = true;
      woken = cond.wait_for([&] { return ticks.value() != seen; }, 10s);
    });
    ASSERT_TRUE(mp::test::eventually([&] {
      std::lock_guard hold(cond);
      return ready;
    }));
    {
      std::lock_guard hold(cond);
      ++ticks.value();
      cond.notify(1);  // dead waiters may still be counted: the live one must wake
    }
    waiter.join();
    EXPECT_TRUE(woken) << "round " << round;
  }
}

// Barrier waiters killed at random points: afterwards reset() and a full
// round of live parties still works.
TEST(LockHolderKill, BarrierWaitersKilledAtRandomPoints) {
  mp::Barrier barrier(2);
  std::mt19937 random(99);
  for (int round = 0; round < 50; ++round) {
    pid_t child = mp::test::fork_child([&] {
      for (;;) {
        try {
          (void)barrier.wait(50ms);
        } catch (const mp::BrokenBarrier&) {
          barrier.reset();
        }
      }
      return 0;
    });
    const int meetings = static_cast<int>(random() % 10);
    for (int i = 0; i < meetings; ++i) {
      try {
        (void)barrier.wait(50ms);
      } catch (const mp::BrokenBarrier&) {
        barrier.reset();
      }
    }
    spin_for(std::chrono::nanoseconds(random() % 100000));
    EXPECT_EQ(mp::test::kill_child(child), -SIGKILL);
    barrier.reset();
    int other_index = -1;
    std::thread other([&] { other_index = barrier.wait(10s); });
    const int my_index = barrier.wait(10s);
    other.join();
    EXPECT_EQ(my_index + other_index, 1) << "round " << round;  // 0 and 1
    EXPECT_FALSE(barrier.broken());
  }
}

}  // namespace
