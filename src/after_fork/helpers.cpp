// src/after_fork/helpers.cpp — the helpers of after_fork.hpp, written once for
// every piece of code that runs after fork(): mp::Process's child, the fork
// server, the spawn launcher, the Pool's zygote and workers. See after_fork.hpp for which ones are
// async-signal-safe.
#include "after_fork/after_fork.hpp"

#include <cxxabi.h>
#include <signal.h>
#include <stdio_ext.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>
#include <typeinfo>

#include "write_all.hpp"

namespace mp::detail::after_fork {
namespace {

// The parent's pid, for the death-signal handler of a daemon forked from a
// thread other than the main one. Written once before the handler is armed.
volatile sig_atomic_t g_parent_pid = 0;

[[noreturn]] void die_by_sigkill() noexcept {
  ::kill(::getpid(), SIGKILL);
  ::_exit(128 + SIGKILL);  // not reached
}

// The kernel sends PR_SET_PDEATHSIG when the *thread* that forked us exits
// (and again for each later parent thread). Only if the whole parent process is
// gone has getppid() changed: then die as a daemon must. Async-signal-safe.
void on_parent_thread_exit(int /*signal*/) {
  if (::getppid() != static_cast<pid_t>(g_parent_pid)) die_by_sigkill();
}

}  // namespace

void flush_all_output() noexcept {
  try {
    std::cout.flush();
    std::cerr.flush();
    std::clog.flush();
    std::wcout.flush();
    std::wcerr.flush();
    std::wclog.flush();
  } catch (...) {
    // A stream with exceptions() enabled and a failed write: nothing to do here.
  }
  std::fflush(nullptr);
}

void discard_inherited_output() noexcept {
  ::__fpurge(stdout);
  ::__fpurge(stderr);
}

void flush_and_exit(int code) noexcept {
  flush_all_output();
  ::_exit(code);
}

ExceptionText describe_current_exception() noexcept {
  try {
    ExceptionText text;
    const std::type_info* type = abi::__cxa_current_exception_type();
    text.message = "(not derived from std::exception)";
    try {
      throw;
    } catch (const std::exception& error) {
      type = &typeid(error);  // the dynamic type, e.g. mp::ValueError rather than std::exception
      text.message = error.what();
    } catch (...) {
    }
    int status = -1;
    char* demangled =
        type != nullptr ? abi::__cxa_demangle(type->name(), nullptr, nullptr, &status) : nullptr;
    text.type = status == 0 && demangled != nullptr ? demangled
                                                    : (type != nullptr ? type->name() : "unknown exception");
    std::free(demangled);
    return text;
  } catch (...) {
    return {};
  }
}

void print_exception(const char* process_name) noexcept {
  ExceptionText text = describe_current_exception();
  flush_all_output();  // what the child printed before comes first
  if (text.type.empty()) {
    std::fprintf(stderr, "Process %s:\nan exception escaped run() and could not be described\n",
                 process_name);
  } else {
    std::fprintf(stderr, "Process %s:\n%s: %s\n", process_name, text.type.c_str(), text.message.c_str());
  }
}

PidfdResult open_pidfd_or_reap(pid_t pid) noexcept {
  PidfdResult result;
  result.pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (result.pidfd >= 0) return result;
  result.pidfd = -1;
  if (errno == ESRCH) {
    result.already_reaped = true;
    return result;
  }
  // Without a pidfd we could not watch it: take the child down, leave no zombie.
  result.error = errno;
  ::kill(pid, SIGKILL);
  while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
  return result;
}

int send_with_fds(int socket, const void* data, std::size_t size, const int* fds,
                  std::size_t count) noexcept {
  if (count > kMaxFds) return EINVAL;
  iovec iov{const_cast<void*>(data), size};
  msghdr message{};
  message.msg_iov = &iov;
  message.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)];
  if (count > 0) {
    std::memset(control, 0, sizeof control);
    message.msg_control = control;
    message.msg_controllen = CMSG_SPACE(sizeof(int) * count);
    cmsghdr* header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(int) * count);
    std::memcpy(CMSG_DATA(header), fds, sizeof(int) * count);
  }
  for (;;) {
    if (::sendmsg(socket, &message, MSG_NOSIGNAL) >= 0) return 0;
    if (errno != EINTR) return errno;
  }
}

long receive_with_fds(int socket, void* data, std::size_t size, int* fds, std::size_t max,
                      std::size_t* received) noexcept {
  *received = 0;
  iovec iov{data, size};
  msghdr message{};
  message.msg_iov = &iov;
  message.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)];
  message.msg_control = control;
  message.msg_controllen = sizeof control;
  ssize_t n;
  while ((n = ::recvmsg(socket, &message, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {
  }
  if (n < 0) return -1;
  for (cmsghdr* header = CMSG_FIRSTHDR(&message); header != nullptr; header = CMSG_NXTHDR(&message, header)) {
    if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
    const std::size_t carried = (header->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < carried; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(header) + i * sizeof(int), sizeof fd);
      if (*received < max) {
        fds[(*received)++] = fd;
      } else {
        ::close(fd);
      }
    }
  }
  return static_cast<long>(n);
}

int write_all(int fd, iovec* iov, int count) noexcept { return detail::write_all(fd, iov, count); }

int write_all(int fd, const void* data, std::size_t size) noexcept {
  iovec iov{const_cast<void*>(data), size};
  return write_all(fd, &iov, 1);
}

int read_all(int fd, void* data, std::size_t size) noexcept {
  auto* at = static_cast<char*>(data);
  while (size > 0) {
    ssize_t n = ::read(fd, at, size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    if (n == 0) return EPIPE;
    at += n;
    size -= static_cast<std::size_t>(n);
  }
  return 0;
}

void arm_death_signal(pid_t parent, bool forked_on_main_thread) noexcept {
  if (forked_on_main_thread) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  } else {
    g_parent_pid = parent;
    struct sigaction action {};
    action.sa_handler = &on_parent_thread_exit;
    action.sa_flags = SA_RESTART;
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGRTMAX, &action, nullptr);
    sigset_t unblock;
    sigemptyset(&unblock);
    sigaddset(&unblock, SIGRTMAX);
    ::sigprocmask(SIG_UNBLOCK, &unblock, nullptr);
    ::prctl(PR_SET_PDEATHSIG, SIGRTMAX);
  }
  // The race: the parent may have died before prctl; then we were already
  // re-parented and no signal will come.
  if (::getppid() != parent) die_by_sigkill();
}

void hold_death_signal_across_exec() noexcept {
  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, SIGRTMAX);
  ::sigprocmask(SIG_BLOCK, &block, nullptr);
}

bool on_main_thread() noexcept { return ::gettid() == ::getpid(); }

}  // namespace mp::detail::after_fork
