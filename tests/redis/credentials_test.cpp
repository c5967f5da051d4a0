// Credentials: redis://[[user]:password@]host:port[/db] (API.md "Redis") against
// servers started with requirepass and with an ACL user; refused logins are
// AuthenticationError at once; the password never appears in an error.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <typeinfo>
#include <vector>

#include "mp/redis.hpp"
#include "redis/redis_server.hpp"

using namespace std::chrono_literals;

namespace {

using Clock = std::chrono::steady_clock;

// A password with every character a url cares about; percent-encoded below.
const std::string kPassword = "s3cr3t/P@ss:w%rd";
const std::string kEncoded = "s3cr3t%2FP%40ss%3Aw%25rd";

std::string url_with(const mp::test::RedisServer& server, const std::string& userinfo) {
  return "redis://" + userinfo + "@127.0.0.1:" + std::to_string(server.port());
}

// The commands mp runs for queues and locks, directly and inside its functions: the
// ACL the README recommends for a user that only runs mp (verified here).
const char* const kMpAcl =
    "-@all +select +fcall +function|load +ping +lmove +blmove +hget +llen +lindex +sadd +set +get +blpop "
    "+lpush "
    "+ltrim +subscribe +hset +hmget +hincrby +hdel +exists +incr +decr +publish +rpop +rpush +lpop +smembers "
    "+srem +del +pexpire +pttl ~mpq:* ~mpl:* &mpq:*";

// expect_secret_free(what): no form of the password in an error message.
void expect_secret_free(const std::string& what) {
  EXPECT_EQ(what.find("s3cr3t"), std::string::npos) << what;
  EXPECT_EQ(what.find(kEncoded), std::string::npos) << what;
}

}  // namespace

TEST(RedisCredentials, RequirepassPasswordInTheUrlIsSentOnEveryConnection) {
  mp::test::RedisServer server({"--requirepass", kPassword}, {kPassword});
  const std::string url = url_with(server, ":" + kEncoded);
  mp::redis::JoinableQueue<int> q(url, "guarded");
  q.put(1);
  EXPECT_EQ(q.get(), 1);
  q.task_done();
  mp::redis::Lock lock(url, "guarded");
  EXPECT_TRUE(lock.try_lock());
  lock.unlock();
  server.restart();  // every connection is new: each must log in again
  q.put(2);
  EXPECT_EQ(q.get(5s), 2);
  q.task_done();
  q.join();
  EXPECT_TRUE(lock.try_lock_for(5s));
  lock.unlock();
  EXPECT_EQ(server.integer({"GET", "mpq:{guarded}:unfinished"}), 0);
}

TEST(RedisCredentials, AclUserWithOnlyWhatMpNeeds) {
  mp::test::RedisServer server;
  std::vector<std::string> setuser = {"ACL", "SETUSER", "worker", "reset", "on", ">" + kPassword};
  std::string rules = kMpAcl;
  for (std::size_t start = 0; start < rules.size();) {
    auto end = rules.find(' ', start);
    if (end == std::string::npos) end = rules.size();
    setuser.push_back(rules.substr(start, end - start));
    start = end + 1;
  }
  auto set = server.command_argv(setuser);
  ASSERT_TRUE(set && set->type == REDIS_REPLY_STATUS) << (set ? set->str : "no reply");
  // The user loads mp's library itself (function|load); an administrator may load it instead.
  const std::string url = url_with(server, "worker:" + kEncoded);
  mp::redis::JoinableQueue<std::string> q(url, "acl", 2);
  q.put("a");
  q.put("b");
  EXPECT_THROW(q.put_nowait("c"), mp::Full);
  EXPECT_EQ(q.get(), "a");
  q.task_done();
  EXPECT_EQ(q.get(), "b");
  q.task_done();
  q.join();
  mp::redis::Lock lock(url, "acl", 300ms);
  lock.lock();
  std::this_thread::sleep_for(400ms);  // renewed meanwhile (FCALL mp2_lock_extend)
  lock.unlock();
  EXPECT_GT(lock.fencing_token(), 0u);
}

TEST(RedisCredentials, RefusedLoginIsAuthenticationErrorAtOnceWithoutThePassword) {
  mp::test::RedisServer server({"--requirepass", "right-one"}, {"right-one"});
  auto start = Clock::now();
  try {
    mp::redis::Queue<int> q(url_with(server, ":" + kEncoded), "wrong");
    ADD_FAILURE() << "opened";
  } catch (const mp::AuthenticationError& e) {
    expect_secret_free(e.what());
    EXPECT_NE(std::string(e.what()).find(std::to_string(server.port())), std::string::npos) << e.what();
  }
  try {
    mp::redis::Queue<int> q(server.url(), "none");  // no password for a server that wants one
    ADD_FAILURE() << "opened";
  } catch (const mp::AuthenticationError& e) {
    EXPECT_NE(std::string(e.what()).find("NOAUTH"), std::string::npos) << e.what();
  }
  mp::redis::Lock lock(url_with(server, "nobody:" + kEncoded), "wrong");
  try {
    (void)lock.try_lock();
    ADD_FAILURE() << "acquired";
  } catch (const mp::AuthenticationError& e) {
    expect_secret_free(e.what());
    EXPECT_NE(std::string(e.what()).find("nobody"), std::string::npos) << e.what();
  }
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - start).count(), 3.0);  // never retried as an outage
}

TEST(RedisCredentials, ThePasswordIsInNoErrorMessage) {
  // A malformed url.
  for (const std::string& url : std::vector<std::string>{
           "redis://:" + kEncoded + "@127.0.0.1:notaport", "redis://:" + kEncoded + "@:6379",
           std::string("redis://:s3cr3t%zz@127.0.0.1:6379"), "http://:" + kEncoded + "@127.0.0.1:6379"}) {
    try {
      mp::redis::Queue<int> q(url, "q");
      ADD_FAILURE() << "accepted";
    } catch (const mp::ValueError& e) {
      expect_secret_free(e.what());
    }
  }
  // An unreachable server.
  mp::redis::Options options;
  options.server_timeout = 300ms;
  const std::string nowhere =
      "redis://:" + kEncoded + "@127.0.0.1:" + std::to_string(mp::test::free_tcp_port());
  try {
    mp::redis::Queue<int> q(nowhere, "q", 0, options);
    ADD_FAILURE() << "opened";
  } catch (const mp::ConnectionError& e) {
    expect_secret_free(e.what());
    EXPECT_NE(std::string(e.what()).find(":***@"), std::string::npos) << e.what();
  }
  // A server lost during calls, and errors the queue and the lock raise themselves.
  mp::test::RedisServer server({"--requirepass", kPassword}, {kPassword});
  const std::string url = url_with(server, ":" + kEncoded);
  mp::redis::JoinableQueue<int> q(url, "q", 0, options);
  try {
    mp::redis::Queue<std::string> other(url, "q");
    ADD_FAILURE() << "another type accepted";
  } catch (const mp::ValueError& e) {
    expect_secret_free(e.what());
  }
  mp::redis::Lock lock(url, "l", 100ms, options);
  lock.lock();
  server.freeze();
  std::this_thread::sleep_for(300ms);
  server.thaw();
  try {
    lock.unlock();
  } catch (const mp::Error& e) {
    expect_secret_free(e.what());
  }
  server.kill9();
  std::vector<std::string> messages;
  try {
    q.put(1);
  } catch (const mp::Error& e) {
    messages.push_back(e.what());
  }
  try {
    (void)q.get(200ms);
  } catch (const mp::Error& e) {
    messages.push_back(e.what());
  }
  try {
    lock.lock();
  } catch (const mp::Error& e) {
    messages.push_back(e.what());
  }
  ASSERT_EQ(messages.size(), 3u);
  for (const auto& what : messages) expect_secret_free(what);
}
