// src/process_table.hpp — libmp-internal: the per-process table of children.
//
// One table per process: the Process objects this process started and has not
// destroyed yet (active_children() and the atexit hook walk it), the name
// counter, and who this process is (current_process()).
//
// INV1: `mutex` is held across every fork() mp makes (spawn_child), so a child
//       always inherits a consistent table, and unlocks its copy first thing.
// INV2: every entry of `children` is a live Process whose creator is this
//       process; ~Process and moves keep the pointers exact. The child clears
//       the inherited entries (they are its parent's children, not its own).
#pragma once

#include <sys/types.h>

#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "mp/process.hpp"

namespace mp::detail {

struct ProcessInfoAccess {
  static void set_pid(ProcessInfo& info, pid_t pid) noexcept { info.pid_ = pid; }
  static const std::string& identity(const ProcessInfo& info) noexcept { return info.identity_; }
  static void set_identity(ProcessInfo& info, std::string identity) noexcept {
    info.identity_ = std::move(identity);
  }
};

struct ProcessTable {
  std::mutex mutex;                      // INV1; guards everything below and every started Process's state
  std::vector<Process*> children;        // INV2
  int name_counter = 0;                  // the N of the next "Process-N"
  const ProcessInfo* current = nullptr;  // current_process(); nullptr: the main process
  const ProcessInfo* parent = nullptr;   // parent_process(); nullptr: the main process
  ProcessInfo main_info;                 // "MainProcess"
  bool in_child = false;                 // true in a child started by spawn_child
  bool exit_hook_registered = false;
};

// process_table(): the table; never destroyed, so the atexit hook and static
// Process objects destroyed late may still use it.
ProcessTable& process_table() noexcept;

// finish_children(): what a process does with its children when it exits, as
// Python's atexit function does: terminate() every running daemon child, then
// reap every child (join the non-daemons). Called by the atexit hook and at
// the end of a child (after_fork/process_child.cpp). Never throws.
void finish_children() noexcept;

// finish_child_and_exit(code): the one way out of a child mp started (also
// mp::exit's): finish_children(), flush, _exit(code). In process_child.cpp.
[[noreturn]] void finish_child_and_exit(int code) noexcept;

// Called by the child, table mutex held (inherited locked, INV1): makes the
// table the child's own. Defined in after_fork/process_child.cpp.
void reset_table_in_child(ProcessTable& table, ProcessInfo* identity) noexcept;

}  // namespace mp::detail
