// Fault test (issue 11): under every start method a daemon child dies when the
// process that started it is killed with SIGKILL. Under forkserver the daemon
// is the server's child: the server dies with the starting process
// (PR_SET_PDEATHSIG) and the daemon with the server. Under spawn the death
// signal is armed before exec and survives it. This test is made a subreaper
// so the orphans (the daemon, the server) are re-parented to it and reaped here.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <sstream>
#include <string>

#include "mp/detail/fd.hpp"

extern char** environ;

namespace {

using mp::detail::UniqueFd;

// Runs start_methods_child daemon METHOD; returns its pid and the daemon's.
std::pair<pid_t, pid_t> start_daemon_parent(const std::string& method) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) std::abort();
  UniqueFd read_end(fds[0]);
  UniqueFd write_end(fds[1]);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), 1);
  std::string path = std::string(MP_HELPERS_DIR) + "/start_methods_child";
  std::string mode = "daemon";
  std::string method_copy = method;
  char* argv[] = {path.data(), mode.data(), method_copy.data(), nullptr};
  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, path.c_str(), &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) ADD_FAILURE() << "posix_spawn " << path << ": " << rc;
  write_end.reset();
  std::string text;
  char buffer[256];
  while (text.find("ready\n") == std::string::npos) {
    ssize_t n = ::read(read_end.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
  }
  std::istringstream words(text);
  std::string word;
  int daemon = 0;
  while (words >> word)
    if (word == "daemon") words >> daemon;
  return {pid, static_cast<pid_t>(daemon)};
}

TEST(StartMethodDaemonFault, DaemonsDieWithASigkilledParentUnderEveryMethod) {
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  for (const char* method : {"fork", "forkserver", "spawn"}) {
    auto [parent, daemon] = start_daemon_parent(method);
    ASSERT_GT(daemon, 0) << method << ": the helper did not report its daemon";
    ASSERT_EQ(::kill(daemon, 0), 0) << method << ": the daemon died before its parent";
    ASSERT_EQ(::kill(parent, SIGKILL), 0);
    ASSERT_EQ(::waitpid(parent, nullptr, 0), parent);
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
