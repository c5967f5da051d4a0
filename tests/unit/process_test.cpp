// mp::Process: every member, CPython's test_multiprocessing semantics (exit
// codes, join(timeout), terminate/kill, sentinel, names, daemon, current_process,
// active_children), misuse errors, moves, the subclass style. ~Process, fork
// hygiene, daemons and threads are in process_lifecycle_test.cpp.
// The shared test main checks after every test that no child and no fd leaked.
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/leak_check.hpp"
#include "mp/detail/fd.hpp"
#include "mp/errors.hpp"
#include "mp/process.hpp"
#include "unit/process_test_support.hpp"

namespace {

using namespace std::chrono_literals;
using namespace mp::test;
using mp::detail::UniqueFd;

// ---- names, identity ---------------------------------------------------------

TEST(Process, DefaultNamesCountUp) {
  mp::Process first;
  mp::Process second;
  EXPECT_EQ(first.name().rfind("Process-", 0), 0u) << first.name();
  EXPECT_EQ(number_in_name(second.name()), number_in_name(first.name()) + 1);
}

TEST(Process, SetNameIsWhatTheChildSees) {
  mp::Process p([] { mp::exit(mp::current_process().name() == "mailer" ? 0 : 1); });
  p.set_name("mailer");
  EXPECT_EQ(p.name(), "mailer");
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
}

TEST(Process, CurrentProcessInParentIsMainProcess) {
  EXPECT_EQ(mp::current_process().name(), "MainProcess");
  EXPECT_EQ(mp::current_process().pid(), ::getpid());
}

TEST(Process, CurrentProcessInChildIsTheProcess) {
  mp::Process p;
  std::string expected = p.name();
  mp::Process checker([expected] {
    const mp::ProcessInfo& me = mp::current_process();
    mp::exit(me.name() == expected && me.pid() == ::getpid() ? 0 : 1);
  });
  // The checker is numbered after p.
  EXPECT_EQ(number_in_name(checker.name()), number_in_name(expected) + 1);
  checker.set_name(expected);
  checker.start();
  checker.join();
  EXPECT_EQ(checker.exitcode(), 0);
}

TEST(Process, ChildSeesItselfAliveAndItsOwnPid) {
  mp::Process p;
  mp::Process* self = &p;
  p = mp::Process([self] { mp::exit(self->is_alive() && self->pid() == ::getpid() ? 0 : 1); });
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
}

TEST(Process, GrandchildNameExtendsTheChildsIdentity) {
  mp::Process outer([] {
    std::string parent_name = mp::current_process().name();
    mp::Process inner(
        [parent_name] { mp::exit(mp::current_process().name() == parent_name + ":1" ? 0 : 1); });
    if (inner.name() != parent_name + ":1") mp::exit(2);
    inner.start();
    inner.join();
    mp::exit(*inner.exitcode());
  });
  outer.start();
  outer.join();
  EXPECT_EQ(outer.exitcode(), 0);
}

// ---- before start ------------------------------------------------------------

TEST(Process, BeforeStart) {
  mp::Process p([] {});
  EXPECT_EQ(p.pid(), 0);
  EXPECT_EQ(p.exitcode(), std::nullopt);
  EXPECT_FALSE(p.is_alive());
  EXPECT_FALSE(p.daemon());
  EXPECT_THROW((void)p.sentinel(), mp::ProcessError);
  EXPECT_THROW(p.join(), mp::ProcessError);
  EXPECT_THROW(p.join(1ms), mp::ProcessError);
  EXPECT_THROW(p.terminate(), mp::ProcessError);
  EXPECT_THROW(p.kill(), mp::ProcessError);
  EXPECT_FALSE(contains(mp::active_children(), &p));
}

TEST(Process, JoinBeforeStartSaysSo) {
  mp::Process p;
  try {
    p.join();
    FAIL() << "join() before start() must throw";
  } catch (const mp::ProcessError& e) {
    EXPECT_NE(std::string(e.what()).find("not been started"), std::string::npos) << e.what();
  }
}

// ---- start, join, exit codes -------------------------------------------------

TEST(Process, RunReturningGivesExitCodeZero) {
  mp::Process p([] {});
  p.start();
  EXPECT_GT(p.pid(), 0);
  EXPECT_NE(p.pid(), ::getpid());
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_FALSE(p.is_alive());
  p.join();  // joining again is fine (Python too)
  EXPECT_EQ(p.exitcode(), 0);
}

TEST(Process, DefaultRunWithoutTargetDoesNothing) {
  mp::Process p;
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
}

TEST(Process, ArgumentsAreDecayCopiedAtConstruction) {
  std::string name = "bob";
  int count = 3;
  mp::Process p([](const std::string& who, int n) { mp::exit(who == "bob" && n == 3 ? 0 : 1); }, name, count);
  name = "alice";
  count = 4;
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
}

int add_and_exit(int a, int b) { mp::exit(a + b); }

TEST(Process, FunctionPointerAndMoveOnlyArguments) {
  mp::Process adder(add_and_exit, 2, 5);
  adder.start();
  adder.join();
  EXPECT_EQ(adder.exitcode(), 7);

  auto owned = std::make_unique<int>(42);
  mp::Process p([](std::unique_ptr<int> value) { mp::exit(value && *value == 42 ? 0 : 1); },
                std::move(owned));
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
}

TEST(Process, MpExitCodes) {
  for (int code : {0, 1, 3, 255}) {
    mp::Process p([code] { mp::exit(code); });
    p.start();
    p.join();
    EXPECT_EQ(p.exitcode(), code);
  }
}

TEST(Process, ExceptionPrintsNameTypeAndMessageAndGivesOne) {
  TestPipe err = make_pipe();
  int err_fd = err.write_end.get();
  mp::Process p([err_fd] {
    ::dup2(err_fd, 2);
    throw mp::ValueError("bad value");
  });
  p.start();
  p.join();
  err.write_end.reset();
  EXPECT_EQ(p.exitcode(), 1);
  EXPECT_EQ(read_all(err.read_end.get()), "Process " + p.name() + ":\nmp::ValueError: bad value\n");
}

TEST(Process, NonStandardExceptionIsReportedToo) {
  TestPipe err = make_pipe();
  int err_fd = err.write_end.get();
  mp::Process p([err_fd] {
    ::dup2(err_fd, 2);
    throw 42;
  });
  p.set_name("thrower");
  p.start();
  p.join();
  err.write_end.reset();
  EXPECT_EQ(p.exitcode(), 1);
  EXPECT_EQ(read_all(err.read_end.get()), "Process thrower:\nint: (not derived from std::exception)\n");
}

TEST(Process, JoinWithTimeoutOnLiveChildReturnsFalse) {
  TestPipe go = make_pipe();
  int go_fd = go.read_end.get();
  mp::Process p([go_fd] { mp::exit(read_byte(go_fd) == 'g' ? 0 : 1); });
  p.start();
  EXPECT_FALSE(p.join(0ms));
  EXPECT_FALSE(p.join(10ms));
  EXPECT_TRUE(p.is_alive());
  EXPECT_EQ(p.exitcode(), std::nullopt);
  EXPECT_FALSE(readable_now(p.sentinel()));
  EXPECT_TRUE(contains(mp::active_children(), &p));
  write_text(go.write_end.get(), "g");
  EXPECT_TRUE(p.join(std::chrono::hours(1)));
  EXPECT_EQ(p.exitcode(), 0);
  EXPECT_TRUE(readable_now(p.sentinel()));
  EXPECT_TRUE(p.join(0ms));
  EXPECT_FALSE(p.is_alive());
  EXPECT_FALSE(contains(mp::active_children(), &p));
}

TEST(Process, TerminateGivesMinusSigterm) {
  mp::Process p([] {
    for (;;) ::pause();
  });
  p.start();
  EXPECT_TRUE(p.is_alive());
  p.terminate();
  p.join();
  EXPECT_FALSE(p.is_alive());
  EXPECT_EQ(p.exitcode(), -SIGTERM);
  p.terminate();  // after the end: nothing to do, no error (Python too)
  p.kill();
  EXPECT_EQ(p.exitcode(), -SIGTERM);
}

TEST(Process, KillGivesMinusSigkill) {
  mp::Process p([] {
    ::signal(SIGTERM, SIG_IGN);
    for (;;) ::pause();
  });
  p.start();
  p.kill();
  p.join();
  EXPECT_EQ(p.exitcode(), -SIGKILL);
}

TEST(Process, SentinelBecomesReadableWhenTheChildEnds) {
  TestPipe go = make_pipe();
  int go_fd = go.read_end.get();
  mp::Process p([go_fd] { (void)read_byte(go_fd); });
  p.start();
  int sentinel = p.sentinel();
  EXPECT_GE(sentinel, 0);
  EXPECT_FALSE(readable_now(sentinel));
  write_text(go.write_end.get(), "g");
  EXPECT_EQ(mp::wait({sentinel}), std::vector<int>{sentinel});
  EXPECT_TRUE(readable_now(sentinel));
  EXPECT_TRUE(p.is_alive() == false);
  EXPECT_EQ(p.sentinel(), sentinel);  // stays valid after the end
}

TEST(Process, WaitReturnsOnlyTheEndedProcess) {
  TestPipe go = make_pipe();
  int go_fd = go.read_end.get();
  mp::Process quick([] {});
  mp::Process slow([go_fd] { (void)read_byte(go_fd); });
  slow.start();
  quick.start();
  std::vector<int> fds{slow.sentinel(), quick.sentinel()};
  EXPECT_EQ(mp::wait(fds), std::vector<int>{quick.sentinel()});
  write_text(go.write_end.get(), "g");
  slow.join();
  quick.join();
}

// ---- misuse ------------------------------------------------------------------

TEST(Process, StartTwiceThrows) {
  mp::Process p([] {});
  p.start();
  try {
    p.start();
    FAIL() << "second start() must throw";
  } catch (const mp::ProcessError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot start a process twice"), std::string::npos) << e.what();
  }
  p.join();
  EXPECT_THROW(p.start(), mp::ProcessError);
}

TEST(Process, DaemonFlag) {
  mp::Process p([] {});
  EXPECT_FALSE(p.daemon());
  p.set_daemon(true);
  EXPECT_TRUE(p.daemon());
  p.set_daemon(false);
  EXPECT_FALSE(p.daemon());
  p.set_daemon(true);
  p.start();
  EXPECT_THROW(p.set_daemon(false), mp::ProcessError);
  EXPECT_TRUE(p.daemon());
  p.join();
  EXPECT_EQ(p.exitcode(), 0);
}

TEST(Process, ChildCannotStartJoinOrTestItsParentsProcess) {
  TestPipe go = make_pipe();
  int go_fd = go.read_end.get();
  mp::Process sibling([go_fd] { (void)read_byte(go_fd); });
  sibling.start();
  mp::Process unstarted;
  mp::Process meddler([&sibling, &unstarted] {
    int failures = 0;
    try {
      sibling.join();
      failures |= 1;
    } catch (const mp::ProcessError& e) {
      if (std::string(e.what()).find("can only join a child process") == std::string::npos) failures |= 1;
    }
    try {
      (void)sibling.is_alive();
      failures |= 2;
    } catch (const mp::ProcessError&) {
    }
    try {
      sibling.terminate();
      failures |= 4;
    } catch (const mp::ProcessError&) {
    }
    try {
      unstarted.start();
      failures |= 8;
    } catch (const mp::ProcessError&) {
    }
    try {
      (void)sibling.exitcode();
      failures |= 16;
    } catch (const mp::ProcessError&) {
    }
    if (!mp::active_children().empty()) failures |= 32;  // the parent's children are not the child's
    mp::exit(failures);
  });
  meddler.start();
  meddler.join();
  EXPECT_EQ(meddler.exitcode(), 0);
  EXPECT_TRUE(sibling.is_alive());
  write_text(go.write_end.get(), "g");
  sibling.join();
  EXPECT_EQ(sibling.exitcode(), 0);
}

// ---- active_children and moves -------------------------------------------------

TEST(Process, ActiveChildrenListsStartedLiveChildren) {
  TestPipe go_a = make_pipe();
  TestPipe go_b = make_pipe();
  int a_fd = go_a.read_end.get();
  int b_fd = go_b.read_end.get();
  mp::Process a([a_fd] { (void)read_byte(a_fd); });
  mp::Process b([b_fd] { (void)read_byte(b_fd); });
  EXPECT_TRUE(mp::active_children().empty());
  a.start();
  b.start();
  auto children = mp::active_children();
  EXPECT_EQ(children.size(), 2u);
  EXPECT_TRUE(contains(children, &a));
  EXPECT_TRUE(contains(children, &b));
  write_text(go_a.write_end.get(), "g");
  a.join();
  children = mp::active_children();
  EXPECT_FALSE(contains(children, &a));
  EXPECT_TRUE(contains(children, &b));
  write_text(go_b.write_end.get(), "g");
  b.join();
  EXPECT_TRUE(mp::active_children().empty());
}

TEST(Process, MoveCarriesTheChildAndItsRegistration) {
  TestPipe go = make_pipe();
  int go_fd = go.read_end.get();
  mp::Process a([go_fd] { mp::exit(read_byte(go_fd) == 'g' ? 5 : 1); });
  std::string name = a.name();
  a.start();
  pid_t pid = a.pid();
  int sentinel = a.sentinel();
  mp::Process b(std::move(a));
  EXPECT_EQ(b.pid(), pid);
  EXPECT_EQ(b.sentinel(), sentinel);
  EXPECT_EQ(b.name(), name);
  EXPECT_EQ(a.pid(), 0);  // NOLINT(bugprone-use-after-move): the moved-from state is specified
  EXPECT_THROW(a.start(), mp::ProcessError);
  EXPECT_THROW((void)a.sentinel(), mp::ProcessError);
  auto children = mp::active_children();
  EXPECT_TRUE(contains(children, &b));
  EXPECT_FALSE(contains(children, &a));

  std::vector<mp::Process> many;
  many.push_back(std::move(b));
  for (int i = 0; i < 8; ++i) many.emplace_back([] {});  // reallocations move the started one
  EXPECT_TRUE(contains(mp::active_children(), &many.front()));
  write_text(go.write_end.get(), "g");
  for (auto& p : many)
    if (p.pid() != 0) p.join();
  EXPECT_EQ(many.front().exitcode(), 5);
}

TEST(Process, MoveAssignmentJoinsTheOldChildFirst) {
  TestPipe done = make_pipe();
  int done_fd = done.write_end.get();
  mp::Process p([done_fd] {
    ::usleep(20000);
    write_text(done_fd, "old");
  });
  p.start();
  pid_t old_pid = p.pid();
  p = mp::Process([] { mp::exit(9); });
  EXPECT_EQ(p.pid(), 0);
  EXPECT_EQ(::waitpid(old_pid, nullptr, WNOHANG), -1);  // already reaped
  done.write_end.reset();
  EXPECT_EQ(read_all(done.read_end.get()), "old");
  p.start();
  p.join();
  EXPECT_EQ(p.exitcode(), 9);
}

// ---- subclass style -----------------------------------------------------------

class Counter : public mp::Process {
 public:
  explicit Counter(int limit) : limit_(limit) {}

 protected:
  void run() override {
    int sum = 0;
    for (int i = 1; i <= limit_; ++i) sum += i;
    mp::exit(sum);
  }

 private:
  int limit_;
};

TEST(Process, SubclassOverridesRun) {
  Counter counter(10);
  EXPECT_EQ(counter.name().rfind("Process-", 0), 0u);
  counter.start();
  counter.join();
  EXPECT_EQ(counter.exitcode(), 55);
}

}  // namespace
