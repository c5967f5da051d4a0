// Pool under faults: workers SIGKILLed or exiting mid-task (from inside the
// task and from outside, 100 rounds each), the pool's owner SIGKILLed, and
// workers started and replaced while other threads hold locks. Each time
// exactly the task that was running fails with WorkerLost, every other task
// completes, the pool serves on, and nothing is leaked (the test main checks
// fds, children and /dev/shm after every test).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <numeric>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "mp/detail/pool_testing.hpp"
#include "mp/detail/ring.hpp"
#include "mp/pool.hpp"
#include "mp/process.hpp"
#include "support/process_tree.hpp"

namespace {

using namespace std::chrono_literals;

struct SharedPid {
  std::atomic<int> pid{0};
};

// Made before any Pool of this process, so every worker sees the same page.
SharedPid* shared_pid() {
  static SharedPid* shared = [] {
    void* p = ::mmap(nullptr, sizeof(SharedPid), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return ::new (p) SharedPid;
  }();
  return shared;
}

int square_after_nap(int x) {
  ::usleep(200);
  return x * x;
}

int die_inside(int how) {
  if (how % 2 == 0) ::raise(SIGKILL);
  ::_exit(3);
}

int publish_pid_and_sleep(int) {
  shared_pid()->pid.store(static_cast<int>(::getpid()));
  for (;;) ::pause();
}

TEST(PoolFault, WorkerDyingInsideItsTaskFailsOnlyThatTask100Rounds) {
  mp::Pool pool(2);
  for (int round = 0; round < 100; ++round) {
    std::vector<mp::AsyncResult<int>> results;
    const int victim = round % 6;
    for (int i = 0; i < 6; ++i) {
      results.push_back(i == victim ? pool.apply_async(die_inside, round)
                                    : pool.apply_async(square_after_nap, i));
    }
    for (int i = 0; i < 6; ++i) {
      if (i == victim) {
        try {
          results[static_cast<std::size_t>(i)].get();
          FAIL() << "round " << round << ": the dying task returned";
        } catch (const mp::WorkerLost& e) {
          const std::string expected = round % 2 == 0 ? "killed by signal 9 (SIGKILL)" : "exited with code 3";
          EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
        }
      } else {
        EXPECT_EQ(results[static_cast<std::size_t>(i)].get(), i * i) << "round " << round;
      }
    }
  }
  EXPECT_EQ(pool.map(square_after_nap, std::vector<int>{1, 2, 3}), (std::vector<int>{1, 4, 9}));
}

TEST(PoolFault, WorkerKilledFromOutsideFailsOnlyThatTask100Rounds) {
  shared_pid();
  mp::Pool pool(2);
  for (int round = 0; round < 100; ++round) {
    shared_pid()->pid.store(0);
    auto victim = pool.apply_async(publish_pid_and_sleep, 0);
    std::vector<mp::AsyncResult<int>> others;
    for (int i = 0; i < 5; ++i) others.push_back(pool.apply_async(square_after_nap, i));
    int pid = 0;
    for (int spin = 0; spin < 20'000 && (pid = shared_pid()->pid.load()) == 0; ++spin) ::usleep(500);
    ASSERT_NE(pid, 0) << "round " << round << ": the victim task never started";
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    try {
      victim.get();
      FAIL() << "round " << round << ": the killed task returned";
    } catch (const mp::WorkerLost& e) {
      EXPECT_NE(std::string(e.what()).find("pid " + std::to_string(pid) + ") was killed by signal 9"),
                std::string::npos)
          << e.what();
    }
    for (int i = 0; i < 5; ++i)
      EXPECT_EQ(others[static_cast<std::size_t>(i)].get(), i * i) << "round " << round;
  }
}

using mp::test::alive;
using mp::test::descendants;

TEST(PoolFault, OwnerKilledTakesZygoteAndWorkersWithItWithinOneSecond) {
  int out[2];
  ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
  const std::string program = std::string(MP_HELPERS_DIR) + "/pool_owner";
  pid_t owner = ::fork();
  ASSERT_GE(owner, 0);
  if (owner == 0) {
    ::dup2(out[1], STDOUT_FILENO);
    ::execl(program.c_str(), program.c_str(), "3", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(out[1]);
  std::string line;
  char c;
  while (::read(out[0], &c, 1) == 1 && c != '\n') line += c;
  ::close(out[0]);
  ASSERT_EQ(line.rfind("ready", 0), 0u) << "pool_owner said: " << line;
  std::istringstream words(line.substr(line.find(':') + 1));
  std::vector<pid_t> workers;
  for (pid_t pid; words >> pid;) workers.push_back(pid);
  EXPECT_EQ(workers.size(), 3u) << line;
  std::vector<pid_t> everyone = descendants(owner);
  ASSERT_GE(everyone.size(), 4u) << "expected the zygote and 3 workers under " << owner;
  for (pid_t worker : workers) {
    EXPECT_NE(std::find(everyone.begin(), everyone.end(), worker), everyone.end()) << worker;
  }

  ASSERT_EQ(::kill(owner, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(owner, &status, 0), owner);
  const auto give_up = std::chrono::steady_clock::now() + 1s;
  std::vector<pid_t> survivors = everyone;
  while (!survivors.empty() && std::chrono::steady_clock::now() < give_up) {
    std::erase_if(survivors, [](pid_t pid) { return !alive(pid); });
    if (!survivors.empty()) std::this_thread::sleep_for(5ms);
  }
  EXPECT_TRUE(survivors.empty()) << survivors.size() << " of the pool's processes survived its owner by 1 s";
}

std::string busy_text(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += std::to_string(i);
  return s;
}

std::size_t allocate_and_measure(int n) { return busy_text(n).size(); }

TEST(PoolFault, WorkersStartAndAreReplacedWhileOtherThreadsHoldLocks) {
#if defined(__SANITIZE_ADDRESS__)
  // The pool's zygote is forked beside an allocating thread. glibc's malloc has
  // fork handlers; GCC 12's ASan allocator has none, so under ASan the zygote
  // can inherit a held allocator lock and hang (the caveat in pool.hpp; a CI
  // run timed out here). The release build runs this test.
  GTEST_SKIP() << "ASan's allocator has no fork handlers: forking beside an allocating thread can hang under "
                  "ASan only";
#endif
  std::atomic<bool> stop{false};
  std::mutex user_mutex;
  // A user mutex held in a busy loop, an allocator-heavy thread, and a thread
  // that holds stdout's lock most of the time.
  std::thread holder([&] {
    while (!stop.load()) {
      std::lock_guard lock(user_mutex);
      const auto until = std::chrono::steady_clock::now() + 200us;
      while (std::chrono::steady_clock::now() < until) {
      }
    }
  });
  std::thread allocator([&] {
    while (!stop.load()) {
      std::vector<std::string> junk;
      for (int i = 0; i < 100; ++i) junk.push_back(busy_text(50));
    }
  });
  std::thread stdio_holder([&] {
    while (!stop.load()) {
      ::flockfile(stdout);
      const auto until = std::chrono::steady_clock::now() + 200us;
      while (std::chrono::steady_clock::now() < until) {
      }
      ::funlockfile(stdout);
    }
  });
  {
    mp::Pool pool(2, {nullptr, 1});  // every task in a fresh worker
    std::vector<mp::AsyncResult<std::size_t>> results;
    for (int i = 0; i < 60; ++i) results.push_back(pool.apply_async(allocate_and_measure, 100 + i));
    for (int i = 0; i < 60; ++i)
      EXPECT_EQ(results[static_cast<std::size_t>(i)].get(), busy_text(100 + i).size());
  }
  stop.store(true);
  holder.join();
  allocator.join();
  stdio_holder.join();
}

int plus_one(int x) { return x + 1; }

// Issue 9, defect 11: the supervisor's spawn requests and the zygote's reports
// share one socket pair. With blocking writes on both sides, many workers
// exiting (or starting) at once filled both directions and each side waited
// for the other forever. A tiny socket buffer makes "many at once" a handful.
TEST(PoolFault, ManyWorkersExitingAtOnceDoNotDeadlockTheControlSocket) {
  mp::detail::set_pool_control_buffer_for_testing(1);  // the kernel's minimum
  struct Restore {
    ~Restore() { mp::detail::set_pool_control_buffer_for_testing(0); }
  } restore;
  mp::Pool pool(16, {nullptr, 1});  // every task in a fresh worker: 16 exits at once, 16 spawns
  std::vector<int> items(320);
  std::iota(items.begin(), items.end(), 0);
  auto result = pool.map_async(plus_one, items, 1);
  std::vector<int> values = result.get(120s);  // TimeoutError (then a hang in ~Pool) before the fix
  ASSERT_EQ(values.size(), items.size());
  for (std::size_t i = 0; i < items.size(); ++i) EXPECT_EQ(values[i], items[i] + 1);
}

void nothing() {}
int start_a_process(int) {
  mp::Process child(nothing);
  child.start();
  child.join();
  return child.exitcode().value_or(-1);
}

// Issue 9, defect 8: the zygote was forked without mp's process-table lock, so
// when another thread was inside Process::start (which holds it across its
// own fork) every worker inherited it locked and a task starting a Process
// deadlocked.
TEST(PoolFault, TaskStartsAProcessWhileAnotherThreadStartsProcesses) {
  std::atomic<bool> stop{false};
  std::thread starter([&] {
    while (!stop.load()) {
      mp::Process child(nothing);
      child.start();
      child.join();
    }
  });
  for (int round = 0; round < 30; ++round) {
    mp::Pool pool(1);
    auto result = pool.apply_async(start_a_process, round);
    if (!result.wait(60s)) {
      ADD_FAILURE() << "round " << round << ": the task's Process::start deadlocked";
      pool.terminate();
      break;
    }
    EXPECT_EQ(result.get(), 0);
  }
  stop.store(true);
  starter.join();
}

TEST(PoolFault, ManyPoolsWithDeathsLeaveNothingBehind) {
  for (int round = 0; round < 20; ++round) {
    mp::Pool pool(2);
    auto lost = pool.apply_async(die_inside, round);
    EXPECT_EQ(pool.map(square_after_nap, std::vector<int>{1, 2, 3, 4}, 1), (std::vector<int>{1, 4, 9, 16}));
    EXPECT_THROW(lost.get(), mp::WorkerLost);
    if (round % 2 == 0) pool.terminate();
  }
}

TEST(PoolFault, ZygoteKilledFailsEverythingAndNothingHangs) {
  mp::Pool pool(2);
  EXPECT_EQ(pool.apply(square_after_nap, 2), 4);  // workers are up
  auto stuck = pool.apply_async(publish_pid_and_sleep, 0);
  auto queued = pool.map_async(square_after_nap, std::vector<int>(50, 1), 1);
  // The pool's only direct child is its zygote (workers are its children).
  const std::vector<pid_t> direct = mp::test::children(::getpid());
  ASSERT_EQ(direct.size(), 1u);
  ASSERT_EQ(::kill(direct[0], SIGKILL), 0);
  try {
    stuck.get();
    FAIL() << "the task survived its zygote";
  } catch (const mp::WorkerLost& e) {
    EXPECT_NE(std::string(e.what()).find("zygote"), std::string::npos) << e.what();
  }
  EXPECT_THROW(queued.get(), mp::WorkerLost);
  EXPECT_THROW(pool.apply(square_after_nap, 3), mp::WorkerLost);  // broken: fails at once, never hangs
  pool.close();
  pool.join();
}

// ---- tasks and results through shared memory (issue 10) ----------------------------------

// die_holding_the_result_lock(): as a worker killed half-way through putting
// a result: it takes the result ring's producer lock and dies holding it.
int die_holding_the_result_lock(int) {
  mp::detail::Ring* ring = mp::detail::pool_worker_result_ring_for_testing();
  if (ring == nullptr) return -1;
  (void)ring->header()->producer_mutex.lock();
  ::raise(SIGKILL);
  return -2;
}

unsigned result_lock_repairs(int) {
  mp::detail::Ring* ring = mp::detail::pool_worker_result_ring_for_testing();
  return ring == nullptr ? 0u : ring->producer_repairs();
}

int my_pid(int) {
  ::usleep(2000);  // long enough that both workers take some
  return static_cast<int>(::getpid());
}

TEST(PoolFault, WorkerKilledHoldingTheResultChannelFailsOnlyItsTaskAndTheChannelIsRepaired) {
  mp::Pool pool(2);
  for (int round = 0; round < 10; ++round) {
    auto victim = pool.apply_async(die_holding_the_result_lock, round);
    std::vector<mp::AsyncResult<int>> others;
    for (int i = 0; i < 8; ++i) others.push_back(pool.apply_async(square_after_nap, i));
    try {
      victim.get();
      FAIL() << "round " << round << ": the dying task returned";
    } catch (const mp::WorkerLost& e) {
      EXPECT_NE(std::string(e.what()).find("killed by signal 9"), std::string::npos) << e.what();
    }
    for (int i = 0; i < 8; ++i)
      EXPECT_EQ(others[static_cast<std::size_t>(i)].get(), i * i) << "round " << round;
  }
  EXPECT_GE(pool.apply(result_lock_repairs, 0), 10u);  // each dead holder's lock was taken over once
  // The worker count is restored: two live workers share the work.
  std::vector<int> pids = pool.map(my_pid, std::vector<int>(40, 0), 1);
  std::sort(pids.begin(), pids.end());
  pids.erase(std::unique(pids.begin(), pids.end()), pids.end());
  EXPECT_EQ(pids.size(), 2u);
  for (int pid : pids) EXPECT_EQ(::kill(pid, 0), 0) << pid;
}

// Runs of each task id, in memory every worker shares (made before the Pool).
struct RunCounts {
  std::atomic<int> runs[64];
};
RunCounts* run_counts() {
  static RunCounts* shared = [] {
    void* p = ::mmap(nullptr, sizeof(RunCounts), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return ::new (p) RunCounts{};
  }();
  return shared;
}

int count_run(int id) {
  run_counts()->runs[id].fetch_add(1);
  return id;
}

int die_then_nothing(int) {
  ::raise(SIGKILL);
  return 0;
}

TEST(PoolFault, TasksBatchedBehindADeadWorkersTaskRunExactlyOnce) {
  RunCounts* counts = run_counts();
  for (auto& c : counts->runs) c.store(0);
  mp::Pool pool(1);
  // Warm up so the window is wide: the tasks after the victim travel in the
  // same ring record, and the worker has taken them when it dies.
  for (int i = 0; i < 20; ++i) (void)pool.apply(count_run, 63);
  for (int round = 0; round < 5; ++round) {
    for (auto& c : counts->runs) c.store(0);
    std::vector<mp::AsyncResult<int>> results;
    auto victim = pool.apply_async(die_then_nothing, 0);
    for (int id = 0; id < 40; ++id) results.push_back(pool.apply_async(count_run, id));
    EXPECT_THROW(victim.get(), mp::WorkerLost);
    for (int id = 0; id < 40; ++id) EXPECT_EQ(results[static_cast<std::size_t>(id)].get(), id);
    for (int id = 0; id < 40; ++id)
      EXPECT_EQ(counts->runs[id].load(), 1) << "round " << round << " task " << id;
  }
}

// big_result_then_killed(n): returns n ints, and is SIGKILLed as soon as its
// worker has begun streaming them into the result ring (a stream is open).
std::vector<int> big_result_then_killed(int n) {
  mp::detail::Ring* ring = mp::detail::pool_worker_result_ring_for_testing();
  std::thread([ring] {
    while ((ring->header()->stream_state.load() & mp::detail::kStreamIdMask) == 0) {
    }
    std::this_thread::sleep_for(1ms);
    ::raise(SIGKILL);
  }).detach();
  return std::vector<int>(static_cast<std::size_t>(n), 7);
}

TEST(PoolFault, WorkerKilledWhileStreamingALargeResultFailsOnlyItsTask) {
  mp::Pool pool(2);
  auto victim = pool.apply_async(big_result_then_killed, 16 << 20);  // 64 MiB: streamed
  std::vector<mp::AsyncResult<int>> others;
  for (int i = 0; i < 20; ++i) others.push_back(pool.apply_async(square_after_nap, i));
  try {
    (void)victim.get();
    FAIL() << "the killed task returned";
  } catch (const mp::WorkerLost& e) {
    EXPECT_NE(std::string(e.what()).find("killed by signal 9"), std::string::npos) << e.what();
  }
  for (int i = 0; i < 20; ++i) EXPECT_EQ(others[static_cast<std::size_t>(i)].get(), i * i);
  EXPECT_EQ(pool.map(square_after_nap, std::vector<int>{1, 2, 3}, 1), (std::vector<int>{1, 4, 9}));
  EXPECT_GE(pool.apply(result_lock_repairs, 0), 1u);  // it died holding the stream: repaired
}

}  // namespace
