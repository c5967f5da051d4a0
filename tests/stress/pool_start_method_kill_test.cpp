// PoolOptions::start_method: the owner of a Pool whose zygote was started by
// the fork server or by spawn is SIGKILLed; the zygote and every worker die
// with it (under forkserver through the server: owner -> server -> zygote ->
// workers, each tied to the one before by its death signal). The owner is the
// helper program pool_start_methods (it calls mp::init).
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/process_tree.hpp"
#include "support/program.hpp"

namespace {

using namespace std::chrono_literals;
using mp::test::alive;
using mp::test::descendants;
using mp::test::SpawnedProgram;

void owner_killed_takes_everything(const char* method, std::size_t at_least) {
  SpawnedProgram owner_program({std::string(MP_HELPERS_DIR) + "/pool_start_methods", "owner", method});
  const pid_t owner = owner_program.pid();
  ASSERT_GT(owner, 0);
  // A failed assertion below must not leave the owner waiting forever (the
  // program's destructor reaps it).
  struct KillOnExit {
    pid_t pid;
    ~KillOnExit() {
      if (pid > 0) ::kill(pid, SIGKILL);
    }
  } kill_on_exit{owner};
  const std::string line = owner_program.read_line();
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
  kill_on_exit.pid = 0;  // reaped next: its pid may be reused
  ASSERT_EQ(owner_program.wait(), -SIGKILL);
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
