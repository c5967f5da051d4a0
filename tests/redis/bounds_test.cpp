// Bounds: every call ends within its timeout against a frozen server (issue 9
// defect 6), a refused database is a ValueError at once (defect 7), replies of
// the wrong type or with corrupt numbers are clear mp errors, and dropping a
// handle while the server is frozen is short (defect 12).
//
// These assert correctness bounds (a call must not outlive its timeout by more
// than the documented 0.5 s grace), with generous slack for a loaded machine;
// they are not speed measurements.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <typeinfo>
#include <vector>

#include "mp/redis.hpp"
#include "redis/redis_server.hpp"

using namespace std::chrono_literals;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// The name of the Lua library mp loads (src/redis/functions.cpp); the tests that
// replace it with a misbehaving one must use the same name.
constexpr const char* kLibrary = "mp2";

}  // namespace

TEST(RedisFrozenServer, EveryCallEndsWithinItsTimeout) {
  mp::test::RedisServer server;
  mp::redis::Queue<int> q(server.url(), "frozen");  // default options: 10 s without the server
  mp::redis::Lock lock(server.url(), "frozen-lock");
  q.put(0);
  (void)q.get();  // the handle's connection is open and idle
  server.freeze();

  struct Outcome {
    double seconds = -1;
    bool connection_error = false;
    std::string other;
  };
  auto timed = [](Outcome& out, auto call) {
    return std::thread([&out, call] {
      auto start = Clock::now();
      try {
        call();
        out.other = "returned normally";
      } catch (const mp::ConnectionError&) {
        out.connection_error = true;
      } catch (const std::exception& e) {
        out.other = std::string(typeid(e).name()) + ": " + e.what();
      }
      out.seconds = seconds_since(start);
    });
  };
  Outcome put_forever, put_1s, get_2s, acquire_1s;
  std::vector<std::thread> calls;
  calls.push_back(timed(put_forever, [&] { q.put(1); }));
  calls.push_back(timed(put_1s, [&] { q.put(2, 1s); }));
  calls.push_back(timed(get_2s, [&] { (void)q.get(2s); }));
  calls.push_back(timed(acquire_1s, [&] { (void)lock.try_lock_for(1s); }));
  for (auto& t : calls) t.join();
  server.thaw();

  // Bound: the timeout (10 s without one) plus 0.5 s of grace; slack on top for load.
  EXPECT_TRUE(put_forever.connection_error) << put_forever.other;
  EXPECT_LT(put_forever.seconds, 10.0 + 1.5);
  EXPECT_TRUE(put_1s.connection_error) << put_1s.other;
  EXPECT_LT(put_1s.seconds, 1.0 + 1.2);
  EXPECT_TRUE(get_2s.connection_error) << get_2s.other;
  EXPECT_LT(get_2s.seconds, 2.0 + 1.2);
  EXPECT_TRUE(acquire_1s.connection_error) << acquire_1s.other;
  EXPECT_LT(acquire_1s.seconds, 1.0 + 1.2);
}

TEST(RedisFrozenServer, DroppingHandlesIsShort) {
  mp::test::RedisServer server;
  mp::redis::Options options;
  options.lease = 3s;  // renewed every second: a renewal is in flight when the handles go
  auto q = std::make_unique<mp::redis::JoinableQueue<int>>(server.url(), "frozen-drop", 0, options);
  auto lock = std::make_unique<mp::redis::Lock>(server.url(), "frozen-drop-lock", 3s);
  q->put(1);
  EXPECT_EQ(q->get(), 1);  // holds an item: the consumer's lease keeper runs
  lock->lock();            // held: its lease keeper runs
  server.freeze();
  std::this_thread::sleep_for(1500ms);
  auto start = Clock::now();
  q.reset();
  double queue_seconds = seconds_since(start);
  start = Clock::now();
  lock.reset();
  double lock_seconds = seconds_since(start);
  server.thaw();
  EXPECT_LT(queue_seconds, 2.0);
  EXPECT_LT(lock_seconds, 2.0);
}

TEST(RedisUrl, DatabaseTheServerRefusesIsValueErrorAtOnce) {
  mp::test::RedisServer server;
  auto start = Clock::now();
  try {
    mp::redis::Queue<int> q(server.url() + "/99999", "nodb");
    ADD_FAILURE() << "opened";
  } catch (const mp::ValueError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("99999"), std::string::npos) << what;
    EXPECT_NE(what.find("out of range"), std::string::npos) << what;  // the server's answer
  }
  EXPECT_LT(seconds_since(start), 3.0);  // not retried as an outage (10 s)
  mp::redis::Lock lock(server.url() + "/99999", "nodb");
  start = Clock::now();
  EXPECT_THROW((void)lock.try_lock(), mp::ValueError);
  EXPECT_LT(seconds_since(start), 3.0);
}

TEST(RedisReplies, CorruptNumbersOnTheServerAreMpErrors) {
  mp::test::RedisServer server;
  server.command({"HSET", "mpq:{corrupt}:meta", "signature", mp::codec_signature<int>(), "maxsize", "many"});
  try {
    mp::redis::Queue<int> q(server.url(), "corrupt");
    ADD_FAILURE() << "opened";
  } catch (const mp::Error& e) {
    EXPECT_NE(std::string(e.what()).find("many"), std::string::npos) << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not an mp error: " << typeid(e).name() << ": " << e.what();
  }
  mp::redis::JoinableQueue<int> j(server.url(), "counted");
  server.command({"SET", "mpq:{counted}:unfinished", "lots"});
  try {
    j.join();
    ADD_FAILURE() << "joined";
  } catch (const mp::Error& e) {
    EXPECT_NE(std::string(e.what()).find("lots"), std::string::npos) << e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not an mp error: " << typeid(e).name() << ": " << e.what();
  }
}

TEST(RedisReplies, AReplyOfTheWrongTypeIsAClearErrorNeverAZero) {
  mp::test::RedisServer server;
  // A library under mp's name whose functions answer with the wrong types.
  std::string fake = std::string("#!lua name=") + kLibrary + R"lua(
local p = ')lua" + std::string(kLibrary) +
                     R"lua(_'
redis.register_function(p .. 'lock_acquire', function(keys, args) return {1, 1} end)
redis.register_function(p .. 'lock_extend', function(keys, args) return 1 end)
redis.register_function(p .. 'lock_release', function(keys, args) return redis.status_reply('OK') end)
redis.register_function(p .. 'open', function(keys, args) return {args[1], '0'} end)
redis.register_function(p .. 'get', function(keys, args) return {'one', 'x'} end)
)lua";
  auto loaded = server.command({"FUNCTION", "LOAD", "REPLACE", fake});
  ASSERT_TRUE(loaded && loaded->type == REDIS_REPLY_STRING) << (loaded ? loaded->str : "no reply");

  mp::redis::Lock lock(server.url(), "typed");
  lock.lock();
  try {
    lock.unlock();
    ADD_FAILURE() << "released";
  } catch (const mp::LockLost& e) {
    ADD_FAILURE() << "a status reply was read as 0: " << e.what();
  } catch (const mp::Error& e) {
    EXPECT_NE(std::string(e.what()).find("unexpected reply"), std::string::npos) << e.what();
  }

  mp::redis::Queue<int> q(server.url(), "typed");
  try {
    auto item = q.try_get();
    ADD_FAILURE() << "answered " << (item ? "an item" : "empty");
  } catch (const mp::Error& e) {
    EXPECT_NE(std::string(e.what()).find("unexpected reply"), std::string::npos) << e.what();
  }
}
