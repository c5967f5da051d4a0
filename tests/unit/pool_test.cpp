// Pool and AsyncResult: every member, and what CPython's test suite asserts
// for multiprocessing.Pool (order, chunksizes, empty input, timeouts, errors
// re-raised with type and message, the pool usable after a failed map,
// terminate with many pending tasks, maxtasksperchild, initializer, Pool(0)).
#include "mp/pool.hpp"
#include "mp/detail/launch.hpp"
#include "mp/process.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <numeric>
#include <ranges>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

namespace {

using namespace std::chrono_literals;

int square(int x) { return x * x; }
int add(int a, int b) { return a + b; }
int worker_pid(int) { return static_cast<int>(::getpid()); }
int worker_pid_now() { return static_cast<int>(::getpid()); }

int sleep_then(int x) {
  std::this_thread::sleep_for(std::chrono::milliseconds(x));
  return x;
}

int sleep_forever(int) {
  for (;;) ::pause();
}

struct Boom : std::runtime_error {
  using std::runtime_error::runtime_error;
};

int fails_on_three(int x) {
  if (x == 3) throw Boom("three is not allowed");
  return x;
}

int throws_runtime_error() { throw std::runtime_error("plain failure"); }
int throws_int() { throw 42; }

int kill_self(int) {
  ::raise(SIGKILL);
  return 0;
}

int exit_seven(int) { ::_exit(7); }

// Shared memory made before any Pool: workers see it (they are forks).
struct Shared {
  std::atomic<int> counter{0};
};
Shared* shared_counter() {
  static Shared* shared = [] {
    void* p = ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return ::new (p) Shared;
  }();
  return shared;
}

void bump(int) { shared_counter()->counter.fetch_add(1); }
void bump_nothing() { shared_counter()->counter.fetch_add(1); }

int initialized_value = 0;
void initializer_sets_value() { initialized_value = 1234; }
int read_initialized(int) { return initialized_value; }
void initializer_throws() { throw std::logic_error("cannot initialise"); }

// Issue 9, defect 8: a worker is a child of mp's like any other.
std::string worker_name(int) { return mp::current_process().name(); }
bool worker_knows_its_pid(int) { return mp::current_process().pid() == ::getpid(); }
void nothing() {}
std::pair<std::string, std::string> worker_and_child_names(int) {
  mp::Process child(nothing);
  child.start();
  child.join();
  return {mp::current_process().name(), child.name()};
}

int g_atexit_fd = -1;  // set in the forked owner below
void record_atexit_pid() {
  const int pid = static_cast<int>(::getpid());
  (void)!::write(g_atexit_fd, &pid, sizeof pid);
}
int exit_five(int) { mp::exit(5); }

TEST(Pool, DefaultChunksizeIsCPythonsRule) {
  // chunksize, extra = divmod(len, processes * 4); if extra: chunksize += 1
  EXPECT_EQ(mp::detail::default_chunksize(0, 4), 0u);
  EXPECT_EQ(mp::detail::default_chunksize(1, 4), 1u);
  EXPECT_EQ(mp::detail::default_chunksize(16, 4), 1u);
  EXPECT_EQ(mp::detail::default_chunksize(17, 4), 2u);
  EXPECT_EQ(mp::detail::default_chunksize(100, 2), 13u);
  EXPECT_EQ(mp::detail::default_chunksize(200000, 2), 25000u);
  EXPECT_EQ(mp::detail::default_chunksize(200001, 2), 25001u);
}

TEST(Pool, MapReturnsResultsInOrder) {
  mp::Pool pool(2);
  std::vector<int> input(100);
  std::iota(input.begin(), input.end(), 0);
  std::vector<int> expected;
  for (int x : input) expected.push_back(x * x);
  EXPECT_EQ(pool.map(square, input), expected);
  EXPECT_EQ(pool.map(square, input, 1), expected);
  EXPECT_EQ(pool.map(square, input, 7), expected);
  EXPECT_EQ(pool.map(square, input, 1000), expected);
}

TEST(Pool, OptionsTakeEveryStartMethodInAPIOrder) {
  // PoolOptions as API.md lists it, designated initializers in that order.
  // spawn needs mp::init(), which this test binary does not call (see
  // pool_start_method_test.cpp and its helper program for spawn pools).
  for (mp::StartMethod method : {mp::StartMethod::fork, mp::StartMethod::forkserver}) {
    mp::Pool pool(2, mp::PoolOptions{.initializer = nullptr,
                                     .maxtasksperchild = 0,
                                     .task_timeout = std::chrono::milliseconds(0),
                                     .start_method = method});
    EXPECT_EQ(pool.map(square, std::vector<int>{1, 2, 3}), (std::vector<int>{1, 4, 9}))
        << mp::to_string(method);
  }
  mp::detail::stop_forkserver();  // leave no server behind for the leak check
}

TEST(Pool, MapAcceptsRangesAndLambdas) {
  mp::Pool pool(2);
  auto doubled = pool.map([](int x) { return 2 * x; }, std::views::iota(0, 10));
  EXPECT_EQ(doubled, (std::vector<int>{0, 2, 4, 6, 8, 10, 12, 14, 16, 18}));
  std::vector<std::string> words{"a", "bb", "ccc"};
  auto sizes = pool.map([](const std::string& s) { return s.size(); }, words);
  EXPECT_EQ(sizes, (std::vector<std::size_t>{1, 2, 3}));
  auto shouted = pool.map([](std::string s) { return s + "!"; }, words);
  EXPECT_EQ(shouted, (std::vector<std::string>{"a!", "bb!", "ccc!"}));
}

TEST(Pool, MapChunksGoToOneWorkerEach) {
  // With maxtasksperchild=1 every chunk runs in a fresh worker, so the pids
  // show the chunking: items of one chunk share a pid, chunks do not.
  mp::Pool pool(2, {nullptr, 1});
  auto pids = pool.map(worker_pid, std::vector<int>(10, 0), 3);
  ASSERT_EQ(pids.size(), 10u);
  std::vector<std::pair<std::size_t, std::size_t>> chunks{{0, 3}, {3, 6}, {6, 9}, {9, 10}};
  std::set<int> chunk_pids;
  for (auto [first, last] : chunks) {
    for (std::size_t i = first; i < last; ++i) EXPECT_EQ(pids[i], pids[first]) << "item " << i;
    chunk_pids.insert(pids[first]);
  }
  EXPECT_EQ(chunk_pids.size(), 4u);
}

TEST(Pool, EmptyInputGivesEmptyResultAtOnce) {
  mp::Pool pool(2);
  EXPECT_TRUE(pool.map(square, std::vector<int>{}).empty());
  EXPECT_TRUE(pool.starmap(add, std::vector<std::pair<int, int>>{}).empty());
  auto async = pool.map_async(square, std::vector<int>{});
  EXPECT_TRUE(async.ready());
  EXPECT_TRUE(async.successful());
  EXPECT_TRUE(async.get().empty());
  auto it = pool.imap(square, std::vector<int>{});
  EXPECT_FALSE(it.next().has_value());
  auto unordered = pool.imap_unordered(square, std::vector<int>{});
  EXPECT_EQ(unordered.begin(), unordered.end());
}

TEST(Pool, StarmapSpreadsTuplesAndPairs) {
  mp::Pool pool(2);
  std::vector<std::tuple<int, int>> tuples{{1, 2}, {3, 4}, {5, 6}};
  EXPECT_EQ(pool.starmap(add, tuples), (std::vector<int>{3, 7, 11}));
  std::vector<std::pair<int, int>> pairs{{10, 1}, {20, 2}};
  EXPECT_EQ(pool.starmap(add, pairs, 1), (std::vector<int>{11, 22}));
  auto async = pool.starmap_async([](int a, int b) { return a * b; }, pairs);
  EXPECT_EQ(async.get(), (std::vector<int>{10, 40}));
}

TEST(Pool, ImapYieldsInOrder) {
  mp::Pool pool(3);
  std::vector<int> input{50, 1, 30, 2, 10, 0};
  std::vector<int> seen;
  for (int x : pool.imap(sleep_then, input)) seen.push_back(x);
  EXPECT_EQ(seen, input);
  std::vector<int> chunked;
  for (int x : pool.imap(square, std::views::iota(0, 50), 7)) chunked.push_back(x);
  ASSERT_EQ(chunked.size(), 50u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(chunked[static_cast<std::size_t>(i)], i * i);
}

TEST(Pool, ImapUnorderedYieldsEveryResult) {
  mp::Pool pool(2);
  std::multiset<int> seen;
  for (int x : pool.imap_unordered(square, std::views::iota(0, 200), 3)) seen.insert(x);
  std::multiset<int> expected;
  for (int i = 0; i < 200; ++i) expected.insert(i * i);
  EXPECT_EQ(seen, expected);
}

// Issue 9, defect 9: begin() of a temporary IMapIterator kept a raw pointer
// to it (ASan: stack-use-after-scope). The iterator now shares the cursor.
TEST(Pool, ImapIteratorOutlivesItsTemporaryRange) {
  mp::Pool pool(2);
  std::vector<int> seen;
  auto it = pool.imap(square, std::views::iota(0, 40), 3).begin();
  for (; it != std::default_sentinel; ++it) seen.push_back(*it);
  ASSERT_EQ(seen.size(), 40u);
  for (int i = 0; i < 40; ++i) EXPECT_EQ(seen[static_cast<std::size_t>(i)], i * i);
  std::multiset<int> unordered;
  for (auto u = pool.imap_unordered(square, std::vector<int>{1, 2, 3}).begin(); u != std::default_sentinel;
       ++u)
    unordered.insert(*u);
  EXPECT_EQ(unordered, (std::multiset<int>{1, 4, 9}));
}

TEST(Pool, WorkerIsCurrentProcessForkPoolWorkerN) {
  mp::Pool pool(2, {nullptr, 1});  // each task in a fresh worker, each with its own name
  const std::vector<std::string> names = pool.map(worker_name, std::vector<int>(6, 0), 1);
  for (const auto& name : names) {
    EXPECT_EQ(name.rfind("ForkPoolWorker-", 0), 0u) << name;
    EXPECT_GT(name.size(), std::string("ForkPoolWorker-").size()) << name;
  }
  EXPECT_EQ(std::set<std::string>(names.begin(), names.end()).size(), names.size());
  EXPECT_TRUE(pool.apply(worker_knows_its_pid, 0));
  EXPECT_EQ(mp::current_process().name(), "MainProcess");
}

TEST(Pool, ProcessStartedInAWorkerIsNamedAfterIt) {
  mp::Pool pool(1);
  const auto [worker, child] = pool.apply(worker_and_child_names, 0);
  ASSERT_EQ(worker.rfind("ForkPoolWorker-", 0), 0u) << worker;
  // Python: a worker with _identity (N,) names its first child Process-N:1.
  EXPECT_EQ(child, "Process-" + worker.substr(std::string("ForkPoolWorker-").size()) + ":1");
}

TEST(Pool, ExitInAWorkerDoesNotRunTheOwnersAtexitHandlers) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  // The owner must be a main process (not an mp child): a plain fork of the test.
  const pid_t owner = ::fork();
  ASSERT_GE(owner, 0);
  if (owner == 0) {
    ::close(fds[0]);
    g_atexit_fd = fds[1];
    std::atexit(record_atexit_pid);
    int code = 3;
    {
      mp::Pool pool(1);
      try {
        (void)pool.apply(exit_five, 0);
        code = 1;
      } catch (const mp::WorkerLost& e) {
        code = std::string(e.what()).find("exited with code 5") != std::string::npos ? 0 : 2;
      } catch (...) {
      }
    }
    ::_exit(code);  // the owner itself never runs its handlers here: any pid in the pipe is a worker's
  }
  ::close(fds[1]);
  std::vector<int> pids;
  int pid = 0;
  while (::read(fds[0], &pid, sizeof pid) == static_cast<ssize_t>(sizeof pid)) pids.push_back(pid);
  ::close(fds[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(owner, &status, 0), owner);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: the task returned, 2: not 'exited with code 5', 3: another error";
  EXPECT_TRUE(pids.empty()) << "the owner's atexit handler ran in " << pids.size() << " worker(s)";
}

TEST(Pool, ImapNextTimesOut) {
  mp::Pool pool(1);
  auto it = pool.imap(sleep_forever, std::vector<int>{0});
  EXPECT_THROW((void)it.next(20ms), mp::TimeoutError);
  pool.terminate();
  EXPECT_THROW((void)it.next(), mp::WorkerLost);
}

TEST(Pool, ImapChunksizeZeroIsValueError) {
  mp::Pool pool(1);
  EXPECT_THROW((void)pool.imap(square, std::vector<int>{1}, 0), mp::ValueError);
  EXPECT_THROW((void)pool.imap_unordered(square, std::vector<int>{1}, 0), mp::ValueError);
}

TEST(Pool, ImapFailedChunkThrowsAndIterationGoesOn) {
  mp::Pool pool(2);
  auto it = pool.imap(fails_on_three, std::views::iota(0, 6));
  std::vector<int> got;
  int errors = 0;
  for (;;) {
    try {
      auto v = it.next();
      if (!v) break;
      got.push_back(*v);
    } catch (const mp::RemoteError& e) {
      ++errors;
      EXPECT_EQ(e.type_name(), "(anonymous namespace)::Boom");
    }
  }
  EXPECT_EQ(errors, 1);
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 4, 5}));
}

TEST(Pool, ApplyAndApplyAsync) {
  mp::Pool pool(2);
  EXPECT_EQ(pool.apply(add, 2, 3), 5);
  EXPECT_EQ(pool.apply([] { return std::string("no arguments"); }), "no arguments");
  int x = 9;
  const int y = 10;
  EXPECT_EQ(pool.apply(add, x, y), 19);
  auto r = pool.apply_async(square, 12);
  EXPECT_EQ(r.get(), 144);
  EXPECT_TRUE(r.ready());
  EXPECT_TRUE(r.successful());
  EXPECT_EQ(r.get(), 144);  // get() again: same value
  auto copy = r;
  EXPECT_EQ(copy.get(), 144);
}

TEST(Pool, ApplyOfVoidFunction) {
  const int before = shared_counter()->counter.load();  // maps the region before the pool forks
  mp::Pool pool(2);
  pool.apply(bump, 1);
  pool.apply(bump_nothing);
  auto r = pool.apply_async(bump, 2);
  r.get();
  static_assert(std::is_same_v<decltype(r), mp::AsyncResult<void>>);
  EXPECT_TRUE(r.successful());
  pool.map(bump, std::vector<int>{1, 2, 3});
  EXPECT_EQ(shared_counter()->counter.load(), before + 6);
}

TEST(Pool, AsyncTimeoutsAndReadiness) {
  mp::Pool pool(1);
  auto slow = pool.apply_async(sleep_forever, 0);
  EXPECT_FALSE(slow.ready());
  EXPECT_THROW((void)slow.successful(), mp::ValueError);
  EXPECT_FALSE(slow.wait(10ms));
  EXPECT_THROW(slow.get(10ms), mp::TimeoutError);
  auto map_slow = pool.map_async(sleep_forever, std::vector<int>{1, 2});
  EXPECT_THROW(map_slow.get(1ms), mp::TimeoutError);
  pool.terminate();
  EXPECT_TRUE(slow.ready());
  EXPECT_FALSE(slow.successful());
  EXPECT_THROW(slow.get(), mp::WorkerLost);
  EXPECT_THROW(map_slow.get(), mp::WorkerLost);
}

TEST(Pool, WaitReturnsOnceReady) {
  mp::Pool pool(1);
  auto r = pool.apply_async(sleep_then, 20);
  r.wait();
  EXPECT_TRUE(r.ready());
  EXPECT_TRUE(r.wait(0ms));
  EXPECT_EQ(r.get(0ms), 20);
}

TEST(Pool, TaskExceptionIsRemoteErrorWithTypeAndMessage) {
  mp::Pool pool(2);
  try {
    pool.apply(throws_runtime_error);
    FAIL() << "expected RemoteError";
  } catch (const mp::RemoteError& e) {
    EXPECT_EQ(e.type_name(), "std::runtime_error");
    EXPECT_STREQ(e.what(), "plain failure");
  }
  try {
    pool.apply(throws_int);
    FAIL() << "expected RemoteError";
  } catch (const mp::RemoteError& e) {
    EXPECT_EQ(e.type_name(), "int");
  }
  auto r = pool.apply_async(fails_on_three, 3);
  r.wait();
  EXPECT_FALSE(r.successful());
  EXPECT_THROW(r.get(), mp::RemoteError);
}

TEST(Pool, PoolIsUsableAfterAFailedMap) {
  mp::Pool pool(2);
  try {
    pool.map(fails_on_three, std::views::iota(0, 10), 1);
    FAIL() << "expected RemoteError";
  } catch (const mp::RemoteError& e) {
    EXPECT_EQ(e.type_name(), "(anonymous namespace)::Boom");
    EXPECT_STREQ(e.what(), "three is not allowed");
  }
  EXPECT_EQ(pool.map(square, std::vector<int>{1, 2, 3}), (std::vector<int>{1, 4, 9}));
}

TEST(Pool, WorkerKilledInTaskFailsOnlyThatTask) {
  mp::Pool pool(2);
  auto before = pool.apply_async(square, 3);
  auto lost = pool.apply_async(kill_self, 0);
  try {
    lost.get();
    FAIL() << "expected WorkerLost";
  } catch (const mp::WorkerLost& e) {
    EXPECT_NE(std::string(e.what()).find("signal 9 (SIGKILL)"), std::string::npos) << e.what();
  }
  EXPECT_EQ(before.get(), 9);
  EXPECT_EQ(pool.map(square, std::views::iota(0, 20)).size(), 20u);
}

TEST(Pool, WorkerExitingInTaskFailsOnlyThatTask) {
  mp::Pool pool(1);
  auto lost = pool.apply_async(exit_seven, 0);
  auto after = pool.apply_async(square, 4);
  try {
    lost.get();
    FAIL() << "expected WorkerLost";
  } catch (const mp::WorkerLost& e) {
    EXPECT_NE(std::string(e.what()).find("exited with code 7"), std::string::npos) << e.what();
  }
  EXPECT_EQ(after.get(), 16);
}

TEST(Pool, LostChunkFailsTheWholeMap) {
  mp::Pool pool(2);
  EXPECT_THROW(pool.map([](int x) { return x == 5 ? kill_self(x) : x; }, std::views::iota(0, 10), 2),
               mp::WorkerLost);
  EXPECT_EQ(pool.apply(square, 5), 25);
}

TEST(Pool, TerminateWithManyPendingTasksFailsThemAndReturns) {
  mp::Pool pool(2);
  std::vector<mp::AsyncResult<int>> results;
  for (int i = 0; i < 1000; ++i) results.push_back(pool.apply_async(sleep_then, 50));
  auto big = pool.map_async(sleep_then, std::vector<int>(500, 50), 1);
  pool.terminate();
  int lost = 0;
  for (auto& r : results) {
    ASSERT_TRUE(r.ready());  // terminate() finished every result: none is left hanging
    if (r.successful()) {
      EXPECT_EQ(r.get(), 50);
    } else {
      EXPECT_THROW(r.get(), mp::WorkerLost);
      ++lost;
    }
  }
  EXPECT_GT(lost, 0);
  EXPECT_THROW(big.get(), mp::WorkerLost);
  pool.join();  // after terminate: returns at once
}

TEST(Pool, MaxtasksperchildReplacesWorkers) {
  mp::Pool pool(2, {nullptr, 1});
  std::set<int> pids;
  for (int i = 0; i < 6; ++i) pids.insert(pool.apply(worker_pid_now));
  EXPECT_EQ(pids.size(), 6u);
  mp::Pool lasting(1, {nullptr, 3});
  std::vector<int> sequential;
  for (int i = 0; i < 6; ++i) sequential.push_back(lasting.apply(worker_pid_now));
  EXPECT_EQ(sequential[0], sequential[2]);
  EXPECT_NE(sequential[2], sequential[3]);
  EXPECT_EQ(sequential[3], sequential[5]);
}

TEST(Pool, InitializerRunsInEveryWorkerIncludingReplacements) {
  mp::Pool pool(2, {initializer_sets_value, 2});
  auto values = pool.map(read_initialized, std::vector<int>(20, 0), 1);
  for (int v : values) EXPECT_EQ(v, 1234);
  EXPECT_EQ(initialized_value, 0);  // the parent never ran it
}

TEST(Pool, InitializerThatThrowsFailsTasksInsteadOfHanging) {
  mp::Pool pool(2, {initializer_throws, 0});
  try {
    pool.apply(square, 2);
    FAIL() << "expected RemoteError";
  } catch (const mp::RemoteError& e) {
    EXPECT_EQ(e.type_name(), "std::logic_error");
    EXPECT_NE(std::string(e.what()).find("cannot initialise"), std::string::npos) << e.what();
  }
  EXPECT_THROW(pool.map(square, std::vector<int>{1, 2}), mp::RemoteError);
}

TEST(Pool, ProcessesZeroIsCpuCountAndNegativeIsValueError) {
  mp::Pool pool(0);
  EXPECT_EQ(pool.processes(), mp::detail::pool_cpu_count());
  EXPECT_GE(pool.processes(), 1);
  EXPECT_THROW(mp::Pool(-1), mp::ValueError);
  try {
    mp::Pool bad(-3);
  } catch (const mp::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("-3"), std::string::npos);
  }
}

TEST(Pool, ClosedPoolRefusesWorkAndJoinNeedsClose) {
  mp::Pool pool(1);
  EXPECT_THROW(pool.join(), mp::ValueError);
  auto pending = pool.apply_async(sleep_then, 20);
  pool.close();
  pool.close();  // twice is fine
  EXPECT_THROW(pool.apply(square, 1), mp::ValueError);
  EXPECT_THROW((void)pool.apply_async(square, 1), mp::ValueError);
  EXPECT_THROW(pool.map(square, std::vector<int>{1}), mp::ValueError);
  EXPECT_THROW(pool.map(square, std::vector<int>{}), mp::ValueError);
  EXPECT_THROW((void)pool.imap(square, std::vector<int>{1}), mp::ValueError);
  EXPECT_THROW((void)pool.starmap(add, std::vector<std::pair<int, int>>{}), mp::ValueError);
  pool.join();
  EXPECT_EQ(pending.get(0ms), 20);  // close + join finished the queued task
  pool.join();                      // again: fine
  pool.terminate();                 // after join: fine
}

TEST(Pool, TerminatedPoolRefusesWork) {
  mp::Pool pool(1);
  pool.terminate();
  EXPECT_THROW(pool.apply(square, 1), mp::ValueError);
  pool.join();
}

TEST(Pool, DestructorFinishesSubmittedTasks) {
  std::vector<mp::AsyncResult<int>> results;
  {
    mp::Pool pool(2);
    for (int i = 0; i < 10; ++i) results.push_back(pool.apply_async(sleep_then, 5));
  }
  for (auto& r : results) {
    ASSERT_TRUE(r.ready());
    EXPECT_EQ(r.get(), 5);
  }
}

TEST(Pool, DestructorAfterTerminateDoesNotWait) {
  mp::AsyncResult<int> r = [] {
    mp::Pool pool(1);
    auto result = pool.apply_async(sleep_forever, 0);
    pool.terminate();
    return result;
  }();
  EXPECT_THROW(r.get(), mp::WorkerLost);
}

struct Multiplier {
  int factor;
  int operator()(int x) const { return x * factor; }
};

struct Prefixer {
  std::string prefix;
  std::string operator()(const std::string& s) const { return prefix + s; }
  template <class Archive>
  void serialize(Archive& archive) {
    archive(prefix);
  }
};

TEST(Pool, FunctionObjectsWithState) {
  mp::Pool pool(2);
  EXPECT_EQ(pool.map(Multiplier{3}, std::vector<int>{1, 2}), (std::vector<int>{3, 6}));
  const int offset = 100;
  EXPECT_EQ(pool.apply([offset](int x) { return x + offset; }, 1), 101);
  EXPECT_EQ(pool.map(Prefixer{"mp-"}, std::vector<std::string>{"a", "b"}),
            (std::vector<std::string>{"mp-a", "mp-b"}));
}

TEST(Pool, LargeArgumentsAndResultsTravelIntact) {
  mp::Pool pool(2);
  std::vector<std::vector<int>> blocks(4, std::vector<int>(1 << 18));
  for (std::size_t b = 0; b < blocks.size(); ++b)
    std::iota(blocks[b].begin(), blocks[b].end(), static_cast<int>(b));
  auto reversed = pool.map(
      [](std::vector<int> v) {
        std::reverse(v.begin(), v.end());
        return v;
      },
      blocks, 1);
  ASSERT_EQ(reversed.size(), 4u);
  for (std::size_t b = 0; b < blocks.size(); ++b) {
    std::reverse(blocks[b].begin(), blocks[b].end());
    EXPECT_EQ(reversed[b], blocks[b]);
  }
}

TEST(Pool, ArgumentsAndResultsLargerThanTheRingsHotAreaTravelIntact) {
  // 24 MiB each way: far beyond the task and result rings' hot area, so the
  // pool's put of the task (which never blocks under its lock) and the
  // worker's put of the result stream through the rings.
  mp::Pool pool(1);
  std::vector<int> big(6 << 20);
  std::iota(big.begin(), big.end(), 7);
  const std::vector<int> back = pool.apply([](std::vector<int> v) { return v; }, big);
  EXPECT_EQ(back, big);
}

TEST(Pool, MovedPool) {
  mp::Pool first(1);
  mp::Pool second(std::move(first));
  EXPECT_EQ(second.apply(square, 6), 36);
  EXPECT_THROW(first.apply(square, 1), mp::ValueError);  // NOLINT(bugprone-use-after-move)
}

TEST(Pool, ForkedChildCannotUseTheOwnersPool) {
  mp::Pool pool(1);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    int code = 1;
    try {
      (void)pool.apply(square, 2);
    } catch (const mp::ValueError&) {
      code = 0;
    } catch (...) {
      code = 2;
    }
    ::_exit(code);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_EQ(pool.apply(square, 3), 9);  // the owner's pool is untouched
}

}  // namespace
