// PoolOptions::start_method: the owner of a Pool whose zygote was started by
// the fork server or by spawn is SIGKILLed; the zygote and every worker die
// with it (under forkserver through the server: owner -> server -> zygote ->
// workers, each tied to the one before by its death signal). The owner is the
// helper program pool_start_methods (it calls mp::init).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;

// descendants(root): every process under root (children, their children, ...).
std::vector<pid_t> descendants(pid_t root) {
  std::vector<pid_t> found;
  std::vector<pid_t> frontier{root};
  while (!frontier.empty()) {
    const pid_t pid = frontier.back();
    frontier.pop_back();
    std::error_code ignored;
    for (const auto& task :
         std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ignored)) {
      std::ifstream children(task.path() / "children");
      for (pid_t child; children >> child;) {
        found.push_back(child);
        frontier.push_back(child);
      }
    }
  }
  return found;
}

bool alive(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return false;
  std::string line;
  std::getline(stat, line);
  auto close_paren = line.rfind(')');
  if (close_paren == std::string::npos || close_paren + 2 >= line.size()) return false;
  const char state = line[close_paren + 2];
  return state != 'Z' && state != 'X';
}

void owner_killed_takes_everything(const char* method, std::size_t at_least) {
  int out[2];
  ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
  const std::string program = std::string(MP_HELPERS_DIR) + "/pool_start_methods";
  pid_t owner = ::fork();
  ASSERT_GE(owner, 0);
  if (owner == 0) {
    ::dup2(out[1], STDOUT_FILENO);
    ::execl(program.c_str(), program.c_str(), "owner", method, static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(out[1]);
  std::string line;
  char c;
  while (::read(out[0], &c, 1) == 1 && c != '\n') line += c;
  ::close(out[0]);
  ASSERT_EQ(line.rfind("ready", 0), 0u) << method << ": pool_start_methods said: " << line;
  std::istringstream words(line.substr(line.find(':') + 1));
  std::vector<pid_t> workers;
  for (pid_t pid; words >> pid;) workers.push_back(pid);
  EXPECT_EQ(workers.size(), 3u) << line;
  std::vector<pid_t> everyone = descendants(owner);
  // forkserver: the server, the zygote, 3 workers; spawn: the zygote, 3 workers.
  ASSERT_GE(everyone.size(), at_least) << method << ": too few processes under " << owner;
  for (pid_t worker : workers)
    EXPECT_NE(std::find(everyone.begin(), everyone.end(), worker), everyone.end()) << method << " " << worker;

  ASSERT_EQ(::kill(owner, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(owner, &status, 0), owner);
  const auto give_up = std::chrono::steady_clock::now() + 2s;
  std::vector<pid_t> survivors = everyone;
  while (!survivors.empty() && std::chrono::steady_clock::now() < give_up) {
    std::erase_if(survivors, [](pid_t pid) { return !alive(pid); });
    if (!survivors.empty()) std::this_thread::sleep_for(5ms);
  }
  EXPECT_TRUE(survivors.empty()) << method << ": " << survivors.size()
                                 << " of the pool's processes survived its owner by 2 s";
}

TEST(PoolStartMethodKill, OwnerKilledTakesServerZygoteAndWorkersUnderForkserver) {
  owner_killed_takes_everything("forkserver", 5);
}

TEST(PoolStartMethodKill, OwnerKilledTakesZygoteAndWorkersUnderSpawn) {
  owner_killed_takes_everything("spawn", 4);
}

}  // namespace
