// tests/support/child.hpp — the one way tests run code in a forked child and
// reap it.
//
//   pid_t pid = mp::test::fork_child([&] { return q.get() == 7 ? 0 : 1; });
//   EXPECT_EQ(mp::test::wait_child(pid), 0);
//
// Exit codes follow Process::exitcode(): N for a child that exited with N, -S
// for one killed by signal S. A body that throws exits with kChildThrew (its
// message on stderr). Bodies report through their exit code, never with gtest
// assertions: the child's gtest state is a copy that nobody reads.
//
// All code that runs between fork() and _exit() in the tests that use this
// header is in fork_child(): the child leaves with _exit(), so it runs no
// atexit handler, no gtest teardown and no static destructor. The parent
// flushes stdio before fork(), so the child inherits empty buffers and nothing
// is printed twice (the tests that use this are single-threaded at the fork).
#pragma once

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <thread>
#include <type_traits>
#include <utility>

namespace mp::test {

// The exit code of a child whose body threw.
inline constexpr int kChildThrew = 99;
// What wait_child() returns when there is no such child to reap (a test bug:
// reaped twice, or never a child of this process).
inline constexpr int kNoSuchChild = -1000;

// fork_child(body): runs body() in a forked child that then _exit()s with its
// result (an int, or 0 for a void body; kChildThrew if it threw). Returns the
// child's pid; aborts the test process if fork() fails.
template <class Body>
pid_t fork_child(Body&& body) {
  std::fflush(nullptr);  // what the test printed before the fork is printed once, here
  const pid_t pid = ::fork();
  if (pid < 0) std::abort();
  if (pid != 0) return pid;
  int code = 0;
  try {
    if constexpr (std::is_void_v<decltype(body())>) {
      body();
    } else {
      code = static_cast<int>(body());
    }
  } catch (const std::exception& error) {
    std::fprintf(stderr, "child %d: %s\n", static_cast<int>(::getpid()), error.what());
    code = kChildThrew;
  } catch (...) {
    code = kChildThrew;
  }
  std::fflush(nullptr);  // the child's own output
  ::_exit(code);
}

// wait_child(pid): reaps the child; its exit status, -signal if a signal
// killed it, kNoSuchChild if there is nothing to reap. Retries only EINTR.
inline int wait_child(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return kNoSuchChild;
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return kNoSuchChild;
}

// kill_child(pid): SIGKILL, then reap; returns wait_child().
inline int kill_child(pid_t pid) {
  ::kill(pid, SIGKILL);
  return wait_child(pid);
}

// eventually(predicate): polls until true; false after 20 s. For waiting on
// another party's progress, never for timing claims.
template <class Predicate>
bool eventually(Predicate predicate) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!predicate()) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// SharedArray<T>: n zeroed Ts in an anonymous shared mapping, so children see
// the parent's writes and the parent sees theirs. T must be trivially copyable.
template <class T>
class SharedArray {
  static_assert(std::is_trivially_copyable_v<T>);

 public:
  explicit SharedArray(std::size_t n) : size_(n) {
    void* p = ::mmap(nullptr, bytes(), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) std::abort();
    data_ = static_cast<T*>(p);
  }
  SharedArray(const SharedArray&) = delete;
  SharedArray& operator=(const SharedArray&) = delete;
  ~SharedArray() { ::munmap(data_, bytes()); }
  T& operator[](std::size_t i) { return data_[i]; }
  T* data() { return data_; }
  [[nodiscard]] std::size_t size() const { return size_; }

 private:
  [[nodiscard]] std::size_t bytes() const { return (size_ * sizeof(T) + 4095) & ~std::size_t{4095}; }
  std::size_t size_;
  T* data_;
};

}  // namespace mp::test
