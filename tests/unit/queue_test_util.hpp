// Helpers for the queue tests: children made with a bare fork() (so these
// tests depend on nothing but the queue), and a shared scratch area.
//
// Code between fork() and _exit() lives in run_child(): the body's exceptions
// are caught and turned into exit code 99 (a test then fails on the code).
#pragma once

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <utility>

namespace mp::test {

// fork_child(body): runs body() in a child that then _exit()s with its result
// (an int) or 0 for void; 99 if it threw.
template <class Body>
pid_t fork_child(Body&& body) {
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid != 0) return pid;
  int code = 0;
  try {
    if constexpr (std::is_same_v<decltype(body()), void>) {
      body();
    } else {
      code = static_cast<int>(body());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "child %d: %s\n", ::getpid(), e.what());
    code = 99;
  } catch (...) {
    code = 99;
  }
  std::fflush(nullptr);
  ::_exit(code);
}

// wait_child(pid): the child's exit code, or 128 + signal.
inline int wait_child(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);
}

inline int kill_child(pid_t pid) {
  ::kill(pid, SIGKILL);
  return wait_child(pid);
}

// SharedArray<T>: n zeroed Ts in an anonymous shared mapping (children see
// the parent's writes and vice versa). T must be trivially copyable.
template <class T>
class SharedArray {
 public:
  explicit SharedArray(std::size_t n) : n_(n) {
    void* p = ::mmap(nullptr, bytes(), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) std::abort();
    data_ = static_cast<T*>(p);
  }
  SharedArray(const SharedArray&) = delete;
  SharedArray& operator=(const SharedArray&) = delete;
  ~SharedArray() { ::munmap(data_, bytes()); }
  T& operator[](std::size_t i) { return data_[i]; }
  T* data() { return data_; }
  std::size_t size() const { return n_; }

 private:
  std::size_t bytes() const { return (n_ * sizeof(T) + 4095) & ~std::size_t{4095}; }
  std::size_t n_;
  T* data_;
};

}  // namespace mp::test
