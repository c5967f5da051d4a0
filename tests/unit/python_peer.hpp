// tests/unit/python_peer.hpp — runs a separate program (a helper from
// tests/helpers/, or tests/helpers/python_peer.py with the machine's Python,
// isolated with -I so nothing in the tree shadows the standard library) and
// reports its exit status and what it printed.
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

  // SpawnedProgram::read_line(): the next line the script printed ("" at EOF).
  std::string read_line() {
    std::string line;
    char c;
    while (::read(stdout_, &c, 1) == 1 && c != '\n') line.push_back(c);
    return line;
  }

  // SpawnedProgram::wait(): the script's exit status (0: every expectation held).
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

// python_peer.py run with arguments.
class PythonPeer : public SpawnedProgram {
 public:
  explicit PythonPeer(const std::vector<std::string>& arguments) : SpawnedProgram(argv(arguments)) {}

 private:
  static std::vector<std::string> argv(const std::vector<std::string>& arguments) {
    std::vector<std::string> all{"/usr/bin/python3", "-I", MP_SOURCE_DIR "/tests/helpers/python_peer.py"};
    all.insert(all.end(), arguments.begin(), arguments.end());
    return all;
  }
};

}  // namespace mp::test
