#include "common/leak_check.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

namespace mp::test {
namespace {

std::set<std::string> list_dir(const char* path) {
  std::set<std::string> names;
  if (DIR* dir = ::opendir(path)) {
    while (dirent* entry = ::readdir(dir)) {
      std::string name = entry->d_name;
      if (name != "." && name != "..") names.insert(name);
    }
    ::closedir(dir);
  }
  return names;
}

std::set<int> open_fds() {
  std::set<int> fds;
  // The DIR's own fd shows up in the listing; it is closed again by the time
  // we return, so drop any fd that is no longer valid.
  for (const auto& name : list_dir("/proc/self/fd")) {
    int fd = std::stoi(name);
    if (::fcntl(fd, F_GETFD) != -1) fds.insert(fd);
  }
  return fds;
}

std::string fd_target(int fd) {
  char buf[512];
  ssize_t n = ::readlink(("/proc/self/fd/" + std::to_string(fd)).c_str(), buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "?";
}

}  // namespace

ResourceSnapshot take_snapshot() { return {open_fds(), list_dir("/dev/shm")}; }

std::vector<pid_t> child_pids() {
  std::vector<pid_t> pids;
  for (const auto& tid : list_dir("/proc/self/task")) {
    std::ifstream in("/proc/self/task/" + tid + "/children");
    pid_t pid;
    while (in >> pid) pids.push_back(pid);
  }
  return pids;
}

std::string describe_leaks(const ResourceSnapshot& before, int grace_ms) {
  std::ostringstream out;
  auto give_up = std::chrono::steady_clock::now() + std::chrono::milliseconds(grace_ms);
  while (!child_pids().empty() && std::chrono::steady_clock::now() < give_up)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  for (pid_t pid : child_pids()) out << "child process " << pid << " still exists (running or zombie)\n";
  for (int fd : open_fds())
    if (!before.fds.count(fd)) out << "fd " << fd << " (" << fd_target(fd) << ") left open\n";
  for (const auto& name : list_dir("/dev/shm"))
    if (!before.shm_entries.count(name)) out << "/dev/shm/" << name << " left behind\n";
  return out.str();
}

}  // namespace mp::test
