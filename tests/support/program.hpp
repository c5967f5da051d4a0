// tests/support/program.hpp — runs a separate program (a helper from
// tests/helpers/, or a script) with its stdout on a pipe, reads what it prints
// and reaps it: the one way tests start a program they did not fork.
#pragma once

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

extern char** environ;

namespace mp::test {

class SpawnedProgram {
 public:
  // SpawnedProgram(argv): starts argv[0] (a path) with its stdout on a pipe.
  explicit SpawnedProgram(std::vector<std::string> argv) {
    std::vector<char*> raw;
    for (auto& argument : argv) raw.push_back(argument.data());
    raw.push_back(nullptr);
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) return;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    if (::posix_spawn(&pid_, raw[0], &actions, nullptr, raw.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
    ::close(out[1]);
    stdout_ = out[0];
  }
  SpawnedProgram(const SpawnedProgram&) = delete;
  SpawnedProgram& operator=(const SpawnedProgram&) = delete;
  ~SpawnedProgram() {
    if (pid_ > 0) (void)wait();
    if (stdout_ >= 0) ::close(stdout_);
  }

  // SpawnedProgram::pid(): the program's pid (-1: it did not start).
  [[nodiscard]] pid_t pid() const noexcept { return pid_; }

  // SpawnedProgram::read_until(marker): everything printed up to and including
  // the first `marker` (all of it, without the marker, at EOF).
  std::string read_until(const std::string& marker) {
    std::string text;
    char buffer[256];
    while (text.find(marker) == std::string::npos) {
      ssize_t n = ::read(stdout_, buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      text.append(buffer, static_cast<std::size_t>(n));
    }
    return text;
  }

  // SpawnedProgram::read_line(): the next line the program printed ("" at EOF).
  std::string read_line() {
    std::string line;
    char c;
    while (::read(stdout_, &c, 1) == 1 && c != '\n') line.push_back(c);
    return line;
  }

  // SpawnedProgram::wait(): the program's exit code, or -S if signal S
  // ended it (the python peer exits 0 when every expectation held).
  int wait() {
    if (pid_ <= 0) return -1000;
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  }

 private:
  pid_t pid_ = -1;
  int stdout_ = -1;
};

}  // namespace mp::test
