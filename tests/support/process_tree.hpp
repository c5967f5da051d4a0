// tests/support/process_tree.hpp — what /proc says about processes a test did
// not start itself (a pool's zygote and workers, a fork server): who is under
// whom, who is its parent, who is still alive.
//
//   std::vector<pid_t> everyone = mp::test::descendants(owner);
//   ::kill(owner, SIGKILL);  ...  EXPECT_FALSE(mp::test::alive(everyone[0]));
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace mp::test {

// children(pid): its direct children, from every thread's children list.
inline std::vector<pid_t> children(pid_t pid) {
  std::vector<pid_t> found;
  std::error_code ignored;
  for (const auto& task :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ignored)) {
    std::ifstream list(task.path() / "children");
    for (pid_t child; list >> child;) found.push_back(child);
  }
  return found;
}

// descendants(root): every process under root (children, their children, ...).
inline std::vector<pid_t> descendants(pid_t root) {
  std::vector<pid_t> found;
  std::vector<pid_t> frontier{root};
  while (!frontier.empty()) {
    const pid_t pid = frontier.back();
    frontier.pop_back();
    for (pid_t child : children(pid)) {
      found.push_back(child);
      frontier.push_back(child);
    }
  }
  return found;
}

// stat_fields(pid): the fields of /proc/<pid>/stat after the command name
// (state, ppid, ...); empty if the process is gone.
inline std::string stat_fields(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  const auto close_paren = line.rfind(')');
  if (close_paren == std::string::npos || close_paren + 2 >= line.size()) return "";
  return line.substr(close_paren + 2);
}

// alive(pid): the process exists and is neither a zombie nor dead.
inline bool alive(pid_t pid) {
  const std::string fields = stat_fields(pid);
  return !fields.empty() && fields[0] != 'Z' && fields[0] != 'X';
}

// parent_of(pid): its parent's pid (0 if it is gone).
inline pid_t parent_of(pid_t pid) {
  std::istringstream fields(stat_fields(pid));
  char state = 0;
  pid_t parent = 0;
  fields >> state >> parent;
  return parent;
}

}  // namespace mp::test
