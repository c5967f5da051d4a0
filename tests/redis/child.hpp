// tests/redis/child.hpp — forked children for the Redis tests.
//
// spawn(fn): fork; the child runs fn() and _exits with its result (2 if it
// threw, after printing what). The child never returns into GoogleTest and
// never runs the parent's atexit handlers. Everything between fork() and
// _exit() is in this file.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <exception>
#include <functional>

namespace mp::test {

inline pid_t spawn(const std::function<int()>& body) {
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    int code = 2;
    try {
      code = body();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child %d: %s\n", static_cast<int>(::getpid()), e.what());
    } catch (...) {
      std::fprintf(stderr, "child %d: unknown exception\n", static_cast<int>(::getpid()));
    }
    std::fflush(nullptr);
    ::_exit(code);
  }
  return pid;
}

// wait_exit(pid): the child's exit code, or 128+signal.
inline int wait_exit(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

inline void kill_and_reap(pid_t pid) {
  ::kill(pid, SIGKILL);
  (void)wait_exit(pid);
}

}  // namespace mp::test
