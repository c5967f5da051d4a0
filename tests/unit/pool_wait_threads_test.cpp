// Threads waiting for Pool results (ThreadSanitizer runs suites named
// *Threads*): one waiting thread at a time is the pool's collector (the
// leader, pool_collector.cpp "Waiting threads") and hands the others their
// outcomes; these tests race several waiters on different results, let a
// result arrive for a thread while another one leads, kill a worker under a
// leader and under a follower (WorkerLost, exactly for that task), and
// check that a timed get() returns at its deadline whoever leads.
// Every Pool is made before the test starts its threads (no fork beside
// running threads: see PROTOCOL.md about ASan).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "mp/pool.hpp"

namespace {

using namespace std::chrono_literals;

// Shared memory made before any Pool: workers see it (they are forks).
struct Shared {
  std::atomic<int> release[4];
  std::atomic<int> pid[4];
};
Shared* shared() {
  static Shared* shared = [] {
    void* p = ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return ::new (p) Shared{};
  }();
  return shared;
}
void reset_shared() {
  for (int i = 0; i < 4; ++i) {
    shared()->release[i].store(0);
    shared()->pid[i].store(0);
  }
}

int square(int x) { return x * x; }
// held(slot): publishes its worker's pid in pid[slot], waits until the test
// releases the slot, returns 100 + slot.
int held(int slot) {
  shared()->pid[slot].store(static_cast<int>(::getpid()));
  while (shared()->release[slot].load() == 0) ::usleep(500);
  return 100 + slot;
}
// spin_held(x): as held(0) without sleeping or publishing, so results of
// several tasks released together arrive within microseconds of each other.
int spin_held(int x) {
  while (shared()->release[0].load() == 0) {
  }
  return 3 * x;
}

pid_t wait_for_pid(int slot) {
  const auto give_up = std::chrono::steady_clock::now() + 30s;
  while (shared()->pid[slot].load() == 0 && std::chrono::steady_clock::now() < give_up) ::usleep(500);
  return shared()->pid[slot].load();
}

// wait_until_asleep(tid): true once that thread of ours sleeps in the kernel
// (state S in /proc): a waiting thread sleeps only after its bounded spin,
// so it is in its wait, leading or following, by then.
bool wait_until_asleep(pid_t tid) {
  const std::string path = "/proc/self/task/" + std::to_string(tid) + "/stat";
  const auto give_up = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < give_up) {
    std::ifstream stat(path);
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    const auto close = text.rfind(')');
    if (close != std::string::npos && close + 2 < text.size() && text[close + 2] == 'S') return true;
    std::this_thread::sleep_for(1ms);
  }
  return false;
}

// A thread that records its kernel id before it starts waiting.
struct Waiter {
  std::atomic<pid_t> tid{0};
  std::thread thread;
  template <class F>
  void start(F body) {
    thread = std::thread([this, body] {
      tid.store(static_cast<pid_t>(::gettid()));
      body();
    });
  }
  bool asleep() {
    while (tid.load() == 0) std::this_thread::yield();
    return wait_until_asleep(tid.load());
  }
};

TEST(PoolWaitThreads, ManyThreadsWaitingOnDifferentResultsEachGetTheirOwn) {
  reset_shared();
  mp::Pool pool(2);
  constexpr int kThreads = 6;
  for (int round = 0; round < 10; ++round) {
    shared()->release[0].store(0);
    std::vector<mp::AsyncResult<int>> results;
    for (int t = 0; t < kThreads; ++t) results.push_back(pool.apply_async(spin_held, round * 100 + t));
    std::atomic<int> wrong{0};
    std::atomic<int> waiting{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        waiting.fetch_add(1);
        if (results[static_cast<std::size_t>(t)].get() != 3 * (round * 100 + t)) wrong.fetch_add(1);
      });
    }
    while (waiting.load() < kThreads) std::this_thread::yield();
    shared()->release[0].store(1);  // every task finishes at once
    for (auto& thread : threads) thread.join();
    EXPECT_EQ(wrong.load(), 0) << "round " << round;
  }
}

// The first waiter leads (it sleeps on the result ring for a task that is
// held); a second thread's result arrives meanwhile: the leader hands it
// over, and a follower's timed get() still returns at its deadline.
TEST(PoolWaitThreads, ResultArrivesForAFollowerWhileAnotherThreadLeads) {
  reset_shared();
  mp::Pool pool(2);
  auto slow = pool.apply_async(held, 0);
  ASSERT_NE(wait_for_pid(0), 0);
  Waiter leader;
  int slow_value = 0;
  leader.start([&] { slow_value = slow.get(); });
  ASSERT_TRUE(leader.asleep());
  for (int i = 0; i < 20; ++i) EXPECT_EQ(pool.apply_async(square, i).get(), i * i);
  EXPECT_FALSE(slow.ready());
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THROW((void)slow.get(30ms), mp::TimeoutError);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 30ms);
  shared()->release[0].store(1);
  leader.thread.join();
  EXPECT_EQ(slow_value, 100);
}

// A worker SIGKILLed under a waiting thread fails exactly its task with
// WorkerLost, whether its waiter leads (round 0) or follows (round 1); the
// other thread's task, held on the other worker, is unaffected.
TEST(PoolWaitThreads, WorkerKilledUnderALeaderOrAFollowerFailsOnlyItsTask) {
  reset_shared();
  mp::Pool pool(2);
  for (int round = 0; round < 2; ++round) {
    reset_shared();
    auto first = pool.apply_async(held, 0);
    auto second = pool.apply_async(held, 1);
    const pid_t first_pid = wait_for_pid(0);
    const pid_t second_pid = wait_for_pid(1);
    ASSERT_NE(first_pid, 0);
    ASSERT_NE(second_pid, 0);
    ASSERT_NE(first_pid, second_pid);
    std::atomic<int> first_outcome{0};  // 1 value, 2 WorkerLost, 3 something else
    std::atomic<int> second_outcome{0};
    const auto wait_on = [](mp::AsyncResult<int>& result, std::atomic<int>& outcome, int expected) {
      try {
        outcome.store(result.get() == expected ? 1 : 3);
      } catch (const mp::WorkerLost&) {
        outcome.store(2);
      } catch (...) {
        outcome.store(3);
      }
    };
    Waiter leader;  // starts first and sleeps first: it leads
    leader.start([&] { wait_on(first, first_outcome, 100); });
    ASSERT_TRUE(leader.asleep());
    Waiter follower;
    follower.start([&] { wait_on(second, second_outcome, 101); });
    ASSERT_TRUE(follower.asleep());
    const pid_t victim = round == 0 ? first_pid : second_pid;
    ASSERT_EQ(::kill(victim, SIGKILL), 0);
    (round == 0 ? leader : follower).thread.join();
    EXPECT_EQ((round == 0 ? first_outcome : second_outcome).load(), 2) << "round " << round;
    shared()->release[round == 0 ? 1 : 0].store(1);
    (round == 0 ? follower : leader).thread.join();
    EXPECT_EQ((round == 0 ? second_outcome : first_outcome).load(), 1) << "round " << round;
    // The pool replaced the worker and goes on.
    EXPECT_EQ(pool.apply(square, 9), 81);
  }
}

// A leader whose deadline passes resigns on time; a follower waiting for
// another result takes over the lead and gets its result.
TEST(PoolWaitThreads, LeaderTimingOutHandsTheLeadToAFollower) {
  reset_shared();
  mp::Pool pool(2);
  auto never_released = pool.apply_async(held, 0);
  auto later = pool.apply_async(held, 1);
  ASSERT_NE(wait_for_pid(0), 0);
  ASSERT_NE(wait_for_pid(1), 0);
  std::atomic<bool> timed_out{false};
  std::chrono::steady_clock::duration waited{};
  Waiter leader;
  leader.start([&] {
    const auto start = std::chrono::steady_clock::now();
    try {
      (void)never_released.get(200ms);
    } catch (const mp::TimeoutError&) {
      timed_out.store(true);
    }
    waited = std::chrono::steady_clock::now() - start;
  });
  ASSERT_TRUE(leader.asleep());
  int later_value = 0;
  Waiter follower;
  follower.start([&] { later_value = later.get(); });
  leader.thread.join();
  EXPECT_TRUE(timed_out.load());
  EXPECT_GE(waited, 200ms);
  EXPECT_LT(waited, 20s);  // not a hang
  shared()->release[1].store(1);
  follower.thread.join();
  EXPECT_EQ(later_value, 101);
  shared()->release[0].store(1);
  EXPECT_EQ(never_released.get(), 100);
}

// A waiter that is alone times out on time, waits again, and gets the value.
TEST(PoolWaitThreads, TimedGetReturnsAtItsDeadlineThenTheResultStillComes) {
  reset_shared();
  mp::Pool pool(1);
  auto result = pool.apply_async(held, 0);
  for (int i = 0; i < 3; ++i) {
    const auto start = std::chrono::steady_clock::now();
    EXPECT_THROW((void)result.get(20ms), mp::TimeoutError);
    const auto waited = std::chrono::steady_clock::now() - start;
    EXPECT_GE(waited, 20ms);
    EXPECT_LT(waited, 20s);  // not a hang
    EXPECT_FALSE(result.wait(1ms));
  }
  shared()->release[0].store(1);
  EXPECT_EQ(result.get(), 100);
  EXPECT_EQ(pool.apply(square, 4), 16);
}

}  // namespace
