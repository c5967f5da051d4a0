// PoolOptions::start_method: a Pool whose zygote is started by mp's fork
// server (in this test process: no mp::init, so the server starts on first
// use, from the pool's supervisor thread, as a fresh run of this binary: its
// code addresses differ, so tasks are relocated), and spawn's refusal without
// mp::init. Pools under spawn, from a busy program, and the owner's SIGKILL
// are tested through the helper program pool_start_methods (stress suite and
// PoolStartMethodsProgram below).
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <chrono>

#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "mp/context.hpp"
#include "mp/detail/launch.hpp"
#include "mp/errors.hpp"
#include "mp/pool.hpp"
#include "support/pool_tasks.hpp"
#include "support/process_tree.hpp"
#include "unit/process_test_support.hpp"

namespace {

using namespace std::chrono_literals;
using namespace mp::test::tasks;
using mp::test::count_of;
using mp::test::parent_of;
using mp::test::run_helper;

int add(int a, int b) { return a + b; }
int worker_parent(int) { return static_cast<int>(::getppid()); }

mp::PoolOptions under(mp::StartMethod method) {
  mp::PoolOptions options;
  options.start_method = method;
  return options;
}

// Each test leaves no fork server behind (the leak check counts children and fds).
class PoolForkserver : public ::testing::Test {
 protected:
  void TearDown() override { mp::detail::stop_forkserver(); }
};

TEST_F(PoolForkserver, MapStarmapApplyImapRun) {
  mp::Pool pool(2, under(mp::StartMethod::forkserver));
  std::vector<int> items;
  for (int i = 0; i < 100; ++i) items.push_back(i);
  const std::vector<int> squares = pool.map(square, items);
  ASSERT_EQ(squares.size(), items.size());
  for (int i = 0; i < 100; ++i) EXPECT_EQ(squares[static_cast<std::size_t>(i)], i * i);
  EXPECT_EQ(pool.starmap(add, std::vector<std::pair<int, int>>{{1, 2}, {3, 4}}), (std::vector<int>{3, 7}));
  EXPECT_EQ(pool.apply([](int x) { return x + 1; }, 41), 42);
  std::vector<int> streamed;
  for (int value : pool.imap(square, std::vector<int>{1, 2, 3})) streamed.push_back(value);
  EXPECT_EQ(streamed, (std::vector<int>{1, 4, 9}));
  pool.close();
  pool.join();
}

TEST_F(PoolForkserver, ZygoteIsTheServersChildNotOurs) {
  mp::Pool pool(1, under(mp::StartMethod::forkserver));
  const pid_t zygote = pool.apply(worker_parent, 0);
  EXPECT_NE(zygote, ::getpid());
  const pid_t server = parent_of(zygote);
  EXPECT_NE(server, ::getpid());
  EXPECT_EQ(parent_of(server), ::getpid());  // the fork server is ours
}

TEST_F(PoolForkserver, InitializerRunsInEveryWorker) {
  mp::PoolOptions options = under(mp::StartMethod::forkserver);
  options.initializer = initialize;
  options.maxtasksperchild = 1;  // replacements run it too
  mp::Pool pool(2, options);
  EXPECT_EQ(pool.map(read_initialized, std::vector<int>(6, 0), 1), std::vector<int>(6, 7));
}

TEST_F(PoolForkserver, MaxtasksperchildReplacesWorkers) {
  mp::PoolOptions options = under(mp::StartMethod::forkserver);
  options.maxtasksperchild = 1;
  mp::Pool pool(2, options);
  const std::vector<int> pids = pool.map(worker_pid, std::vector<int>(6, 0), 1);
  EXPECT_EQ(std::set<int>(pids.begin(), pids.end()).size(), 6u);
}

TEST_F(PoolForkserver, TaskTimeoutKillsAndReplacesTheWorker) {
  mp::PoolOptions options = under(mp::StartMethod::forkserver);
  options.task_timeout = 300ms;
  mp::Pool pool(1, options);
  EXPECT_THROW(pool.apply(sleep_forever, 0), mp::TaskTimeout);
  EXPECT_EQ(pool.apply(square, 5), 25);
}

TEST_F(PoolForkserver, KilledWorkerFailsItsTaskAndIsReplaced) {
  mp::Pool pool(2, under(mp::StartMethod::forkserver));
  try {
    pool.apply(die_inside, 0);
    FAIL() << "the task survived its worker";
  } catch (const mp::WorkerLost& e) {
    EXPECT_NE(std::string(e.what()).find("killed by signal 9"), std::string::npos) << e.what();
  }
  EXPECT_EQ(pool.map(square, std::vector<int>{1, 2, 3}, 1), (std::vector<int>{1, 4, 9}));
}

TEST_F(PoolForkserver, TerminateFailsWhatRuns) {
  mp::Pool pool(1, under(mp::StartMethod::forkserver));
  EXPECT_EQ(pool.apply(square, 3), 9);
  auto stuck = pool.apply_async(sleep_forever, 0);
  pool.terminate();
  EXPECT_THROW(stuck.get(), mp::WorkerLost);
}

TEST_F(PoolForkserver, ZygoteKilledFailsEverythingAndNothingHangs) {
  mp::Pool pool(1, under(mp::StartMethod::forkserver));
  const pid_t zygote = pool.apply(worker_parent, 0);
  auto stuck = pool.apply_async(sleep_forever, 0);
  ASSERT_EQ(::kill(zygote, SIGKILL), 0);
  try {
    stuck.get();
    FAIL() << "the task survived its zygote";
  } catch (const mp::WorkerLost& e) {
    EXPECT_NE(std::string(e.what()).find("zygote, pid " + std::to_string(zygote) + ") died of signal 9"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(pool.apply(square, 3), mp::WorkerLost);
}

TEST(PoolSpawn, WithoutInitIsRefusedSayingWhy) {
  try {
    mp::Pool pool(1, under(mp::StartMethod::spawn));
    FAIL() << "a spawn pool started without mp::init";
  } catch (const mp::ProcessError& e) {
    EXPECT_NE(std::string(e.what()).find("mp::init"), std::string::npos) << e.what();
  }
}

// ---- through the helper program pool_start_methods (it calls mp::init) ----------------------

TEST(PoolStartMethodsProgram, PoolsWorkFromABusyProgramUnderForkserverAndSpawn) {
  for (const char* method : {"forkserver", "spawn"}) {
    std::string output;
    std::string errors;
    const int status = run_helper("pool_start_methods", {"busy", method}, output, &errors);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << method << ": " << output << errors;
    EXPECT_EQ(output,
              "map ok\napply ok\nimap ok\ninitializer ok\nmaxtasksperchild ok\ntimeout ok\n"
              "worker lost ok\nterminate ok\n")
        << method << ": " << errors;
    EXPECT_EQ(count_of(errors, "mp: warning"), 0u) << method << ": " << errors;
  }
}

TEST(PoolStartMethodsProgram, RepeatedPoolsLeaveNoFdsAndNothingInDevShm) {
  for (const char* method : {"forkserver", "spawn"}) {
    std::string output;
    const int status = run_helper("pool_start_methods", {"repeat", method}, output);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << method << ": " << output;
    EXPECT_EQ(output, "fds +0 shm +0\n") << method;
  }
}

TEST(PoolStartMethodsProgram, ForkPoolInAThreadedProgramWarnsOnceUnlessChosen) {
  for (const char* mode : {"fork_default", "fork_chosen"}) {
    std::string output;
    std::string errors;
    const int status = run_helper("pool_start_methods", {mode, "fork"}, output, &errors);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << mode << ": " << output << errors;
    EXPECT_EQ(count_of(errors, "mp: warning"), std::string(mode) == "fork_default" ? 1u : 0u)
        << mode << ": " << errors;
  }
}

}  // namespace
