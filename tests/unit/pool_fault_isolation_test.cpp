// Pool fault isolation (API.md "Pool: fault isolation"): task_timeout,
// AsyncResult::cancel()/cancelled(), add_done_callback(). Only the task that
// timed out or was cancelled fails; its worker is killed and replaced; every
// other task completes; nothing leaks (the test main checks fds and children).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "mp/pool.hpp"

namespace {

using namespace std::chrono_literals;

// Shared memory made before any Pool: workers see it (they are forks).
struct Shared {
  std::atomic<int> release{0};
  std::atomic<int> ran{0};
  std::atomic<int> pid{0};
};
Shared* shared() {
  static Shared* shared = [] {
    void* p = ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return ::new (p) Shared;
  }();
  return shared;
}
void reset_shared() {
  shared()->release.store(0);
  shared()->ran.store(0);
  shared()->pid.store(0);
}

int square(int x) { return x * x; }
int worker_pid(int) { return static_cast<int>(::getpid()); }
int sleep_forever(int) {
  for (;;) ::pause();
}
// wait_for_release(x): publishes its pid, waits until the test releases it.
int wait_for_release(int x) {
  shared()->pid.store(static_cast<int>(::getpid()));
  while (shared()->release.load() == 0) ::usleep(1000);
  return x;
}
// spin_until_released(x): as wait_for_release, without sleeping, so the
// result follows the release within microseconds.
int spin_until_released(int x) {
  while (shared()->release.load() == 0) {
  }
  return x;
}
int count_run(int x) {
  shared()->ran.fetch_add(1);
  return x;
}
int throws(int) { throw std::runtime_error("no"); }

int wait_for_pid() {
  while (shared()->pid.load() == 0) ::usleep(1000);
  return shared()->pid.load();
}

bool gone(pid_t pid) {
  const auto give_up = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < give_up) {
    if (::kill(pid, 0) != 0) return true;
    std::this_thread::sleep_for(2ms);
  }
  return false;
}

std::set<int> distinct_workers(mp::Pool& pool, int processes) {
  // Chunks go to every open worker (fewest in flight first), so 4 per worker
  // reach each of them.
  std::set<int> pids;
  for (int pid : pool.map(worker_pid, std::vector<int>(static_cast<std::size_t>(processes) * 4, 0), 1))
    pids.insert(pid);
  return pids;
}

TEST(PoolTimeout, TimedOutTaskAmongAThousandFailsAloneAndThePoolKeepsItsWorkers) {
  mp::PoolOptions options;
  options.task_timeout = 1000ms;  // trivial tasks never come near it, even under ASan on a busy machine
  mp::Pool pool(2, options);
  std::vector<mp::AsyncResult<int>> results;
  for (int i = 0; i < 1000; ++i) {
    results.push_back(i == 500 ? pool.apply_async(sleep_forever, i) : pool.apply_async(square, i));
  }
  for (int i = 0; i < 1000; ++i) {
    if (i == 500) continue;
    EXPECT_EQ(results[static_cast<std::size_t>(i)].get(), i * i) << i;
  }
  try {
    (void)results[500].get();
    FAIL() << "the stuck task returned";
  } catch (const mp::TaskTimeout& e) {
    EXPECT_NE(std::string(e.what()).find("task_timeout of 1000 ms"), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)results[500].get(), mp::TimeoutError);  // a TaskTimeout is a TimeoutError
  EXPECT_EQ(distinct_workers(pool, 2).size(), 2u);           // replaced: still two workers
  EXPECT_EQ(pool.processes(), 2);
}

TEST(PoolTimeout, MapChunkTimesOutAloneAndNegativeTimeoutIsValueError) {
  mp::PoolOptions options;
  options.task_timeout = 1000ms;
  mp::Pool pool(1, options);
  auto it = pool.imap(wait_for_release, std::vector<int>{1}, 1);
  EXPECT_THROW((void)it.next(), mp::TaskTimeout);  // nobody releases it
  EXPECT_EQ(pool.map(square, std::vector<int>{1, 2, 3}), (std::vector<int>{1, 4, 9}));
  mp::PoolOptions negative;
  negative.task_timeout = -1ms;
  EXPECT_THROW(mp::Pool(1, negative), mp::ValueError);
}

TEST(PoolCancel, QueuedTasksNeverRun) {
  reset_shared();
  mp::Pool pool(1);
  auto blocker = pool.apply_async(wait_for_release, 7);
  (void)wait_for_pid();
  // The worker's window is two chunks: `in_socket` is sent to the busy worker
  // (queued in its socket), `pending` stays in the pool's queue.
  auto in_socket = pool.apply_async(count_run, 1);
  auto pending = pool.map_async(count_run, std::vector<int>{2, 3, 4}, 1);
  EXPECT_TRUE(in_socket.cancel());
  EXPECT_TRUE(pending.cancel());
  EXPECT_TRUE(in_socket.cancelled());
  EXPECT_TRUE(pending.ready());
  EXPECT_FALSE(pending.successful());
  EXPECT_THROW((void)in_socket.get(), mp::Cancelled);
  EXPECT_THROW((void)pending.get(), mp::Cancelled);
  EXPECT_FALSE(in_socket.cancel());  // done (cancelled) already
  shared()->release.store(1);
  EXPECT_EQ(blocker.get(), 7);
  EXPECT_FALSE(blocker.cancelled());
  EXPECT_EQ(pool.apply(count_run, 5), 5);                      // after the cancelled ones, in the same worker
  EXPECT_EQ(shared()->ran.load(), 1);                          // only the last one ran
  EXPECT_EQ(pool.apply(worker_pid, 0), shared()->pid.load());  // nobody was killed
}

TEST(PoolCancel, RunningTaskKillsItsWorkerWhichIsReplaced) {
  reset_shared();
  mp::Pool pool(1);
  auto running = pool.apply_async(wait_for_release, 1);
  auto queued = pool.apply_async(square, 3);  // behind it, in the same worker
  const pid_t pid = wait_for_pid();
  EXPECT_TRUE(running.cancel());
  EXPECT_THROW((void)running.get(), mp::Cancelled);
  EXPECT_EQ(queued.get(), 9);  // requeued to the replacement, not lost
  EXPECT_TRUE(gone(pid)) << "the worker running the cancelled task is still alive";
  const int replacement = pool.apply(worker_pid, 0);
  EXPECT_NE(replacement, pid);
  EXPECT_EQ(pool.processes(), 1);
}

TEST(PoolCancel, FinishedTaskIsNotCancelled) {
  mp::Pool pool(1);
  auto done = pool.apply_async(square, 4);
  EXPECT_EQ(done.get(), 16);
  EXPECT_FALSE(done.cancel());
  EXPECT_FALSE(done.cancelled());
  EXPECT_EQ(done.get(), 16);
  auto failed = pool.apply_async(throws, 0);
  failed.wait();
  EXPECT_FALSE(failed.cancel());
  EXPECT_THROW((void)failed.get(), mp::RemoteError);
}

struct Seen {
  std::mutex mutex;
  std::condition_variable changed;
  int calls = 0;
  bool successful = false;
  bool cancelled = false;
  std::thread::id thread;
  void record(bool ok, bool was_cancelled) {
    std::lock_guard lock(mutex);
    ++calls;
    successful = ok;
    cancelled = was_cancelled;
    thread = std::this_thread::get_id();
    changed.notify_all();
  }
  bool wait_for(int n) {
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, 60s, [&] { return calls >= n; });
  }
};

TEST(PoolCallbacks, RunOnceWhenReadyOnAPoolThread) {
  reset_shared();
  mp::Pool pool(2);
  Seen success;
  auto r = pool.apply_async(wait_for_release, 5);
  r.add_done_callback(
      [&](const mp::AsyncResult<int>& done) { success.record(done.successful(), done.cancelled()); });
  shared()->release.store(1);
  EXPECT_EQ(r.get(), 5);
  ASSERT_TRUE(success.wait_for(1));
  EXPECT_TRUE(success.successful);
  EXPECT_NE(success.thread, std::this_thread::get_id());

  Seen failure;
  auto f = pool.apply_async(throws, 0);
  f.add_done_callback([&](const mp::AsyncResult<int>& done) { failure.record(done.successful(), false); });
  ASSERT_TRUE(failure.wait_for(1));
  EXPECT_FALSE(failure.successful);

  Seen late;  // added to a ready result: at once, in this thread
  r.add_done_callback([&](const mp::AsyncResult<int>& done) { late.record(done.successful(), false); });
  EXPECT_EQ(late.calls, 1);
  EXPECT_EQ(late.thread, std::this_thread::get_id());
  std::this_thread::sleep_for(10ms);
  EXPECT_EQ(success.calls, 1);  // once
}

TEST(PoolCallbacks, CallbacksStayOnPoolThreadsWhenTheWaiterTakesTheResultItself) {
  // A thread waiting in get() may take results from the pool's result
  // channel itself (as the leading waiter); the done callbacks it finds ready must
  // still run on a pool thread, never on the waiting caller's.
  reset_shared();  // maps the shared page before the pool forks its zygote
  mp::Pool pool(2);
  for (int round = 0; round < 200; ++round) {
    shared()->release.store(0);
    Seen seen;
    auto r = pool.apply_async(spin_until_released, round);  // not ready before the callback is added
    r.add_done_callback([&](const mp::AsyncResult<int>& done) { seen.record(done.successful(), false); });
    shared()->release.store(1);
    EXPECT_EQ(r.get(), round);
    ASSERT_TRUE(seen.wait_for(1)) << "round " << round;
    EXPECT_NE(seen.thread, std::this_thread::get_id()) << "round " << round;
  }
}

TEST(PoolCallbacks, CancelRunsTheCallbackOnAPoolThread) {
  reset_shared();
  mp::Pool pool(1);
  auto blocker = pool.apply_async(wait_for_release, 1);
  auto queued = pool.apply_async(square, 2);
  Seen seen;
  queued.add_done_callback([&](const mp::AsyncResult<int>& done) { seen.record(false, done.cancelled()); });
  EXPECT_TRUE(queued.cancel());
  ASSERT_TRUE(seen.wait_for(1));
  EXPECT_TRUE(seen.cancelled);
  EXPECT_NE(seen.thread, std::this_thread::get_id());
  shared()->release.store(1);
  EXPECT_EQ(blocker.get(), 1);
}

TEST(PoolCallbacks, ThrowingCallbackIsReportedAndThePoolGoesOn) {
  mp::Pool pool(1);
  auto r = pool.apply_async(square, 3);
  Seen seen;
  r.add_done_callback([](const mp::AsyncResult<int>&) { throw std::runtime_error("callback failed"); });
  r.add_done_callback([&](const mp::AsyncResult<int>& done) { seen.record(done.successful(), false); });
  ASSERT_TRUE(seen.wait_for(1));
  EXPECT_EQ(pool.apply(square, 4), 16);
}

}  // namespace
