// Pool from several threads at once (ThreadSanitizer runs the suites named
// *Threads*): concurrent submitters, one result waited on by many threads,
// terminate racing submissions. The pool's own supervisor thread races all of
// them on the pool's state and on each result's state.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "mp/pool.hpp"

namespace {

int triple(int x) { return 3 * x; }

int nap_then_triple(int x) {
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  return 3 * x;
}

TEST(PoolThreads, ConcurrentSubmittersGetTheirOwnResults) {
  mp::Pool pool(2);
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        const int x = t * 1000 + i;
        if (pool.apply(triple, x) != 3 * x) ++mismatches;
        auto async = pool.apply_async(triple, x + 1);
        std::vector<int> input{x, x + 1, x + 2};
        auto mapped = pool.map(triple, input, 1);
        if (mapped != std::vector<int>{3 * x, 3 * x + 3, 3 * x + 6}) ++mismatches;
        if (async.get() != 3 * (x + 1)) ++mismatches;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(PoolThreads, OneResultWaitedOnByManyThreads) {
  mp::Pool pool(1);
  auto result = pool.map_async(nap_then_triple, std::vector<int>{1, 2, 3, 4}, 1);
  std::vector<std::thread> waiters;
  std::atomic<int> good{0};
  for (int t = 0; t < 4; ++t) {
    waiters.emplace_back([&] {
      auto copy = result;
      if (copy.get() == std::vector<int>{3, 6, 9, 12}) ++good;
    });
  }
  for (auto& waiter : waiters) waiter.join();
  EXPECT_EQ(good.load(), 4);
}

TEST(PoolThreads, TerminateRacingSubmissionsLeavesEveryResultFinished) {
  mp::Pool pool(2);
  std::atomic<bool> stop{false};
  std::atomic<int> submitted{0};
  std::vector<std::vector<mp::AsyncResult<int>>> per_thread(3);
  std::vector<std::thread> submitters;
  for (int t = 0; t < 3; ++t) {
    submitters.emplace_back([&, t] {
      while (!stop.load()) {
        try {
          per_thread[static_cast<std::size_t>(t)].push_back(pool.apply_async(nap_then_triple, t));
          submitted.fetch_add(1);
        } catch (const mp::ValueError&) {
          return;  // the pool was terminated
        }
      }
    });
  }
  while (submitted.load() < 15) std::this_thread::yield();
  pool.terminate();
  stop.store(true);
  for (auto& submitter : submitters) submitter.join();
  for (auto& results : per_thread) {
    for (auto& r : results) {
      ASSERT_TRUE(r.ready());
      if (r.successful()) {
        EXPECT_EQ(r.get(), 3 * static_cast<int>(&results - per_thread.data()));
      } else {
        EXPECT_THROW(r.get(), mp::WorkerLost);
      }
    }
  }
}

// cancel() from one thread racing the results arriving on the supervisor
// thread and done callbacks: each result is either its value (cancel said
// false) or Cancelled (cancel said true), and each callback runs once.
TEST(PoolThreads, CancelRacingCompletionAndCallbacks) {
  mp::Pool pool(2);
  constexpr int kCount = 200;
  std::vector<mp::AsyncResult<int>> results;
  std::atomic<int> callbacks{0};
  for (int i = 0; i < kCount; ++i) {
    results.push_back(pool.apply_async(nap_then_triple, i));
    results.back().add_done_callback([&](const mp::AsyncResult<int>&) { callbacks.fetch_add(1); });
  }
  std::vector<char> said(kCount, 0);
  std::thread canceller([&] {
    for (int i = kCount - 1; i >= 0; i -= 2)
      said[static_cast<std::size_t>(i)] = results[static_cast<std::size_t>(i)].cancel() ? 1 : 2;
  });
  canceller.join();
  for (int i = 0; i < kCount; ++i) {
    auto& r = results[static_cast<std::size_t>(i)];
    if (said[static_cast<std::size_t>(i)] == 1) {
      EXPECT_THROW((void)r.get(), mp::Cancelled) << i;
      EXPECT_TRUE(r.cancelled());
    } else {
      EXPECT_EQ(r.get(), 3 * i) << i;
      EXPECT_FALSE(r.cancelled());
    }
  }
  pool.close();
  pool.join();  // every callback has run once the supervisor is gone
  EXPECT_EQ(callbacks.load(), kCount);
}

}  // namespace
