// src/after_fork/process_child.cpp — mp::Process's child under the "fork"
// start method: THE code that runs between fork() and _exit() for a Process.
//
// All code mp runs in a freshly forked child lives under src/after_fork/
// (STYLE rule 7); the helpers it shares with the fork server and the Pool are
// in after_fork.hpp. spawn_child() forks, and the child branch never returns
// from here; it leaves through finish_and_exit() -> _exit(). Rules:
//  - nothing throws out of it: the user's body runs inside try/catch and every
//    function is noexcept;
//  - before the body runs, only async-signal-safe calls and no allocation:
//    discarding the inherited stdio buffers, prctl, sigaction, sigprocmask,
//    getppid, kill, and plain stores into the child's own copy of mp's process
//    table (whose mutex the parent held across fork(), so the copy is
//    consistent: INV1 in process_table.hpp);
//  - after the body, the child is an ordinary single-threaded program again
//    (the user's code already ran there): reporting an exception, reaping the
//    child's own children and flushing streams may allocate and lock.
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <mutex>

#include "after_fork/after_fork.hpp"
#include "mp/detail/spawn.hpp"
#include "mp/process.hpp"
#include "process_table.hpp"  // src/, a private include directory

namespace mp {
namespace detail {
void finish_child_and_exit(int code) noexcept {
  finish_children();  // the child's own children: terminate daemons, join the rest (as Python)
  after_fork::flush_and_exit(code);
}

namespace {

// run_child(...): the child branch of spawn_child(); never returns.
[[noreturn]] void run_child(ProcessTable& table, const SpawnOptions& options, ChildBody body, pid_t parent,
                            bool forked_on_main_thread) noexcept {
  after_fork::discard_inherited_output();  // issue 9, defect 4: never flush what other threads buffered
  reset_table_in_child(table, options.identity);
  if (options.die_with_parent) after_fork::arm_death_signal(parent, forked_on_main_thread);
  int code = 0;
  try {
    code = body.run(body.context);
  } catch (...) {
    after_fork::print_exception(options.identity ? options.identity->name().c_str() : "?");
    code = 1;
  }
  finish_child_and_exit(code);
}

}  // namespace

void reset_table_in_child(ProcessTable& table, ProcessInfo* identity) noexcept {
  table.parent = table.current != nullptr ? table.current : &table.main_info;  // who forked us
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
  after_fork::flush_all_output();
  const pid_t parent = ::getpid();
  const bool forked_on_main_thread = after_fork::on_main_thread();
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
  after_fork::PidfdResult watched = after_fork::open_pidfd_or_reap(pid);
  if (watched.already_reaped) {
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
  if (watched.error != 0) {
    result.error = watched.error;
    result.failed_call = "pidfd_open";
    return result;
  }
  result.pid = pid;
  result.pidfd.reset(watched.pidfd);
  return result;
}

}  // namespace detail

void exit(int code) {
  if (detail::process_table().in_child) detail::finish_child_and_exit(code);
  std::exit(code);
}

}  // namespace mp
