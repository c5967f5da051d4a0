// Start methods (mp/context.hpp): every Process member under forkserver in
// this test process (no mp::init: the server starts on first use), spawn's
// refusal without init(), and, through the helper program start_methods_child
// (which calls mp::init), spawn and forkserver children of a program, the
// memory they see, registered subclasses, parent_process() and the exception
// report; the fork-with-threads warning (helper fork_warning).
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/leak_check.hpp"
#include "mp/context.hpp"
#include "mp/errors.hpp"
#include "mp/event.hpp"
#include "mp/process.hpp"
#include "mp/wait.hpp"
#include "unit/process_test_support.hpp"

namespace {

using namespace std::chrono_literals;
using namespace mp::test;
constexpr auto kForkserver = mp::StartMethod::forkserver;

void exit_with(int code) { mp::exit(code); }
void sleep_forever() {
  for (;;) ::pause();
}
void do_nothing() {}
void throw_value_error() { throw mp::ValueError("bad thing"); }

// Each test leaves no server behind (the leak check counts children and fds).
class ForkServer : public ::testing::Test {
 protected:
  void TearDown() override { mp::detail::stop_forkserver(); }
};

TEST_F(ForkServer, FunctionPointerWithArgumentGivesItsExitCode) {
  mp::Process p(kForkserver, exit_with, 7);
  p.start();
  EXPECT_GT(p.pid(), 0);
  EXPECT_NE(p.pid(), ::getpid());
  p.join();
  EXPECT_EQ(p.exitcode(), 7);
  EXPECT_FALSE(p.is_alive());
}

TEST_F(ForkServer, LambdaWithCodecArguments) {
  mp::Process p(
      kForkserver, [](std::string s, std::vector<int> v) { mp::exit(static_cast<int>(s.size() + v.size())); },
      std::string("hello"), std::vector<int>{1, 2});
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 7);
}

TEST_F(ForkServer, ReturnGivesZeroExceptionGivesOne) {
  mp::Process returns(kForkserver, do_nothing);
  mp::Process throws(kForkserver, throw_value_error);
  returns.start();
  throws.start();
  returns.join();
  throws.join();
  EXPECT_EQ(returns.exitcode(), 0);
  EXPECT_EQ(throws.exitcode(), 1);
}

TEST_F(ForkServer, JoinTimeoutTerminateAndKill) {
  mp::Process terminated(kForkserver, sleep_forever);
  mp::Process killed(kForkserver, sleep_forever);
  terminated.start();
  killed.start();
  EXPECT_TRUE(terminated.is_alive());
  EXPECT_FALSE(terminated.join(20ms));
  EXPECT_EQ(terminated.exitcode(), std::nullopt);
  terminated.terminate();
  killed.kill();
  EXPECT_TRUE(terminated.join(60s));
  killed.join();
  EXPECT_EQ(terminated.exitcode(), -SIGTERM);
  EXPECT_EQ(killed.exitcode(), -SIGKILL);
  EXPECT_FALSE(killed.is_alive());
  killed.kill();  // ended: a no-op, as under fork
}

TEST_F(ForkServer, SentinelWorksWithWait) {
  mp::Process p(kForkserver, sleep_forever);
  p.start();
  EXPECT_TRUE(mp::wait(std::vector<int>{p.sentinel()}, 0ms).empty());
  p.kill();
  auto ready = mp::wait(std::vector<int>{p.sentinel()}, 60s);
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0], p.sentinel());
  p.join();
  EXPECT_EQ(p.exitcode(), -SIGKILL);
}

TEST_F(ForkServer, ChildKnowsItsNameItsPidAndItsParent) {
  mp::Process p(
      kForkserver,
      [](std::string expected_name, int parent_pid) {
        const auto& me = mp::current_process();
        auto parent = mp::parent_process();
        const bool ok = me.name() == expected_name && me.pid() == ::getpid() && parent &&
                        parent->pid() == parent_pid && parent->name() == "MainProcess";
        mp::exit(ok ? 0 : 3);
      },
      std::string("worker-x"), static_cast<int>(::getpid()));
  p.set_name("worker-x");
  // The name travels as the Process's name at start(); the argument was fixed above.
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_EQ(mp::parent_process(), std::nullopt);
}

struct NotRegistered : mp::Process {
  void run() override {}
};

TEST_F(ForkServer, UnregisteredSubclassRaisesProcessErrorSayingWhy) {
  mp::set_start_method(kForkserver, true);
  NotRegistered p;
  try {
    p.start();
    FAIL() << "an unregistered subclass started under forkserver";
  } catch (const mp::ProcessError& error) {
    EXPECT_NE(std::string(error.what()).find("MP_REGISTER_PROCESS("), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("NotRegistered)"), std::string::npos) << error.what();
  }
  mp::set_start_method(mp::StartMethod::fork, true);
}

TEST_F(ForkServer, TargetThatCannotTravelRaisesProcessErrorUnderTheDefaultMethod) {
  mp::set_start_method(kForkserver, true);
  std::string captured = "state the child would need";
  mp::Process p([captured] { mp::exit(static_cast<int>(captured.size())); });
  EXPECT_THROW(p.start(), mp::ProcessError);
  mp::set_start_method(mp::StartMethod::fork, true);
}

TEST_F(ForkServer, DestructorTerminatesARunningDaemon) {
  pid_t pid = 0;
  {
    mp::Process p(kForkserver, sleep_forever);
    p.set_daemon(true);
    p.start();
    pid = p.pid();
  }
  EXPECT_NE(::kill(pid, 0), 0);  // reaped by the server: gone
}

TEST_F(ForkServer, NoFdGrowthOver200Starts) {
  {
    mp::Process first(kForkserver, do_nothing);
    first.start();
    first.join();
  }
  const std::size_t before = mp::test::take_snapshot().fds.size();
  for (int i = 0; i < 200; ++i) {
    mp::Process p(kForkserver, exit_with, i % 7);
    p.start();
    p.join();
    ASSERT_EQ(p.exitcode(), i % 7);
  }
  EXPECT_EQ(mp::test::take_snapshot().fds.size(), before);
}

TEST_F(ForkServer, FirstUseWhileThreadsRunReRunsTheProgram) {
  std::promise<void> stop;
  std::thread other([done = stop.get_future()] { done.wait(); });
  mp::Process p(kForkserver, exit_with, 5);
  p.start();
  p.join();
  stop.set_value();
  other.join();
  EXPECT_EQ(p.exitcode(), 5);
}

// handles_sigrtmax(pid): /proc/PID/status lists a handler for SIGRTMAX (SigCgt).
bool handles_sigrtmax(pid_t pid) {
  FILE* status = std::fopen(("/proc/" + std::to_string(pid) + "/status").c_str(), "r");
  if (status == nullptr) return false;
  char line[256];
  unsigned long long caught = 0;
  while (std::fgets(line, sizeof line, status) != nullptr)
    if (std::sscanf(line, "SigCgt: %llx", &caught) == 1) break;
  std::fclose(status);
  return ((caught >> (SIGRTMAX - 1)) & 1) != 0;
}

// The child: once told, exits 0 if its parent (the fork server) still
// handles its death signal, 3 if not.
void check_server_after(mp::Event go) {
  if (!go.wait(30s)) mp::exit(4);
  mp::exit(handles_sigrtmax(::getppid()) ? 0 : 3);
}

// Regression: a server re-run (exec) from a thread other than the main one
// lost the SIGRTMAX handler of its death signal across exec, so it died (the
// default action) when that thread exited, and its children's exit codes
// were lost.
TEST_F(ForkServer, StartedFromAShortLivedThreadOutlivesThatThread) {
  mp::Event go;
  std::unique_ptr<mp::Process> p;
  std::thread starter([&] {  // the first use, with two threads: the server is a re-run
    p = std::make_unique<mp::Process>(kForkserver, check_server_after, go);
    p->start();
  });
  starter.join();  // the starting thread is gone: the death signal was sent (or is on its way)
  go.set();
  p->join();
  EXPECT_EQ(p->exitcode(), 0);
}

TEST(Spawn, WithoutInitRaisesProcessErrorSayingWhy) {
  mp::Process p(mp::StartMethod::spawn, exit_with, 1);
  try {
    p.start();
    FAIL() << "spawn started without mp::init";
  } catch (const mp::ProcessError& error) {
    EXPECT_NE(std::string(error.what()).find("mp::init"), std::string::npos) << error.what();
  }
}

TEST(StartMethods, DefaultIsForkAndAllThreeExist) {
  EXPECT_EQ(mp::get_start_method(), mp::StartMethod::fork);
  EXPECT_EQ(mp::get_all_start_methods(),
            (std::vector<mp::StartMethod>{mp::StartMethod::fork, mp::StartMethod::forkserver,
                                          mp::StartMethod::spawn}));
}

TEST(StartMethods, ChangingAfterAStartNeedsForce) {
  mp::Process p(do_nothing);
  p.start();
  p.join();
  EXPECT_THROW(mp::set_start_method(kForkserver), mp::ProcessError);
  mp::set_start_method(kForkserver, true);
  EXPECT_EQ(mp::get_start_method(), kForkserver);
  mp::set_start_method(mp::StartMethod::fork, true);
}

// ---- through a program that calls mp::init ----------------------------------------

std::string run_child_program(const std::string& mode, const std::string& method,
                              std::string* errors = nullptr) {
  std::string output;
  int status = run_helper("start_methods_child", {mode, method}, output, errors);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << mode << " " << method << ": " << output;
  return output;
}

TEST(StartMethodsProgram, SpawnAndForkserverChildrenDoNotSeeMemoryChangedAfterInitForkDoes) {
  EXPECT_EQ(run_child_program("memory", "fork"), "exitcode 42\n");
  EXPECT_EQ(run_child_program("memory", "forkserver"), "exitcode 0\n");
  EXPECT_EQ(run_child_program("memory", "spawn"), "exitcode 0\n");
}

TEST(StartMethodsProgram, ArgumentsTravelUnderEveryMethod) {
  for (const char* method : {"fork", "forkserver", "spawn"})
    EXPECT_EQ(run_child_program("args", method), "exitcode 7\n") << method;
}

TEST(StartMethodsProgram, RegisteredSubclassRunsWithItsFields) {
  for (const char* method : {"fork", "forkserver", "spawn"})
    EXPECT_EQ(run_child_program("subclass", method), "exitcode 25\n") << method;
}

TEST(StartMethodsProgram, ParentProcessInTheChild) {
  for (const char* method : {"fork", "forkserver", "spawn"})
    EXPECT_EQ(run_child_program("parent", method), "exitcode 0\n") << method;
}

TEST(StartMethodsProgram, ExceptionIsReportedAsUnderFork) {
  for (const char* method : {"fork", "forkserver", "spawn"}) {
    std::string errors;
    EXPECT_EQ(run_child_program("exception", method, &errors), "exitcode 1\n") << method;
    EXPECT_NE(errors.find("Process Process-1:\nmp::ValueError: bad thing\n"), std::string::npos)
        << method << ": " << errors;
  }
}

TEST(StartMethodsProgram, ForkWithThreadsWarnsOnceNamingForkserver) {
  std::string output;
  std::string errors;
  int status = run_helper("fork_warning", {"threads"}, output, &errors);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << errors;
  EXPECT_EQ(count_of(errors, "mp: warning"), 1u) << errors;
  EXPECT_NE(errors.find("forkserver"), std::string::npos) << errors;
}

TEST(StartMethodsProgram, NoWarningWhenForkWasChosenOrNoThreadRuns) {
  for (const char* mode : {"explicit", "quiet"}) {
    std::string output;
    std::string errors;
    int status = run_helper("fork_warning", {mode}, output, &errors);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << errors;
    EXPECT_EQ(errors, "") << mode;
  }
}

}  // namespace
