// mp::redis::Pool against a worker host (serve) in another process.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "mp/redis/pool.hpp"
#include "redis/redis_server.hpp"
#include "support/child.hpp"

namespace pooltasks {
int square(int x) { return x * x; }
int multiply(int a, int b) { return a * b; }
int refuse(int x) { throw std::invalid_argument("refused " + std::to_string(x)); }
// die_once(marker): kills its own worker process the first time (no marker file yet).
int die_once(std::string marker) {
  if (::access(marker.c_str(), F_OK) != 0) {
    int fd = ::open(marker.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    if (fd >= 0) ::close(fd);
    ::raise(SIGKILL);
  }
  return 1;
}
int slow_square(int x) {
  ::usleep(20000);
  return x * x;
}
int sleepy(int ms) {
  ::usleep(static_cast<useconds_t>(ms) * 1000);
  return ms;
}
int always_die(int) {
  ::raise(SIGKILL);
  return 0;
}
}  // namespace pooltasks

MP_TASK(pooltasks::square);
MP_TASK(pooltasks::multiply);
MP_TASK(pooltasks::refuse);
MP_TASK(pooltasks::die_once);
MP_TASK(pooltasks::always_die);
MP_TASK(pooltasks::slow_square);
MP_TASK(pooltasks::sleepy);

TEST(RedisPool, MapRunsOnAWorkerHostInOrderAndRemoteErrorsAreNotRetried) {
  mp::test::RedisServer server;
  const std::string url = server.url();
  pid_t host = mp::test::fork_child([&] { return mp::redis::serve(url, "squares", {2}); });
  {
    mp::redis::Pool pool(url, "squares");
    std::vector<int> items;
    for (int i = 0; i < 60; ++i) items.push_back(i);
    std::vector<int> squares = pool.map(&pooltasks::square, items);
    ASSERT_EQ(squares.size(), items.size());
    for (int i = 0; i < 60; ++i) EXPECT_EQ(squares[i], i * i);
    try {
      (void)pool.apply(&pooltasks::refuse, 7);
      ADD_FAILURE() << "no error";
    } catch (const mp::RemoteError& e) {
      EXPECT_NE(std::string(e.what()).find("refused 7"), std::string::npos) << e.what();
    }
    EXPECT_EQ(pool.apply(&pooltasks::square, 12), 144);
    std::vector<std::tuple<int, int>> pairs{{2, 3}, {4, 5}};
    EXPECT_EQ(pool.starmap(&pooltasks::multiply, pairs), (std::vector<int>{6, 20}));
  }
  EXPECT_EQ(server.integer({"EXISTS", "mpq:{squares}:meta"}), 1);
  auto keys = server.command({"KEYS", "mpq:{squares.results.*"});
  ASSERT_TRUE(keys && keys->type == REDIS_REPLY_ARRAY);
  EXPECT_EQ(keys->elements, 0u);  // the submitter's result queue went with it
  ::kill(host, SIGTERM);
  EXPECT_EQ(mp::test::wait_child(host), 0);
}

TEST(RedisPool, AnUnregisteredFunctionIsValueError) {
  mp::test::RedisServer server;
  mp::redis::Pool pool(server.url(), "nobody");
  auto unregistered = +[](int x) { return x; };
  EXPECT_THROW((void)pool.apply_async(unregistered, 1), mp::ValueError);
}

TEST(RedisPool, ATaskWhoseWorkerDiesIsRetriedThenFailsWithWorkerLost) {
  mp::test::RedisServer server;
  const std::string url = server.url();
  pid_t host = mp::test::fork_child([&] { return mp::redis::serve(url, "dying", {2}); });
  {
    mp::redis::PoolOptions options;
    options.max_attempts = 3;
    mp::redis::Pool pool(url, "dying", options);
    EXPECT_EQ(pool.apply(&pooltasks::die_once, server.dir() + "/marker"), 1);  // attempt 2 succeeds
    try {
      (void)pool.apply(&pooltasks::always_die, 0);
      ADD_FAILURE() << "no error";
    } catch (const mp::WorkerLost& e) {
      EXPECT_NE(std::string(e.what()).find("3 attempts"), std::string::npos) << e.what();
    }
    EXPECT_EQ(server.integer({"LLEN", "mpq:{dying}:dead"}), 1);  // kept as a dead letter
    EXPECT_EQ(pool.apply(&pooltasks::square, 5), 25);            // the host keeps serving
  }
  ::kill(host, SIGTERM);
  EXPECT_EQ(mp::test::wait_child(host), 0);
}

TEST(RedisPool, AWorkerHostKilledMidMapLosesNothing) {
  mp::test::RedisServer server;
  const std::string url = server.url();
  mp::redis::ServeOptions options;
  options.processes = 1;
  options.lease = std::chrono::milliseconds(600);
  pid_t doomed = mp::test::fork_child([&] { return mp::redis::serve(url, "hosts", options); });
  pid_t survivor = mp::test::fork_child([&] { return mp::redis::serve(url, "hosts", options); });
  {
    mp::redis::Pool pool(url, "hosts");
    std::vector<mp::redis::RemoteResult<int>> results;
    for (int i = 0; i < 80; ++i) results.push_back(pool.apply_async(&pooltasks::slow_square, i));
    EXPECT_EQ(results[10].get(std::chrono::seconds(30)), 100);
    mp::test::kill_child(doomed);  // it holds up to two tasks: they go back after its lease
    for (int i = 0; i < 80; ++i) EXPECT_EQ(results[i].get(std::chrono::seconds(30)), i * i) << i;
  }
  ::kill(survivor, SIGTERM);
  EXPECT_EQ(mp::test::wait_child(survivor), 0);
}

TEST(RedisPool, ATaskPastItsTimeoutIsKilledRetriedThenFailsWithTaskTimeout) {
  mp::test::RedisServer server;
  const std::string url = server.url();
  pid_t host = mp::test::fork_child([&] { return mp::redis::serve(url, "timed", {2}); });
  {
    mp::redis::PoolOptions options;
    options.task_timeout = std::chrono::milliseconds(300);
    options.max_attempts = 2;
    mp::redis::Pool pool(url, "timed", options);
    EXPECT_EQ(pool.apply(&pooltasks::sleepy, 10), 10);
    try {
      (void)pool.apply(&pooltasks::sleepy, 20000);
      ADD_FAILURE() << "no error";
    } catch (const mp::TaskTimeout& e) {
      EXPECT_NE(std::string(e.what()).find("2 attempts"), std::string::npos) << e.what();
    }
    EXPECT_EQ(server.integer({"LLEN", "mpq:{timed}:dead"}), 1);  // kept as a dead letter
    auto failed = server.command({"HGET", "mpq:{timed}:stats", "failed"});
    ASSERT_TRUE(failed && failed->type == REDIS_REPLY_STRING);
    EXPECT_EQ(std::string(failed->str, failed->len), "2");  // killed at its timeout twice: 2 attempts
    EXPECT_EQ(pool.apply(&pooltasks::square, 9), 81);       // the host keeps serving
  }
  ::kill(host, SIGTERM);
  EXPECT_EQ(mp::test::wait_child(host), 0);
}
