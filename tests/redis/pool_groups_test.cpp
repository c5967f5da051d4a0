// mp::redis::Pool: a worker host runs tasks of a function measured to be fast in groups (one
// local job for several tasks, serve.cpp). Each task of a group still succeeds, fails and is
// counted on its own: an exception is its task's RemoteError, and a task that kills its process
// or runs past its timeout fails alone after exactly max_attempts deliveries while the rest of
// its group completes. Every test first runs a warm-up map so that the host has measured the
// function as fast (the assertions hold whether or not a group formed).
// Worker hosts are forked before the Pool exists: the Pool runs a receiver thread.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include "mp/redis/pool.hpp"
#include "redis/redis_server.hpp"
#include "redis/serve_host.hpp"
#include "support/child.hpp"

namespace grouptasks {
constexpr int kBad = 13;
// fast_or_die(x): x + 1; item kBad kills its own worker process, every time.
int fast_or_die(int x) {
  if (x == kBad) ::raise(SIGKILL);
  return x + 1;
}
// fast_or_hang(x): x + 1; item kBad runs for 30 s (past any timeout here).
int fast_or_hang(int x) {
  if (x == kBad) ::sleep(30);
  return x + 1;
}
// fast_or_throw(x): x + 1; odd items throw.
int fast_or_throw(int x) {
  if (x % 2 != 0) throw std::invalid_argument("odd " + std::to_string(x));
  return x + 1;
}
}  // namespace grouptasks

MP_TASK(grouptasks::fast_or_die);
MP_TASK(grouptasks::fast_or_hang);
MP_TASK(grouptasks::fast_or_throw);

namespace {

using namespace std::chrono_literals;

long long stat_of(const mp::test::RedisServer& server, const std::string& queue, const std::string& field) {
  auto reply = server.command({"HGET", "mpq:{" + queue + "}:stats", field});
  if (!reply || reply->type != REDIS_REPLY_STRING) return 0;
  return std::stoll(std::string(reply->str, reply->len));
}

std::vector<int> items_except_bad(int count) {
  std::vector<int> items;
  for (int i = 0; i < count; ++i) {
    if (i != grouptasks::kBad) items.push_back(i);
  }
  return items;
}

std::vector<int> range(int count) {
  std::vector<int> items;
  for (int i = 0; i < count; ++i) items.push_back(i);
  return items;
}

using mp::test::start_host;
using mp::test::stop_host;

}  // namespace

TEST(RedisPoolGroups, ATaskThatKillsItsProcessFailsAloneAfterExactlyMaxAttempts) {
  mp::test::RedisServer server;
  const std::string url = server.url();
  pid_t host = start_host(url, "group-deaths", 2);
  {
    mp::redis::PoolOptions options;
    options.max_attempts = 3;
    mp::redis::Pool pool(url, "group-deaths", options);
    auto warm = pool.map_async(&grouptasks::fast_or_die, items_except_bad(200)).get(30s);
    ASSERT_EQ(warm.size(), 199u);
    auto results = pool.imap(&grouptasks::fast_or_die, range(60));
    for (int i = 0; i < 60; ++i) {
      if (i == grouptasks::kBad) {
        try {
          (void)results.next(30s);
          ADD_FAILURE() << "no error for the task that kills its process";
        } catch (const mp::WorkerLost& e) {
          EXPECT_NE(std::string(e.what()).find("3 attempts"), std::string::npos) << e.what();
        }
      } else {
        EXPECT_EQ(results.next(30s), i + 1) << i;
      }
    }
    EXPECT_EQ(results.next(30s), std::nullopt);
    // Only its own deliveries failed: the rest of its group ran again without counting.
    EXPECT_EQ(stat_of(server, "group-deaths", "failed"), 3);
    EXPECT_EQ(stat_of(server, "group-deaths", "dead"), 1);
    EXPECT_EQ(pool.apply_async(&grouptasks::fast_or_die, 1).get(30s), 2);  // the host keeps serving
  }
  stop_host(host);
}

TEST(RedisPoolGroups, ATaskPastItsTimeoutFailsAloneAfterExactlyMaxAttempts) {
  mp::test::RedisServer server;
  const std::string url = server.url();
  pid_t host = start_host(url, "group-timeouts", 2);
  {
    mp::redis::PoolOptions options;
    options.max_attempts = 2;
    options.task_timeout = 500ms;
    mp::redis::Pool pool(url, "group-timeouts", options);
    auto warm = pool.map_async(&grouptasks::fast_or_hang, items_except_bad(200)).get(30s);
    ASSERT_EQ(warm.size(), 199u);
    auto results = pool.imap(&grouptasks::fast_or_hang, range(60));
    for (int i = 0; i < 60; ++i) {
      if (i == grouptasks::kBad) {
        try {
          (void)results.next(30s);
          ADD_FAILURE() << "no error for the task past its timeout";
        } catch (const mp::TaskTimeout& e) {
          EXPECT_NE(std::string(e.what()).find("2 attempts"), std::string::npos) << e.what();
        }
      } else {
        EXPECT_EQ(results.next(30s), i + 1) << i;
      }
    }
    EXPECT_EQ(stat_of(server, "group-timeouts", "failed"), 2);
    EXPECT_EQ(stat_of(server, "group-timeouts", "dead"), 1);
    EXPECT_EQ(pool.apply_async(&grouptasks::fast_or_hang, 1).get(30s), 2);
  }
  stop_host(host);
}

TEST(RedisPoolGroups, AnExceptionIsItsOwnTasksRemoteErrorAndTheRestSucceed) {
  mp::test::RedisServer server;
  const std::string url = server.url();
  pid_t host = start_host(url, "group-errors", 2);
  {
    mp::redis::Pool pool(url, "group-errors");
    std::vector<int> evens;
    for (int i = 0; i < 400; i += 2) evens.push_back(i);
    ASSERT_EQ(pool.map_async(&grouptasks::fast_or_throw, evens).get(30s).size(), evens.size());
    auto results = pool.imap(&grouptasks::fast_or_throw, range(100));
    for (int i = 0; i < 100; ++i) {
      if (i % 2 != 0) {
        try {
          (void)results.next(30s);
          ADD_FAILURE() << "no error for " << i;
        } catch (const mp::RemoteError& e) {
          EXPECT_EQ(e.type_name(), "std::invalid_argument");
          EXPECT_EQ(std::string(e.what()), "odd " + std::to_string(i));
        }
      } else {
        EXPECT_EQ(results.next(30s), i + 1) << i;
      }
    }
    EXPECT_EQ(stat_of(server, "group-errors", "failed"), 0);  // an exception is not retried
  }
  stop_host(host);
}
