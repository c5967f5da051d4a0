// src/child_after_fork.cpp — THE code that runs between fork() and _exit().
//
// Every line mp runs in a freshly forked child lives in this file (STYLE rule
// 7): spawn_child() forks, and the child branch never returns from here; it
// leaves through finish_and_exit() -> _exit(). Rules for this file:
//  - nothing throws out of it: the user's body runs inside try/catch and every
//    function is noexcept;
//  - before the body runs, only async-signal-safe calls and no allocation:
//    prctl, sigaction, sigprocmask, getppid, kill, and plain stores into the
//    child's own copy of mp's process table (whose mutex the parent held across
//    fork(), so the copy is consistent: INV1 in process_table.hpp);
//  - after the body, the child is an ordinary single-threaded program again
//    (the user's code already ran there): reporting an exception, reaping the
//    child's own children and flushing streams may allocate and lock.
#include <cxxabi.h>
#include <signal.h>
#include <stdio_ext.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <mutex>
#include <typeinfo>

#include "mp/detail/spawn.hpp"
#include "mp/process.hpp"
#include "process_table.hpp"

namespace mp {
namespace detail {
namespace {

// The parent's pid, for the death-signal handler of a daemon forked from a
// thread other than the main one. Written once before the handler is armed.
volatile sig_atomic_t g_parent_pid = 0;

// flush_all_output(): C stdio and the standard iostreams (which have buffers of
// their own after std::ios::sync_with_stdio(false)). Called in the parent before
// fork() (so the child does not inherit pending output) and in the child before
// _exit() (so its output is not lost).
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

// arm_death_signal(parent, forked_on_main_thread): a daemon dies with its
// parent process, even when that is SIGKILLed (see process.hpp "Daemons").
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

// report_exception(name): in a catch handler: "Process <name>:\n<type>: <what>".
void report_exception(const char* name) noexcept {
  try {
    const std::type_info* type = abi::__cxa_current_exception_type();
    const char* what = "(not derived from std::exception)";
    try {
      throw;
    } catch (const std::exception& e) {
      type = &typeid(e);  // the dynamic type, e.g. mp::ValueError rather than std::exception
      what = e.what();
    } catch (...) {
    }
    int status = -1;
    char* demangled = type ? abi::__cxa_demangle(type->name(), nullptr, nullptr, &status) : nullptr;
    const char* type_name =
        status == 0 && demangled ? demangled : (type ? type->name() : "unknown exception");
    flush_all_output();  // what the child printed before comes first
    std::fprintf(stderr, "Process %s:\n%s: %s\n", name, type_name, what);
    std::free(demangled);
  } catch (...) {
    std::fputs("Process: an exception escaped run() and could not be described\n", stderr);
  }
}

// finish_and_exit(code): the one way out of a child (also mp::exit's).
[[noreturn]] void finish_and_exit(int code) noexcept {
  finish_children();  // the child's own children: terminate daemons, join the rest (as Python)
  flush_all_output();
  ::_exit(code);
}

// discard_inherited_output(): the child's copies of the stdout/stderr buffers
// hold only what other threads printed after the parent's pre-fork flush (the
// forking thread flushed everything before): that output is the parent's to
// print, so the child drops it, never flushes it (issue 9, defect 4). fork()
// reset the stdio locks in the child (glibc), so the purge cannot block.
// std::cout and friends share these buffers unless sync_with_stdio(false) was
// called, and unsynchronised iostreams may not be written by several threads.
void discard_inherited_output() noexcept {
  ::__fpurge(stdout);
  ::__fpurge(stderr);
}

// run_child(...): the child branch of spawn_child(); never returns.
[[noreturn]] void run_child(ProcessTable& table, const SpawnOptions& options, ChildBody body, pid_t parent,
                            bool forked_on_main_thread) noexcept {
  discard_inherited_output();
  reset_table_in_child(table, options.identity);
  if (options.die_with_parent) arm_death_signal(parent, forked_on_main_thread);
  int code = 0;
  try {
    code = body.run(body.context);
  } catch (...) {
    report_exception(options.identity ? options.identity->name().c_str() : "?");
    code = 1;
  }
  finish_and_exit(code);
}

}  // namespace

void reset_table_in_child(ProcessTable& table, ProcessInfo* identity) noexcept {
  if (identity != nullptr) {
    ProcessInfoAccess::set_pid(*identity, ::getpid());
    table.current = identity;
  }
  table.children.clear();  // INV2: the parent's children are not ours (no deallocation: Process* is trivial)
  table.name_counter = 0;
  table.in_child = true;
  table.mutex.unlock();  // INV1: inherited locked from the forking thread, which we are
}

SpawnResult spawn_child(const SpawnOptions& options, ChildBody body) noexcept {
  flush_all_output();
  const pid_t parent = ::getpid();
  const bool forked_on_main_thread = ::gettid() == parent;
  ProcessTable& table = process_table();
  table.mutex.lock();  // INV1: the child inherits a consistent table
  const pid_t pid = ::fork();
  if (pid == 0) run_child(table, options, body, parent, forked_on_main_thread);
  const int fork_error = errno;
  table.mutex.unlock();
  SpawnResult result;
  if (pid < 0) {
    result.error = fork_error;
    result.failed_call = "fork";
    return result;
  }
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0 && errno == ESRCH) {
    // Not even a zombie any more: the child ended and someone else reaped it
    // (SIGCHLD ignored or SA_NOCLDWAIT). Its status is lost; stand in a
    // sentinel that is readable at once, as a pidfd of an ended child is.
    result.pid = pid;
    result.already_reaped = true;
    result.pidfd.reset(::eventfd(1, EFD_CLOEXEC));
    if (!result.pidfd) {
      result.error = errno;
      result.failed_call = "eventfd";
    }
    return result;
  }
  if (pidfd < 0) {
    // Without a pidfd we could not watch it: take the child down, leave no zombie.
    result.error = errno;
    result.failed_call = "pidfd_open";
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    return result;
  }
  result.pid = pid;
  result.pidfd.reset(pidfd);
  return result;
}

}  // namespace detail

void exit(int code) {
  if (detail::process_table().in_child) detail::finish_and_exit(code);
  std::exit(code);
}

}  // namespace mp
