// Tests for mp::Barrier. BarrierThreads run under ThreadSanitizer.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "mp/barrier.hpp"
#include "mp/errors.hpp"
#include "mp/shared.hpp"
#include "support/child.hpp"

using namespace std::chrono_literals;
using mp::test::fork_child;
using mp::test::wait_child;

namespace {

TEST(Barrier, PartiesMustBePositive) {
  EXPECT_THROW(mp::Barrier(0), mp::ValueError);
  EXPECT_THROW(mp::Barrier(-2), mp::ValueError);
  mp::Barrier one(1);
  EXPECT_EQ(one.parties(), 1);
  EXPECT_EQ(one.wait(), 0);  // a party of one never waits
  EXPECT_EQ(one.wait(1ms), 0);
  EXPECT_FALSE(one.broken());
  EXPECT_EQ(one.n_waiting(), 0);
}

TEST(BarrierThreads, IndicesAreDistinctInEveryRound) {
  constexpr int kParties = 4;
  constexpr int kRounds = 50;
  mp::Barrier barrier(kParties);
  std::vector<std::vector<int>> indices(kRounds, std::vector<int>(kParties, -1));
  std::vector<int> written(kParties * kRounds, 0);  // each party's writes, checked after each round
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kParties; ++t)
    threads.emplace_back([&, t] {
      for (int r = 0; r < kRounds; ++r) {
        written[r * kParties + t] = 1;
        indices[r][t] = barrier.wait();
        for (int u = 0; u < kParties; ++u)  // everyone's write before the round is visible
          if (written[r * kParties + u] != 1) ++errors;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  for (auto& round : indices) {
    std::sort(round.begin(), round.end());
    EXPECT_EQ(round, (std::vector<int>{0, 1, 2, 3}));
  }
}

TEST(BarrierThreads, TimeoutBreaksTheBarrierForEveryone) {
  mp::Barrier barrier(3);
  std::atomic<int> broken_seen{0};
  std::thread waiter([&] {
    try {
      (void)barrier.wait();
    } catch (const mp::BrokenBarrier&) {
      ++broken_seen;
    }
  });
  ASSERT_TRUE(mp::test::eventually([&] { return barrier.n_waiting() == 1; }));
  EXPECT_THROW((void)barrier.wait(5ms), mp::BrokenBarrier);
  waiter.join();
  EXPECT_EQ(broken_seen.load(), 1);
  EXPECT_TRUE(barrier.broken());
  EXPECT_EQ(barrier.n_waiting(), 0);
  EXPECT_THROW((void)barrier.wait(), mp::BrokenBarrier);  // stays broken
  barrier.reset();
  EXPECT_FALSE(barrier.broken());
  std::thread a([&] { (void)barrier.wait(); });
  std::thread b([&] { (void)barrier.wait(); });
  (void)barrier.wait();  // usable again
  a.join();
  b.join();
}

TEST(BarrierThreads, AbortWakesWaitersWithBrokenBarrier) {
  mp::Barrier barrier(3);
  std::atomic<int> broken_seen{0};
  std::vector<std::thread> waiters;
  for (int t = 0; t < 2; ++t)
    waiters.emplace_back([&] {
      try {
        (void)barrier.wait(20s);
      } catch (const mp::BrokenBarrier&) {
        ++broken_seen;
      }
    });
  ASSERT_TRUE(mp::test::eventually([&] { return barrier.n_waiting() == 2; }));
  barrier.abort();
  for (auto& t : waiters) t.join();
  EXPECT_EQ(broken_seen.load(), 2);
  EXPECT_TRUE(barrier.broken());
}

TEST(BarrierThreads, ResetThrowsIntoWaitersAndStartsAfresh) {
  mp::Barrier barrier(3);
  std::atomic<int> broken_seen{0};
  std::vector<std::thread> waiters;
  for (int t = 0; t < 2; ++t)
    waiters.emplace_back([&] {
      try {
        (void)barrier.wait();
      } catch (const mp::BrokenBarrier&) {
        ++broken_seen;
      }
    });
  ASSERT_TRUE(mp::test::eventually([&] { return barrier.n_waiting() == 2; }));
  barrier.reset();
  for (auto& t : waiters) t.join();
  EXPECT_EQ(broken_seen.load(), 2);
  EXPECT_FALSE(barrier.broken());
  EXPECT_EQ(barrier.n_waiting(), 0);
  std::vector<int> got(3, -1);
  std::thread a([&] { got[0] = barrier.wait(); });
  std::thread b([&] { got[1] = barrier.wait(); });
  got[2] = barrier.wait();
  a.join();
  b.join();
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2}));
}

TEST(Barrier, ProcessesMeetRoundAfterRound) {
  constexpr int kChildren = 3;
  constexpr int kRounds = 20;
  mp::Barrier barrier(kChildren + 1);
  mp::Array<int> arrivals(kRounds * (kChildren + 1), -1);  // [round][index] = 1 once taken
  std::vector<pid_t> children;
  for (int c = 0; c < kChildren; ++c)
    children.push_back(fork_child([&] {
      for (int r = 0; r < kRounds; ++r) {
        int index = barrier.wait(20s);
        if (index < 0 || index > kChildren) return 1;
        std::atomic_ref<int>(arrivals[r * (kChildren + 1) + index]).fetch_add(1);
      }
      return 0;
    }));
  for (int r = 0; r < kRounds; ++r) {
    int index = barrier.wait(20s);
    ASSERT_GE(index, 0);
    ASSERT_LE(index, kChildren);
    std::atomic_ref<int>(arrivals[r * (kChildren + 1) + index]).fetch_add(1);
  }
  for (pid_t pid : children) EXPECT_EQ(wait_child(pid), 0);
  for (int slot : arrivals) EXPECT_EQ(slot, 0);  // every index taken exactly once per round
}

TEST(Barrier, WaiterKilledMidWaitDoesNotHangTheOthers) {
  mp::Barrier barrier(2);
  pid_t child = fork_child([&] {
    (void)barrier.wait();
    return 0;
  });
  ASSERT_TRUE(mp::test::eventually([&] { return barrier.n_waiting() == 1; }));
  EXPECT_EQ(mp::test::kill_child(child), -SIGKILL);
  // The dead waiter counted as arrived: this round completes at once.
  EXPECT_EQ(barrier.wait(20s), 1);
  // Later rounds are whole.
  std::thread other([&] { (void)barrier.wait(20s); });
  (void)barrier.wait(20s);
  other.join();
  EXPECT_FALSE(barrier.broken());
}

}  // namespace
