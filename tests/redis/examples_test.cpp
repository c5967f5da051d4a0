// The Redis examples, run as the separate programs they are, against a throwaway server.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "redis/redis_server.hpp"

extern char** environ;

namespace {

// Runs program with args, stdout+stderr into out_path; returns the pid.
pid_t start_program(const std::string& program, std::vector<std::string> args, const std::string& out_path) {
  args.insert(args.begin(), program);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, program.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0 ? pid : -1;
}

int wait_for(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

const std::string kExamples = MP_BINARY_DIR "/examples/";

}  // namespace

TEST(RedisExamples, ProducerAndTwoWorkersMeetByUrlAndName) {
  mp::test::RedisServer server;
  std::string out = server.dir() + "/";
  pid_t w1 = start_program(kExamples + "redis_worker", {server.url()}, out + "w1.out");
  pid_t w2 = start_program(kExamples + "redis_worker", {std::to_string(server.port())}, out + "w2.out");
  pid_t producer = start_program(kExamples + "redis_producer", {server.url(), "30"}, out + "producer.out");
  ASSERT_GT(w1, 0);
  ASSERT_GT(w2, 0);
  ASSERT_GT(producer, 0);
  EXPECT_EQ(wait_for(producer), 0) << slurp(out + "producer.out");
  EXPECT_EQ(wait_for(w1), 0) << slurp(out + "w1.out");
  EXPECT_EQ(wait_for(w2), 0) << slurp(out + "w2.out");
  std::string produced = slurp(out + "producer.out");
  EXPECT_NE(produced.find("all 30 jobs done"), std::string::npos) << produced;
  EXPECT_NE(produced.find("results check out"), std::string::npos) << produced;
  int total = 0;
  for (const char* name : {"w1.out", "w2.out"}) {
    std::string text = slurp(out + name);
    auto at = text.find("processed ");
    ASSERT_NE(at, std::string::npos) << text;
    total += std::stoi(text.substr(at + 10));
  }
  EXPECT_GE(total, 30);  // at-least-once: exactly 30 unless a lease ran out
}

TEST(RedisExamples, TicketOfficeSellsEveryTicketOnce) {
  mp::test::RedisServer server;
  std::string out = server.dir() + "/office.out";
  pid_t office = start_program(kExamples + "redis_ticket_office", {server.url()}, out);
  ASSERT_GT(office, 0);
  EXPECT_EQ(wait_for(office), 0) << slurp(out);
  EXPECT_NE(slurp(out).find("20 tickets sold by 3 sellers, none sold twice"), std::string::npos)
      << slurp(out);
}
