// tests/common/leak_check.hpp — what a test must leave behind: nothing.
//
// Snapshot before a test, compare after: open file descriptors of this
// process, its child processes (running or zombie), and entries in /dev/shm.
#pragma once

#include <sys/types.h>

#include <set>
#include <string>
#include <vector>

namespace mp::test {

struct ResourceSnapshot {
  std::set<int> fds;
  std::set<std::string> shm_entries;
};

ResourceSnapshot take_snapshot();
std::vector<pid_t> child_pids();  // every child of this process, zombies included

// Returns a description of what `after` holds that `before` did not; empty if
// nothing leaked. Waits up to `grace_ms` for children to go away on their own.
std::string describe_leaks(const ResourceSnapshot& before, int grace_ms = 2000);

}  // namespace mp::test
