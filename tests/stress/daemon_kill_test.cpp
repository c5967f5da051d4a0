// Fault test: daemon children die with their parent even when the parent is
// killed with SIGKILL (no atexit hook, no destructor runs): the kernel's
// PR_SET_PDEATHSIG does it. This test is made a subreaper so the orphaned
// daemons are re-parented to it and can be watched and reaped here.
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "mp/detail/fd.hpp"
#include "support/program.hpp"

namespace {

using mp::detail::UniqueFd;

// Reads "daemon <pid> alive|dead" lines up to "ready"; a dead one is reported
// as pid 0 (the helper saw it end while it was still alive itself).
std::vector<pid_t> read_daemon_pids(mp::test::SpawnedProgram& helper) {
  std::istringstream lines(helper.read_until("ready\n"));
  std::vector<pid_t> pids;
  std::string word;
  while (lines >> word)
    if (word == "daemon") {
      int pid = 0;
      std::string state;
      lines >> pid >> state;
      pids.push_back(state == "alive" ? pid : 0);
    }
  return pids;
}

TEST(DaemonFault, DaemonsDieWithinOneSecondOfTheirParentsSigkill) {
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  mp::test::SpawnedProgram helper({MP_HELPERS_DIR "/daemon_parent", "3"});
  std::vector<pid_t> daemons = read_daemon_pids(helper);
  ASSERT_EQ(daemons.size(), 4u);  // 3 from the main thread, 1 from an exited thread
  // Each daemon was alive while its parent lived (the thread-started one too).
  for (pid_t pid : daemons) ASSERT_NE(pid, 0) << "a daemon died before its parent";

  ASSERT_EQ(::kill(helper.pid(), SIGKILL), 0);
  ASSERT_EQ(helper.wait(), -SIGKILL);

  // The daemons are orphans re-parented to us now; each must end within 1 s.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  for (pid_t pid : daemons) {
    UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    ASSERT_TRUE(pidfd.valid()) << "pidfd_open " << pid << ": errno " << errno;
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd entry{pidfd.get(), POLLIN, 0};
    int ready = ::poll(&entry, 1, static_cast<int>(std::max<long>(left.count(), 0)));
    EXPECT_EQ(ready, 1) << "daemon " << pid << " still alive 1 s after its parent was killed";
    if (ready != 1) ::kill(pid, SIGKILL);  // do not leave it behind
    int daemon_status = 0;
    ASSERT_EQ(::waitpid(pid, &daemon_status, 0), pid);
    EXPECT_TRUE(WIFSIGNALED(daemon_status) && WTERMSIG(daemon_status) == SIGKILL) << pid;
  }
  ::prctl(PR_SET_CHILD_SUBREAPER, 0);
}

TEST(DaemonFault, RepeatedParentKills) {
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  for (int round = 0; round < 10; ++round) {
    mp::test::SpawnedProgram helper({MP_HELPERS_DIR "/daemon_parent", "2"});
    std::vector<pid_t> daemons = read_daemon_pids(helper);
    ASSERT_EQ(daemons.size(), 3u);
    for (pid_t pid : daemons) ASSERT_NE(pid, 0) << "a daemon died before its parent";
    ASSERT_EQ(::kill(helper.pid(), SIGKILL), 0);
    ASSERT_EQ(helper.wait(), -SIGKILL);
    for (pid_t pid : daemons) {
      int daemon_status = 0;
      ASSERT_EQ(::waitpid(pid, &daemon_status, 0), pid);  // ctest's timeout catches a survivor
      EXPECT_TRUE(WIFSIGNALED(daemon_status) && WTERMSIG(daemon_status) == SIGKILL) << pid;
    }
  }
  ::prctl(PR_SET_CHILD_SUBREAPER, 0);
}

}  // namespace
