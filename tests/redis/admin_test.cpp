// Dead letters (Options::max_deliveries) and the mp-redis command, run as a
// separate program against a throwaway server.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <string>

#include "mp/redis.hpp"
#include "redis/redis_server.hpp"
#include "support/child.hpp"

using namespace std::chrono_literals;

namespace {

struct Ran {
  int code = -1;
  std::string output;  // stdout and stderr
};

// mp_redis(args): runs the built mp-redis with args (shell words), waits for it.
Ran mp_redis(const std::string& args) {
  std::string command = std::string(MP_BINARY_DIR) + "/tools/mp-redis " + args + " 2>&1";
  Ran ran;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return ran;
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) ran.output.append(buf, n);
  int status = ::pclose(pipe);
  ran.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return ran;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

mp::redis::Options poison_options() {
  mp::redis::Options options;
  options.lease = 300ms;
  options.server_timeout = 5s;
  options.max_deliveries = 2;
  return options;
}

// A consumer that takes one item, says so, and waits to be killed.
void take_and_die(const std::string& url, const std::string& name) {
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t child = mp::test::fork_child([&] {
    ::close(ready[0]);
    mp::redis::JoinableQueue<std::string> mine(url, name, 0, poison_options());
    (void)mine.get();
    char c = 'g';
    [[maybe_unused]] auto n = ::write(ready[1], &c, 1);
    ::pause();
    return 0;
  });
  ::close(ready[1]);
  char c = 0;
  EXPECT_EQ(::read(ready[0], &c, 1), 1);
  ::close(ready[0]);
  mp::test::kill_child(child);
}

}  // namespace

TEST(RedisDeadLetters, AnItemWhoseConsumersKeepDyingBecomesADeadLetterAndMpRedisRetriesIt) {
  mp::test::RedisServer server;
  const std::string url = server.url();
  mp::redis::JoinableQueue<std::string> q(url, "poison", 0, poison_options());
  q.put("poison pill");
  take_and_die(url, "poison");  // delivery 1 fails
  take_and_die(url, "poison");  // delivery 2 fails (the next reap re-queued it first)
  q.join();                     // the reap inside join makes it a dead letter: nothing unfinished
  EXPECT_EQ(server.integer({"LLEN", "mpq:{poison}:dead"}), 1);
  EXPECT_EQ(q.qsize(), 0u);

  Ran stats = mp_redis("stats " + url);
  EXPECT_EQ(stats.code, 0) << stats.output;
  EXPECT_TRUE(contains(stats.output, "poison")) << stats.output;
  Ran json = mp_redis("--json stats " + url);
  EXPECT_EQ(json.code, 0) << json.output;
  EXPECT_TRUE(contains(json.output, "\"name\":\"poison\"")) << json.output;
  EXPECT_TRUE(contains(json.output, "\"dead\":1")) << json.output;
  EXPECT_TRUE(contains(json.output, "\"failed\":2")) << json.output;

  Ran dead = mp_redis("dead " + url + " poison");
  EXPECT_EQ(dead.code, 0) << dead.output;
  EXPECT_TRUE(contains(dead.output, "1 dead letter")) << dead.output;
  EXPECT_TRUE(contains(dead.output, "poison pill")) << dead.output;

  Ran retry = mp_redis("retry " + url + " poison");
  EXPECT_EQ(retry.code, 0) << retry.output;
  EXPECT_TRUE(contains(retry.output, "put 1 dead letter back")) << retry.output;
  EXPECT_EQ(q.get(5s), "poison pill");
  q.task_done();
  q.join();

  q.put("a");
  q.put("b");
  Ran purge = mp_redis("--json purge " + url + " poison");
  EXPECT_EQ(purge.code, 0) << purge.output;
  EXPECT_TRUE(contains(purge.output, "\"purged\":2")) << purge.output;
  EXPECT_EQ(q.qsize(), 0u);
  q.join();  // purged items count as finished
}

TEST(RedisAdminTool, StatsShowsLiveConsumersAndHeartbeats) {
  mp::test::RedisServer server;
  mp::redis::JoinableQueue<int> q(server.url(), "jobs");
  for (int i = 0; i < 3; ++i) q.put(i);
  EXPECT_EQ(q.get(), 0);  // this process is now a consumer holding one item
  Ran json = mp_redis("--json stats " + server.url());
  EXPECT_EQ(json.code, 0) << json.output;
  EXPECT_TRUE(contains(json.output, "\"depth\":2,\"in_flight\":1,\"unfinished\":3")) << json.output;
  EXPECT_TRUE(contains(json.output, "\"live_consumers\":1")) << json.output;
  EXPECT_FALSE(contains(json.output, "\"last_heartbeat_ms_ago\":-1")) << json.output;
  Ran human = mp_redis("stats " + server.url());
  EXPECT_EQ(human.code, 0) << human.output;
  EXPECT_TRUE(contains(human.output, "jobs")) << human.output;
  EXPECT_TRUE(contains(human.output, "s ago")) << human.output;
  q.task_done();
}

TEST(RedisAdminTool, ClearErrorsAndExitCodes) {
  mp::test::RedisServer server({"--requirepass", "s3cr3t-pw"}, {"s3cr3t-pw"});
  const std::string port = std::to_string(server.port());
  EXPECT_EQ(mp_redis("").code, 2);
  EXPECT_EQ(mp_redis("bogus redis://127.0.0.1:" + port).code, 2);
  EXPECT_EQ(mp_redis("stats").code, 2);
  EXPECT_EQ(mp_redis("dead redis://:s3cr3t-pw@127.0.0.1:" + port).code, 2);  // no NAME
  Ran malformed = mp_redis("stats redis://:s3cr3t-pw@127.0.0.1:port");
  EXPECT_EQ(malformed.code, 2) << malformed.output;
  EXPECT_FALSE(contains(malformed.output, "s3cr3t")) << malformed.output;
  Ran refused = mp_redis("stats redis://:wrong-s3cr3t@127.0.0.1:" + port);
  EXPECT_EQ(refused.code, 1) << refused.output;
  EXPECT_TRUE(contains(refused.output, "refused")) << refused.output;
  EXPECT_FALSE(contains(refused.output, "s3cr3t")) << refused.output;
  Ran missing = mp_redis("dead redis://:s3cr3t-pw@127.0.0.1:" + port + " nothing");
  EXPECT_EQ(missing.code, 1) << missing.output;
  EXPECT_TRUE(contains(missing.output, "no queue named \"nothing\"")) << missing.output;
  EXPECT_FALSE(contains(missing.output, "s3cr3t")) << missing.output;
  Ran empty = mp_redis("stats redis://:s3cr3t-pw@127.0.0.1:" + port);
  EXPECT_EQ(empty.code, 0) << empty.output;
  EXPECT_TRUE(contains(empty.output, "no mp queues")) << empty.output;
  server.kill9();
  Ran gone = mp_redis("stats redis://:s3cr3t-pw@127.0.0.1:" + port);
  EXPECT_EQ(gone.code, 1) << gone.output;
  EXPECT_TRUE(contains(gone.output, "unreachable")) << gone.output;
  EXPECT_FALSE(contains(gone.output, "s3cr3t")) << gone.output;
}
