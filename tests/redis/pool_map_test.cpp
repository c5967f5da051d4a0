// mp::redis::Pool's map-like calls (imap, imap_unordered, map_async) and its lifecycle
// (close, terminate, join) against worker hosts (serve) in other processes.
// Worker hosts are forked before the Pool exists: the Pool runs a receiver thread.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "mp/redis/pool.hpp"
#include "redis/redis_server.hpp"
#include "redis/serve_host.hpp"
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
int add(int a, int b) { return a + b; }
}  // namespace maptasks

MP_TASK(maptasks::cube);
MP_TASK(maptasks::odd_refused);
MP_TASK(maptasks::held_until);
MP_TASK(maptasks::nothing);
MP_TASK(maptasks::add);

namespace {

void touch(const std::string& path) {
  int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  if (fd >= 0) ::close(fd);
}

using mp::test::start_host;
using mp::test::stop_host;

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

TEST(RedisPoolMap, ImapUnorderedYieldsEveryResultOnce) {
  mp::test::RedisServer server;
  pid_t host = start_host(server.url(), "unordered", 2);
  {
    mp::redis::Pool pool(server.url(), "unordered");
    std::vector<int> items;
    for (int i = 0; i < 30; ++i) items.push_back(i);
    std::vector<int> seen;
    for (int v : pool.imap_unordered(&maptasks::cube, items)) seen.push_back(v);
    std::sort(seen.begin(), seen.end());
    ASSERT_EQ(seen.size(), items.size());
    for (int i = 0; i < 30; ++i) EXPECT_EQ(seen[i], i * i * i);
  }
  stop_host(host);
}

// The iterator alone (no server): imap_unordered yields in the order tasks finish, imap in
// input order; a failed item throws once and the iteration moves past it.
TEST(RedisPoolMap, ImapUnorderedFollowsTheOrderTasksFinish) {
  using mp::redis::detail::TaskState;
  auto make_states = [] {
    mp::redis::detail::TaskStates states;
    for (int i = 0; i < 4; ++i) states.push_back(std::make_shared<TaskState>());
    return states;
  };
  auto done = [](TaskState& state, int value) {
    state.finish(TaskState::Status::ok, mp::encode(value), "", "");
  };
  auto states = make_states();
  done(*states[2], 20);  // finished before the iterator exists
  mp::redis::IMapIterator<int> unordered(states, false);
  EXPECT_EQ(unordered.next(), 20);
  EXPECT_THROW((void)unordered.next(std::chrono::milliseconds(1)), mp::TimeoutError);  // nothing else yet
  done(*states[3], 30);
  states[0]->finish(TaskState::Status::remote_error, {}, "std::runtime_error", "boom");
  done(*states[1], 10);
  EXPECT_EQ(unordered.next(), 30);
  EXPECT_THROW((void)unordered.next(), mp::RemoteError);
  EXPECT_EQ(unordered.next(), 10);
  EXPECT_FALSE(unordered.next().has_value());

  auto in_order = make_states();
  mp::redis::IMapIterator<int> ordered(in_order, true);
  done(*in_order[1], 1);
  EXPECT_THROW((void)ordered.next(std::chrono::milliseconds(1)), mp::TimeoutError);  // the first is not in
  for (int i : {0, 2, 3}) done(*in_order[i], i);
  std::vector<int> seen;
  for (int v : ordered) seen.push_back(v);
  EXPECT_EQ(seen, (std::vector<int>{0, 1, 2, 3}));
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

TEST(RedisPoolMap, AResultForAGoneSubmitterIsNotLeftOnTheServer) {
  mp::test::RedisServer server;
  const std::string release = server.dir() + "/release";
  pid_t host = start_host(server.url(), "gone", 1);
  {
    std::optional<mp::redis::AsyncResult<int>> abandoned;
    {
      mp::redis::Pool pool(server.url(), "gone");
      abandoned.emplace(pool.apply_async(&maptasks::held_until, release));
      ASSERT_TRUE(mp::test::eventually([&] { return server.integer({"LLEN", "mpq:{gone}:items"}) == 0; }));
    }  // the submitter goes (and deletes its result queue) while its task runs
    EXPECT_THROW((void)abandoned->get(), mp::WorkerLost);
    touch(release);
    // One local worker runs tasks in the order taken: once this result is in, the host has
    // answered (or dropped) the abandoned one.
    mp::redis::Pool next(server.url(), "gone");
    EXPECT_EQ(next.apply(&maptasks::cube, 2), 8);
    auto keys = server.command({"KEYS", "mpq:{gone.results.*"});
    ASSERT_TRUE(keys && keys->type == REDIS_REPLY_ARRAY);
    std::set<std::string> queues;  // the result queues with keys: only the live submitter's
    for (std::size_t i = 0; i < keys->elements; ++i) {
      std::string key(keys->element[i]->str, keys->element[i]->len);
      queues.insert(key.substr(0, key.find('}')));
    }
    std::string all;
    for (std::size_t i = 0; i < keys->elements; ++i) all += std::string(keys->element[i]->str) + " ";
    EXPECT_EQ(queues.size(), 1u) << all;
  }
  stop_host(host);
}

TEST(RedisPoolMap, ChunksizeSendsSeveralItemsAsOneTask) {
  mp::test::RedisServer server;
  pid_t host = start_host(server.url(), "chunks", 2);
  {
    mp::redis::Pool pool(server.url(), "chunks");
    std::vector<int> items;
    for (int i = 0; i < 10; ++i) items.push_back(i);
    std::vector<int> cubes = pool.map(&maptasks::cube, items, 4);  // tasks of 4, 4 and 2 items
    ASSERT_EQ(cubes.size(), items.size());
    for (int i = 0; i < 10; ++i) EXPECT_EQ(cubes[i], i * i * i);
    // Three tasks went through the queue (a host acknowledges a task just after its result, so
    // the count may trail the results by a moment).
    EXPECT_TRUE(mp::test::eventually([&] {
      auto done = server.command({"HGET", "mpq:{chunks}:stats", "done"});
      return done && done->type == REDIS_REPLY_STRING && std::string(done->str, done->len) == "3";
    }));
    EXPECT_EQ(server.integer({"GET", "mpq:{chunks}:unfinished"}), 0);

    std::vector<std::tuple<int, int>> pairs{{1, 2}, {3, 4}, {5, 6}};
    EXPECT_EQ(pool.starmap(&maptasks::add, pairs, 2), (std::vector<int>{3, 7, 11}));

    std::vector<int> in_order;
    for (int v : pool.imap(&maptasks::cube, items, 3)) in_order.push_back(v);
    EXPECT_EQ(in_order, cubes);
    std::vector<int> any_order;
    for (int v : pool.imap_unordered(&maptasks::cube, items, 3)) any_order.push_back(v);
    std::sort(any_order.begin(), any_order.end());
    EXPECT_EQ(any_order, cubes);

    // One item's exception fails its chunk: map throws it, imap throws it for each item of the chunk.
    EXPECT_THROW((void)pool.map(&maptasks::odd_refused, std::vector<int>{2, 4, 6, 7}, 2), mp::RemoteError);
    auto mixed = pool.imap(&maptasks::odd_refused, std::vector<int>{2, 4, 6, 7}, 2);
    EXPECT_EQ(mixed.next(), 2);
    EXPECT_EQ(mixed.next(), 4);
    EXPECT_THROW((void)mixed.next(), mp::RemoteError);  // 6 shares a chunk with 7
    EXPECT_THROW((void)mixed.next(), mp::RemoteError);
    EXPECT_FALSE(mixed.next().has_value());

    EXPECT_THROW((void)pool.imap(&maptasks::cube, items, 0), mp::ValueError);
    pool.map_async(&maptasks::nothing, items, 4).get();
  }
  stop_host(host);
}
