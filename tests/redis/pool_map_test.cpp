// mp::redis::Pool's map-like calls (imap, imap_unordered, map_async) and its lifecycle
// (close, terminate, join) against worker hosts (serve) in other processes.
// Worker hosts are forked before the Pool exists: the Pool runs a receiver thread.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include "mp/redis/pool.hpp"
#include "redis/redis_server.hpp"
#include "support/child.hpp"

namespace maptasks {
int cube(int x) { return x * x * x; }
int odd_refused(int x) {
  if (x % 2 != 0) throw std::invalid_argument("odd " + std::to_string(x));
  return x;
}
// held_until(path): returns 1 once the file at path exists (at most 20 s), -1 if it never does.
int held_until(std::string path) {
  for (int i = 0; i < 4000; ++i) {
    if (::access(path.c_str(), F_OK) == 0) return 1;
    ::usleep(5000);
  }
  return -1;
}
void nothing(int) {}
}  // namespace maptasks

MP_TASK(maptasks::cube);
MP_TASK(maptasks::odd_refused);
MP_TASK(maptasks::held_until);
MP_TASK(maptasks::nothing);

namespace {

void touch(const std::string& path) {
  int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  if (fd >= 0) ::close(fd);
}

pid_t start_host(const std::string& url, const std::string& name, int processes) {
  return mp::test::fork_child([=] { return mp::redis::serve(url, name, {processes}); });
}

void stop_host(pid_t host) {
  ::kill(host, SIGTERM);
  EXPECT_EQ(mp::test::wait_child(host), 0);
}

}  // namespace

TEST(RedisPoolMap, ImapYieldsInInputOrder) {
  mp::test::RedisServer server;
  pid_t host = start_host(server.url(), "imap", 2);
  {
    mp::redis::Pool pool(server.url(), "imap");
    std::vector<int> items;
    for (int i = 0; i < 40; ++i) items.push_back(i);
    std::vector<int> seen;
    for (int v : pool.imap(&maptasks::cube, items)) seen.push_back(v);
    ASSERT_EQ(seen.size(), items.size());
    for (int i = 0; i < 40; ++i) EXPECT_EQ(seen[i], i * i * i);
    auto it = pool.imap(&maptasks::cube, std::vector<int>{});
    EXPECT_FALSE(it.next().has_value());  // nothing submitted: ends at once
  }
  stop_host(host);
}

TEST(RedisPoolMap, ImapUnorderedYieldsResultsAsTheyArrive) {
  mp::test::RedisServer server;
  const std::string release = server.dir() + "/release";
  pid_t host = start_host(server.url(), "unordered", 2);
  {
    mp::redis::Pool pool(server.url(), "unordered");
    // The first task waits for a file that is only made after three other results arrived:
    // imap_unordered must hand those out first (imap would wait for the first).
    std::vector<std::string> items{release, server.dir() + "/a", server.dir() + "/b", server.dir() + "/c"};
    for (std::size_t i = 1; i < items.size(); ++i) touch(items[i]);
    auto results = pool.imap_unordered(&maptasks::held_until, items);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(results.next(std::chrono::seconds(30)), 1) << i;
    EXPECT_THROW((void)results.next(std::chrono::milliseconds(1)), mp::TimeoutError);  // still held
    touch(release);
    EXPECT_EQ(results.next(std::chrono::seconds(30)), 1);
    EXPECT_FALSE(results.next().has_value());
  }
  stop_host(host);
}

TEST(RedisPoolMap, MapAsyncGivesEveryValueInOrderOrTheFirstFailure) {
  mp::test::RedisServer server;
  pid_t host = start_host(server.url(), "mapasync", 2);
  {
    mp::redis::Pool pool(server.url(), "mapasync");
    std::vector<int> items{3, 1, 4, 1, 5, 9, 2, 6};
    mp::redis::AsyncResult<std::vector<int>> cubes = pool.map_async(&maptasks::cube, items);
    EXPECT_TRUE(cubes.wait(std::chrono::seconds(30)));
    EXPECT_TRUE(cubes.ready());
    EXPECT_TRUE(cubes.successful());
    EXPECT_EQ(cubes.get(), (std::vector<int>{27, 1, 64, 1, 125, 729, 8, 216}));

    auto mixed = pool.map_async(&maptasks::odd_refused, std::vector<int>{2, 4, 7, 8, 9});
    try {
      (void)mixed.get(std::chrono::seconds(30));
      ADD_FAILURE() << "no error";
    } catch (const mp::RemoteError& e) {
      EXPECT_NE(std::string(e.what()).find("odd 7"), std::string::npos) << e.what();  // the first in order
    }
    EXPECT_FALSE(mixed.successful());

    auto voids = pool.map_async(&maptasks::nothing, std::vector<int>{1, 2, 3});
    voids.get(std::chrono::seconds(30));
    EXPECT_TRUE(voids.successful());
    EXPECT_EQ(pool.map(&maptasks::cube, std::vector<int>{}), std::vector<int>{});
  }
  stop_host(host);
}

TEST(RedisPoolMap, CloseThenJoinWaitsForEveryResult) {
  mp::test::RedisServer server;
  pid_t host = start_host(server.url(), "joined", 2);
  {
    mp::redis::Pool pool(server.url(), "joined");
    EXPECT_THROW(pool.join(), mp::ValueError);  // not closed yet
    auto results = pool.map_async(&maptasks::cube, std::vector<int>{1, 2, 3, 4, 5, 6});
    pool.close();
    EXPECT_THROW((void)pool.apply_async(&maptasks::cube, 1), mp::ValueError);
    pool.join();
    EXPECT_TRUE(results.ready());
    EXPECT_EQ(results.get(), (std::vector<int>{1, 8, 27, 64, 125, 216}));
  }
  stop_host(host);
}

TEST(RedisPoolMap, TerminateFailsWhatIsNotInYetAndNothingWaitsForever) {
  mp::test::RedisServer server;
  // No worker host at all: nothing will ever answer.
  mp::redis::Pool pool(server.url(), "nobody-home");
  auto waiting = pool.apply_async(&maptasks::cube, 2);
  auto iterated = pool.imap(&maptasks::cube, std::vector<int>{1, 2});
  EXPECT_FALSE(waiting.wait(std::chrono::milliseconds(1)));
  pool.terminate();
  EXPECT_THROW((void)waiting.get(), mp::WorkerLost);
  EXPECT_THROW((void)iterated.next(), mp::WorkerLost);
  EXPECT_THROW((void)pool.apply_async(&maptasks::cube, 1), mp::ValueError);
  pool.join();  // nothing left to wait for

  // A result handle outlives its Pool: it fails rather than waiting forever.
  std::optional<mp::redis::AsyncResult<int>> orphan;
  {
    mp::redis::Pool short_lived(server.url(), "nobody-home");
    orphan.emplace(short_lived.apply_async(&maptasks::cube, 3));
  }
  try {
    (void)orphan->get();
    ADD_FAILURE() << "no error";
  } catch (const mp::WorkerLost& e) {
    EXPECT_NE(std::string(e.what()).find("destroyed"), std::string::npos) << e.what();
  }
}
