// tests/unit/process_test_support.hpp — small helpers shared by the Process
// test files (process_test.cpp, process_output_test.cpp, start method tests):
// pipes, reading everything, and running a helper program from tests/helpers/.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "mp/detail/fd.hpp"
#include "mp/process.hpp"

extern char** environ;

namespace mp::test {

struct TestPipe {
  mp::detail::UniqueFd read_end;
  mp::detail::UniqueFd write_end;
};

inline TestPipe make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) std::abort();
  return {mp::detail::UniqueFd(fds[0]), mp::detail::UniqueFd(fds[1])};
}

inline void write_text(int fd, const std::string& text) {
  if (::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) std::abort();
}

inline char read_byte(int fd) {
  char c = 0;
  while (::read(fd, &c, 1) < 0 && errno == EINTR) {
  }
  return c;
}

inline std::string read_all(int fd) {
  std::string text;
  char buffer[4096];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return text;
    text.append(buffer, static_cast<std::size_t>(n));
  }
}

inline bool readable_now(int fd) {
  pollfd entry{fd, POLLIN, 0};
  return ::poll(&entry, 1, 0) == 1;
}

inline int number_in_name(const std::string& name) { return std::stoi(name.substr(name.rfind('-') + 1)); }

inline bool contains(const std::vector<mp::Process*>& list, const mp::Process* p) {
  return std::find(list.begin(), list.end(), p) != list.end();
}

// count_of(text, what): how many times `what` occurs in `text`.
inline std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// run_helper(name, args, output[, errors]): runs tests/helpers/<name> with
// stdout on a pipe read into `output`, and stderr on the same pipe, or on its
// own pipe read into `*errors` when given; reaps it, returns its wait status.
inline int run_helper(const std::string& name, std::vector<std::string> args, std::string& output,
                      std::string* errors = nullptr) {
  TestPipe out = make_pipe();
  TestPipe err;
  if (errors != nullptr) err = make_pipe();
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out.write_end.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, errors != nullptr ? err.write_end.get() : out.write_end.get(),
                                   2);
  std::string path = std::string(MP_HELPERS_DIR) + "/" + name;
  args.insert(args.begin(), path);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, path.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) ADD_FAILURE() << "posix_spawn " << path << ": " << rc;
  out.write_end.reset();
  err.write_end.reset();
  std::thread error_reader;
  if (errors != nullptr) error_reader = std::thread([&] { *errors = read_all(err.read_end.get()); });
  output = read_all(out.read_end.get());
  if (error_reader.joinable()) error_reader.join();
  int status = 0;
  while (rc == 0 && ::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

}  // namespace mp::test
