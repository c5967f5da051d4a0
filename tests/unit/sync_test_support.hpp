// tests/unit/sync_test_support.hpp — small helpers for the synchronisation and
// shared-value tests: run a function in a forked child, reap it, kill it.
//
// All code that runs between fork() and _exit() in these tests is here: the
// child runs the given body, turns an escaping exception into exit code 99,
// and leaves with _exit() (no atexit handlers, no gtest teardown, no static
// destructors). Bodies report failures through their exit code, never with
// gtest assertions (the child's gtest state is not the parent's).
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <thread>

namespace mp::test {

// fork_child(body): runs `int body()` in a child process; returns its pid.
inline pid_t fork_child(const std::function<int()>& body) {
  std::fflush(nullptr);  // nothing buffered is printed twice
  pid_t pid = ::fork();
  if (pid == 0) {
    int code = 99;
    try {
      code = body();
    } catch (...) {
      code = 99;
    }
    ::_exit(code);
  }
  return pid;
}

// exit_code(pid): reaps it; the exit status, or -signal if killed.
inline int exit_code(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return -1000;
}

// kill_and_reap(pid): SIGKILL, then reap; returns exit_code().
inline int kill_and_reap(pid_t pid) {
  ::kill(pid, SIGKILL);
  return exit_code(pid);
}

// eventually(predicate): polls until true (gives up after 20 s, returning
// false). For waiting on another party's progress, never for timing claims.
template <class Predicate>
bool eventually(Predicate predicate) {
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!predicate()) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

}  // namespace mp::test
