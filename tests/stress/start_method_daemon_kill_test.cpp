// Fault test (issue 11): under every start method a daemon child dies when the
// process that started it is killed with SIGKILL. Under forkserver the daemon
// is the server's child: the server dies with the starting process
// (PR_SET_PDEATHSIG) and the daemon with the server. Under spawn the death
// signal is armed before exec and survives it. This test is made a subreaper
// so the orphans (the daemon, the server) are re-parented to it and reaped here.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <sstream>
#include <string>

#include "support/program.hpp"

namespace {

// The daemon's pid, from "daemon <pid>" in what start_methods_child printed.
pid_t daemon_of(const std::string& text) {
  std::istringstream words(text);
  std::string word;
  int daemon = 0;
  while (words >> word)
    if (word == "daemon") words >> daemon;
  return static_cast<pid_t>(daemon);
}

TEST(StartMethodDaemonFault, DaemonsDieWithASigkilledParentUnderEveryMethod) {
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  for (const char* method : {"fork", "forkserver", "spawn"}) {
    mp::test::SpawnedProgram parent({MP_HELPERS_DIR "/start_methods_child", "daemon", method});
    const pid_t daemon = daemon_of(parent.read_until("ready\n"));
    ASSERT_GT(daemon, 0) << method << ": the helper did not report its daemon";
    ASSERT_EQ(::kill(daemon, 0), 0) << method << ": the daemon died before its parent";
    ASSERT_EQ(::kill(parent.pid(), SIGKILL), 0);
    ASSERT_EQ(parent.wait(), -SIGKILL);
    // Everything it left (the daemon, the fork server) is ours now; each must
    // end by SIGKILL. ctest's timeout catches a survivor.
    bool daemon_seen = false;
    for (;;) {
      int status = 0;
      const pid_t ended = ::waitpid(-1, &status, 0);
      if (ended < 0 && errno == EINTR) continue;
      if (ended < 0) break;  // ECHILD: all reaped
      if (ended == daemon) {
        daemon_seen = true;
        EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << method;
      }
    }
    EXPECT_TRUE(daemon_seen) << method << ": the daemon was not re-parented here";
  }
  ::prctl(PR_SET_CHILD_SUBREAPER, 0);
}

}  // namespace
