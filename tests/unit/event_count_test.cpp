// Tests for mp::detail::EventCount, the one wait primitive. EventCountThreads
// run under ThreadSanitizer; EventCountProcesses SIGKILL waiters.
#include "mp/detail/event_count.hpp"

#include <gtest/gtest.h>
#include <time.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "mp/detail/shm.hpp"
#include "support/child.hpp"

using namespace std::chrono_literals;
using mp::detail::Deadline;
using mp::detail::EventCount;
using mp::test::eventually;
using mp::test::fork_child;
using mp::test::wait_child;

namespace {

struct Shared {
  EventCount ec;
  std::atomic<std::uint32_t> turn{0};
  std::atomic<std::uint32_t> round{0};
  std::atomic<std::uint32_t> progress[8] = {};
};

std::shared_ptr<Shared> make_shared_state() { return mp::detail::make_shared_object<Shared>("test"); }

TEST(EventCountThreads, PingPongHandsOffEveryRound) {
  auto s = make_shared_state();
  constexpr std::uint32_t kRounds = 20'000;
  std::uint64_t payload = 0;  // plain data: published by each turn's hand-off
  auto player = [&](std::uint32_t me) {
    for (std::uint32_t r = me; r < kRounds; r += 2) {
      ASSERT_TRUE(
          s->ec.await([&] { return s->turn.load(std::memory_order_acquire) == r; }, Deadline::never()));
      EXPECT_EQ(payload, r);
      payload = r + 1;
      s->turn.store(r + 1, std::memory_order_release);
      s->ec.notify_all();
    }
  };
  std::thread other(player, 1);
  player(0);
  other.join();
  EXPECT_EQ(payload, kRounds);
}

TEST(EventCountThreads, SlowWakerReachesSleepingWaiter) {
  // The waker pauses before every hand-off, so the waiter's spin fails and
  // it sleeps in the kernel: the futex half of the protocol.
  auto s = make_shared_state();
  std::thread waiter([&] {
    for (std::uint32_t r = 1; r <= 20; ++r)
      ASSERT_TRUE(
          s->ec.await([&] { return s->round.load(std::memory_order_acquire) >= r; }, Deadline::never()));
  });
  for (std::uint32_t r = 1; r <= 20; ++r) {
    std::this_thread::sleep_for(2ms);
    s->round.store(r, std::memory_order_release);
    s->ec.notify_all();
  }
  waiter.join();
}

TEST(EventCountThreads, NotifyAllWakesEverySleeper) {
  auto s = make_shared_state();
  std::atomic<int> woken{0};
  std::vector<std::thread> waiters;
  for (int t = 0; t < 4; ++t)
    waiters.emplace_back([&] {
      ASSERT_TRUE(
          s->ec.await([&] { return s->round.load(std::memory_order_acquire) != 0; }, Deadline::never()));
      woken.fetch_add(1);
    });
  std::this_thread::sleep_for(20ms);  // most likely all asleep by now (correct either way)
  s->round.store(1, std::memory_order_release);
  s->ec.notify_all();
  for (auto& t : waiters) t.join();
  EXPECT_EQ(woken.load(), 4);
}

TEST(EventCountThreads, PrepareCheckUnlockWaitMissesNothing) {
  // The raw protocol with a lock dropped between the check and the sleep, as
  // Condition and Barrier use it.
  auto s = make_shared_state();
  std::mutex mutex;
  int value = 0;  // under mutex
  constexpr int kRounds = 2'000;
  std::thread consumer([&] {
    for (int want = 1; want <= kRounds; ++want) {
      std::unique_lock hold(mutex);
      for (;;) {
        const auto key = s->ec.prepare_wait();
        if (value >= want) {
          s->ec.cancel_wait();
          break;
        }
        hold.unlock();
        (void)s->ec.wait(key, Deadline::never());
        hold.lock();
      }
    }
  });
  for (int i = 1; i <= kRounds; ++i) {
    {
      std::lock_guard hold(mutex);
      value = i;
    }
    s->ec.notify_all();
    if (i % 256 == 0) std::this_thread::sleep_for(1ms);  // let the consumer fall asleep now and then
  }
  consumer.join();
}

TEST(EventCount, TimedAwaitGivesUpAtItsDeadline) {
  auto s = make_shared_state();
  EXPECT_FALSE(s->ec.await([] { return false; }, Deadline::after(5ms)));
  EXPECT_FALSE(s->ec.await([] { return false; }, Deadline::after(-1s)));
  const auto key = s->ec.prepare_wait();
  EXPECT_EQ(s->ec.wait(key, Deadline::after(2ms)), mp::detail::WaitResult::timed_out);
}

TEST(EventCount, NotifyWithNobodyAsleepLeavesTheWordAlone) {
  // No sleeper: notify_all() neither lowers a flag nor advances the epoch,
  // i.e. it makes no system call.
  auto s = make_shared_state();
  s->ec.notify_all();
  EXPECT_EQ(s->ec.epoch.load(), 0u);
  EXPECT_TRUE(s->ec.await([] { return true; }, Deadline::never()));
  s->ec.notify_all();
  EXPECT_EQ(s->ec.epoch.load(), 0u);
  // A prepared (then cancelled) wait raises the flag: one notify lowers it.
  (void)s->ec.prepare_wait();
  s->ec.cancel_wait();
  s->ec.notify_all();
  EXPECT_EQ(s->ec.epoch.load(), 1u);
  EXPECT_EQ(s->ec.sleepers.load(), 0u);
  s->ec.notify_all();
  EXPECT_EQ(s->ec.epoch.load(), 1u);
}

TEST(EventCount, SpinBudgetStaysWithinItsBounds) {
  auto s = make_shared_state();
  for (int i = 0; i < 20; ++i) (void)s->ec.await([] { return false; }, Deadline::after(200us));
  EXPECT_GE(s->ec.spin_budget_ns.load(), EventCount::kMinSpinNs);
  EXPECT_LE(s->ec.spin_budget_ns.load(), EventCount::kMaxSpinNs);
}

TEST(EventCount, BlockedWaiterUsesUnderOnePercentOfACpu) {
  // CPU time, not wall time: a loaded machine can only make it smaller.
  auto s = make_shared_state();
  constexpr auto kWait = 500ms;
  std::chrono::nanoseconds used{};
  std::thread waiter([&] {
    timespec before{}, after{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &before);
    EXPECT_FALSE(
        s->ec.await([&] { return s->round.load(std::memory_order_acquire) != 0; }, Deadline::after(kWait)));
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &after);
    used = std::chrono::seconds(after.tv_sec - before.tv_sec) +
           std::chrono::nanoseconds(after.tv_nsec - before.tv_nsec);
  });
  waiter.join();
  EXPECT_LT(used, kWait / 100) << "CPU used while blocked: " << used.count() << " ns";
}

TEST(EventCountProcesses, KilledWaitersStrandNoOne) {
  // Six processes wait for round after round; some are SIGKILLed at
  // arbitrary points (spinning, prepared, asleep, just woken). Every survivor
  // must see every round.
  auto s = make_shared_state();
  constexpr int kChildren = 6;
  constexpr std::uint32_t kRounds = 300;
  std::vector<pid_t> children;
  for (int i = 0; i < kChildren; ++i)
    children.push_back(fork_child([&, i] {
      for (std::uint32_t r = 1; r <= kRounds; ++r) {
        if (!s->ec.await([&] { return s->round.load(std::memory_order_acquire) >= r; }, Deadline::after(30s)))
          return 1;
        s->progress[i].store(r, std::memory_order_release);
      }
      return 0;
    }));
  std::vector<bool> killed(kChildren, false);
  int next_victim = 0;
  for (std::uint32_t r = 1; r <= kRounds; ++r) {
    if (r % 3 == 0) std::this_thread::sleep_for(500us);  // let them fall asleep
    s->round.store(r, std::memory_order_release);
    s->ec.notify_all();
    if (r % 60 == 0 && next_victim < 3) {
      EXPECT_EQ(mp::test::kill_child(children[next_victim]), -SIGKILL);
      killed[next_victim++] = true;
    }
    if (r % 50 == 0) {
      // Survivors keep up (a stranded one would never reach r).
      ASSERT_TRUE(eventually([&] {
        for (int i = 0; i < kChildren; ++i)
          if (!killed[i] && s->progress[i].load(std::memory_order_acquire) < r) return false;
        return true;
      })) << "a surviving waiter was stranded at round "
          << r;
    }
  }
  for (int i = 0; i < kChildren; ++i) {
    if (killed[i]) continue;
    EXPECT_EQ(wait_child(children[i]), 0) << "child " << i;
  }
}

}  // namespace

// The spin policy's load rule (mp/detail/oversubscription.hpp): three
// cooperating processes on two CPUs (a JoinableQueue's producer and two
// consumers) still spin; two or more threads beyond the CPUs do not.
TEST(EventCount, SpinStopsOnlyWhenClearlyOversubscribed) {
  using mp::detail::too_many_runnable;
  EXPECT_FALSE(too_many_runnable(2, 2));
  EXPECT_FALSE(too_many_runnable(3, 2));  // was "oversubscribed": JoinableQueue 1P2C never spun
  EXPECT_TRUE(too_many_runnable(4, 2));   // the busy benchmark: 2 busy loops + producer + consumer
  EXPECT_TRUE(too_many_runnable(9, 2));
  EXPECT_FALSE(too_many_runnable(-1, 2));  // /proc/loadavg unreadable: spin
  EXPECT_FALSE(too_many_runnable(5, 8));
}
