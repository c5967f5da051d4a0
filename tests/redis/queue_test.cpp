// Every member and error of mp::redis::Queue / JoinableQueue, mirrored from
// the shared-memory queue's tests, against a throwaway server per test.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "mp/redis.hpp"
#include "redis/redis_server.hpp"
#include "support/child.hpp"

using namespace std::chrono_literals;

namespace {

mp::redis::Options fast() {
  mp::redis::Options options;
  options.lease = 400ms;
  options.server_timeout = 3s;
  return options;
}

struct Point {
  std::int32_t x = 0;
  double y = 0;
  std::string label;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(x, y, label);
  }
};

}  // namespace

TEST(RedisQueue, PutGetIsFifoAndQsizeIsExact) {
  mp::test::RedisServer server;
  mp::redis::Queue<int> q(server.url(), "fifo");
  EXPECT_TRUE(q.empty());
  for (int i = 0; i < 5; ++i) q.put(i);
  EXPECT_EQ(q.qsize(), 5u);
  EXPECT_FALSE(q.empty());
  EXPECT_FALSE(q.full());  // unbounded
  for (int i = 0; i < 5; ++i) EXPECT_EQ(q.get(), i);
  EXPECT_EQ(q.qsize(), 0u);
  EXPECT_TRUE(q.empty());
  // A plain Queue acknowledges at get: nothing is left unfinished.
  EXPECT_EQ(server.integer({"GET", "mpq:{fifo}:unfinished"}), 0);
}

TEST(RedisQueue, NowaitAndTimeoutsRaiseFullAndEmpty) {
  mp::test::RedisServer server;
  mp::redis::Queue<std::string> q(server.url(), "bounded", 2);
  EXPECT_EQ(q.maxsize(), 2u);
  EXPECT_THROW((void)q.get_nowait(), mp::Empty);
  EXPECT_THROW((void)q.get(50ms), mp::Empty);
  EXPECT_FALSE(q.try_get().has_value());
  q.put_nowait("a");
  EXPECT_TRUE(q.try_put("b"));
  EXPECT_TRUE(q.full());
  EXPECT_THROW(q.put_nowait("c"), mp::Full);
  EXPECT_FALSE(q.try_put("c"));
  EXPECT_THROW(q.put("c", 50ms), mp::Full);
  EXPECT_EQ(q.qsize(), 2u);
  EXPECT_EQ(q.get_nowait(), "a");
  EXPECT_EQ(q.try_get(), std::optional<std::string>("b"));
  q.put("c", 1s);
  EXPECT_EQ(q.get(1s), "c");
}

TEST(RedisQueue, CarriesStructsAndLargeItemsIntact) {
  mp::test::RedisServer server;
  mp::redis::Queue<Point> points(server.url(), "points");
  points.put(Point{7, 2.5, "seven"});
  Point p = points.get();
  EXPECT_EQ(p.x, 7);
  EXPECT_EQ(p.y, 2.5);
  EXPECT_EQ(p.label, "seven");

  mp::redis::Queue<std::vector<std::uint8_t>> blobs(server.url(), "blobs");
  std::vector<std::uint8_t> big(4 << 20);
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<std::uint8_t>(i * 131 + 7);
  blobs.put(big);
  EXPECT_EQ(blobs.get(), big);
}

TEST(RedisQueue, BlockedPutCompletesWhenAnotherProcessGets) {
  mp::test::RedisServer server;
  mp::redis::Queue<int> q(server.url(), "wake", 1);
  q.put(1);
  // The child is forked before the producer thread starts: a fork while another thread
  // allocates can leave the child's allocator locked (seen once under ASan: a 300 s hang).
  pid_t child = mp::test::fork_child([&] {
    std::this_thread::sleep_for(300ms);  // the producer is blocked by then (not asserted)
    mp::redis::Queue<int> mine(server.url(), "wake");
    return mine.get(10s) == 1 ? 0 : 1;
  });
  std::atomic<bool> put_done{false};
  std::thread producer([&] {
    q.put(2);  // blocks: full
    put_done = true;
  });
  EXPECT_EQ(mp::test::wait_child(child), 0);
  producer.join();
  EXPECT_TRUE(put_done);
  EXPECT_EQ(q.get(), 2);
}

TEST(RedisQueue, BlockedGetReceivesAnotherProcessesPut) {
  mp::test::RedisServer server;
  mp::redis::Queue<std::string> q(server.url(), "handoff");
  pid_t child = mp::test::fork_child([&] {
    // The child uses the handle made before the fork: it must open its own connection.
    q.put("from child");
    return 0;
  });
  EXPECT_EQ(q.get(10s), "from child");
  EXPECT_EQ(mp::test::wait_child(child), 0);
}

TEST(RedisQueue, SeparateHandlesMeetByUrlAndName) {
  mp::test::RedisServer server;
  mp::redis::Queue<int> a(server.url(), "shared");
  mp::redis::Queue<int> b(server.url(), "shared");
  mp::redis::Queue<int> other(server.url(), "other");
  a.put(41);
  EXPECT_EQ(b.qsize(), 1u);
  EXPECT_TRUE(other.empty());
  EXPECT_EQ(b.get(), 41);
}

TEST(RedisQueue, CloseForbidsPutsHereOnly) {
  mp::test::RedisServer server;
  mp::redis::Queue<int> q(server.url(), "closing");
  mp::redis::Queue<int> elsewhere(server.url(), "closing");
  q.put(1);
  q.close();
  EXPECT_THROW(q.put(2), mp::ValueError);
  EXPECT_THROW(q.put_nowait(2), mp::ValueError);
  elsewhere.put(3);
  EXPECT_EQ(q.get(), 1);
  EXPECT_EQ(q.get(), 3);
}

TEST(RedisQueue, ShutdownRefusesPutsDrainsGetsAndWakesWaiters) {
  mp::test::RedisServer server;
  mp::redis::Queue<int> q(server.url(), "ending", 1, fast());
  std::atomic<bool> getter_saw_shutdown{false};
  std::atomic<bool> putter_saw_shutdown{false};
  mp::redis::Queue<int> other(server.url(), "ending2", 0, fast());
  std::thread waiter([&] {
    try {
      (void)other.get();
    } catch (const mp::ShutDown&) {
      getter_saw_shutdown = true;
    }
  });
  q.put(1);
  std::thread blocked_put([&] {
    try {
      q.put(2);  // full: waits until shutdown
    } catch (const mp::ShutDown&) {
      putter_saw_shutdown = true;
    }
  });
  std::this_thread::sleep_for(100ms);
  other.shutdown();
  q.shutdown();
  waiter.join();
  blocked_put.join();
  EXPECT_TRUE(getter_saw_shutdown);
  EXPECT_TRUE(putter_saw_shutdown);
  EXPECT_THROW(q.put(3), mp::ShutDown);
  EXPECT_THROW(q.put_nowait(3), mp::ShutDown);
  EXPECT_EQ(q.get(), 1);  // drains what is left
  EXPECT_THROW((void)q.get(), mp::ShutDown);
  EXPECT_THROW((void)q.get_nowait(), mp::ShutDown);
}

TEST(RedisJoinableQueue, TaskDoneAndJoinCountEveryItem) {
  mp::test::RedisServer server;
  mp::redis::JoinableQueue<int> q(server.url(), "jobs", 0, fast());
  q.join();  // nothing put: returns at once
  EXPECT_THROW(q.task_done(), mp::ValueError);
  constexpr int kItems = 20;
  for (int i = 0; i < kItems; ++i) q.put(i);
  pid_t worker = mp::test::fork_child([&] {
    for (int i = 0; i < kItems; ++i) {
      if (q.get(10s) != i) return 1;
      q.task_done();
    }
    return 0;
  });
  q.join();
  EXPECT_EQ(server.integer({"GET", "mpq:{jobs}:unfinished"}), 0);
  EXPECT_EQ(mp::test::wait_child(worker), 0);
  EXPECT_TRUE(q.empty());
}

TEST(RedisJoinableQueue, TaskDoneMoreThanGetsIsValueError) {
  mp::test::RedisServer server;
  mp::redis::JoinableQueue<int> q(server.url(), "extra", 0, fast());
  q.put(1);
  EXPECT_EQ(q.get(), 1);
  q.task_done();
  try {
    q.task_done();
    FAIL() << "task_done() twice did not throw";
  } catch (const mp::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("task_done"), std::string::npos);
  }
  EXPECT_EQ(server.integer({"GET", "mpq:{extra}:unfinished"}), 0);
}

TEST(RedisJoinableQueue, UnackedItemsGoBackWhenTheHandleIsDropped) {
  mp::test::RedisServer server;
  mp::redis::JoinableQueue<int> q(server.url(), "giveback", 0, fast());
  q.put(1);
  q.put(2);
  {
    mp::redis::JoinableQueue<int> consumer(server.url(), "giveback", 0, fast());
    EXPECT_EQ(consumer.get(), 1);
  }  // dropped without task_done: 1 is handed back, first in line
  EXPECT_EQ(q.qsize(), 2u);
  EXPECT_EQ(q.get(), 1);
  q.task_done();
  EXPECT_EQ(q.get(), 2);
  q.task_done();
  q.join();
}

TEST(RedisQueue, AnotherItemTypeUnderTheNameIsRefused) {
  mp::test::RedisServer server;
  mp::redis::Queue<std::int64_t> ints(server.url(), "typed");
  ints.put(5);
  try {
    mp::redis::Queue<std::string> strings(server.url(), "typed");
    FAIL() << "opening with another type did not throw";
  } catch (const mp::ValueError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find(mp::codec_signature<std::int64_t>()), std::string::npos) << what;
    EXPECT_NE(what.find(mp::codec_signature<std::string>()), std::string::npos) << what;
  }
  // A plain Redis value under the queue's key is refused with a clear error, too.
  server.command({"SET", "mpq:{clash}:items", "not a list"});
  mp::redis::Queue<int> clash(server.url(), "clash");
  EXPECT_THROW(clash.put(1), mp::ValueError);
  // A different maxsize than the creator's is refused; 0 adopts it.
  mp::redis::Queue<int> sized(server.url(), "sized", 3);
  EXPECT_THROW((mp::redis::Queue<int>(server.url(), "sized", 4)), mp::ValueError);
  EXPECT_EQ((mp::redis::Queue<int>(server.url(), "sized")).maxsize(), 3u);
}

TEST(RedisQueue, MalformedUrlIsValueErrorNamingIt) {
  for (const char* url : {"http://127.0.0.1:6379", "redis://", "redis://:6379", "redis://host:port",
                          "redis://host:70000", "redis://host:6379/x", "127.0.0.1:6379"}) {
    try {
      mp::redis::Queue<int> q(url, "q");
      ADD_FAILURE() << url << " was accepted";
    } catch (const mp::ValueError& e) {
      EXPECT_NE(std::string(e.what()).find(url), std::string::npos) << e.what();
    }
    EXPECT_THROW((mp::redis::Lock(url, "l")), mp::ValueError) << url;
  }
}

TEST(RedisQueue, UnreachableServerIsConnectionError) {
  int port = mp::test::free_tcp_port();  // nothing listens there
  mp::redis::Options options;
  options.server_timeout = 300ms;
  try {
    mp::redis::Queue<int> q("redis://127.0.0.1:" + std::to_string(port), "nowhere", 0, options);
    FAIL() << "no error";
  } catch (const mp::ConnectionError& e) {
    EXPECT_NE(std::string(e.what()).find(std::to_string(port)), std::string::npos) << e.what();
  }
}

TEST(RedisQueue, DatabaseNumberInTheUrlIsUsed) {
  mp::test::RedisServer server;
  mp::redis::Queue<int> q(server.url() + "/3", "indb");
  q.put(1);
  EXPECT_EQ(server.integer({"EXISTS", "mpq:{indb}:items"}), 0);  // not in db 0
  EXPECT_EQ(q.get(), 1);
}

// Threads of one process sharing one handle (each blocking call takes its own
// connection); run under ThreadSanitizer by the tsan preset.
TEST(RedisQueueThreads, ThreadsShareOneHandle) {
  mp::test::RedisServer server;
  mp::redis::JoinableQueue<std::int32_t> q(server.url(), "threads", 8, fast());
  constexpr int kPerThread = 100;
  constexpr int kThreads = 3;
  std::vector<std::thread> threads;
  std::atomic<long long> sum{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) q.put(t * kPerThread + i);
    });
    threads.emplace_back([&] {
      for (int i = 0; i < kPerThread; ++i) {
        sum += q.get(20s);
        q.task_done();
      }
    });
  }
  for (auto& t : threads) t.join();
  q.join();
  constexpr long long kCount = kThreads * kPerThread;
  EXPECT_EQ(sum.load(), kCount * (kCount - 1) / 2);
  EXPECT_TRUE(q.empty());
}

// QueueCore::put_many / get_many (what mp::redis::Pool's hosts and submitters use): pipelined,
// in order, and every item taken by get_many is acknowledged on its own.
TEST(RedisQueue, PutManyAndGetManyKeepOrderAndEachItemIsAcknowledgedOnItsOwn) {
  mp::test::RedisServer server;
  mp::redis::detail::QueueCore core(server.url(), "many", 0, true, mp::codec_signature<int>(), fast());
  std::vector<std::vector<std::byte>> items;
  for (int i = 0; i < 150; ++i) items.push_back(mp::encode(i));  // more than one pipelined batch
  EXPECT_EQ(core.put_many(items, mp::detail::Deadline::never()), 150U);
  EXPECT_EQ(core.qsize(), 150U);
  auto first = core.get_many(10, mp::detail::Deadline::after(1s));
  ASSERT_EQ(first.size(), 10U);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(mp::decode<int>(first[i]), i);
  EXPECT_EQ(server.integer({"GET", "mpq:{many}:unfinished"}), 150);
  for (int i = 0; i < 10; ++i) core.task_done();
  EXPECT_EQ(server.integer({"GET", "mpq:{many}:unfinished"}), 140);
  auto rest = core.get_many(500, mp::detail::Deadline::after(1s));
  ASSERT_EQ(rest.size(), 140U);
  for (int i = 0; i < 140; ++i) EXPECT_EQ(mp::decode<int>(rest[i]), 10 + i);
  core.task_done_many(139);                              // together: one deferred batch
  EXPECT_THROW(core.task_done_many(2), mp::ValueError);  // only one is held still
  core.task_done_many(1);
  core.join();
  EXPECT_THROW(core.task_done(), mp::ValueError);
  EXPECT_TRUE(core.get_many(5, mp::detail::Deadline::after(100ms)).empty());
  // A batch is one call on the server: one retry record for this writer, not one per item.
  EXPECT_EQ(server.integer({"HLEN", "mpq:{many}:producers"}), 1);
}

// A bounded queue takes what fits of a batch; the rest waits for room (as put() does) and
// follows in order once a consumer makes room. The consumer's get_many of several items wakes
// the waiting producer (before, only a get that left maxsize - 1 items did: each batch waited
// out the producer's 1 s re-check, ~7 s here, past the 5 s allowed).
TEST(RedisQueue, PutManyOnAFullBoundedQueueWaitsForRoomAndKeepsOrder) {
  mp::test::RedisServer server;
  mp::redis::detail::QueueCore core(server.url(), "bounded-wait", 4, true, mp::codec_signature<int>(),
                                    fast());
  std::vector<std::vector<std::byte>> items;
  for (int i = 0; i < 30; ++i) items.push_back(mp::encode(i));
  std::vector<int> got;
  std::thread consumer([&] {
    mp::redis::detail::QueueCore mine(server.url(), "bounded-wait", 0, true, mp::codec_signature<int>(),
                                      fast());
    while (got.size() < 30) {
      auto batch = mine.get_many(3, mp::detail::Deadline::after(10s));
      if (batch.empty()) break;  // the producer gave up: the failure is reported below
      for (const auto& bytes : batch) got.push_back(mp::decode<int>(bytes));
      EXPECT_LE(mine.qsize(), 4U);
    }
    mine.task_done_many(got.size());
  });
  EXPECT_EQ(core.put_many(items, mp::detail::Deadline::after(5s)), 30U);
  consumer.join();
  ASSERT_EQ(got.size(), 30U);
  for (int i = 0; i < 30; ++i) EXPECT_EQ(got[i], i);
  core.join();
  EXPECT_EQ(server.integer({"GET", "mpq:{bounded-wait}:unfinished"}), 0);
}

TEST(RedisQueue, PutManyOnABoundedQueueStopsWhenFullAndAPlainGetManyTakesEach) {
  mp::test::RedisServer server;
  mp::redis::detail::QueueCore core(server.url(), "bounded-many", 5, false, mp::codec_signature<int>(),
                                    fast());
  std::vector<std::vector<std::byte>> items;
  for (int i = 0; i < 7; ++i) items.push_back(mp::encode(i));
  EXPECT_EQ(core.put_many(items, mp::detail::Deadline::after(100ms)), 5U);
  auto got = core.get_many(10, mp::detail::Deadline::after(1s));
  ASSERT_EQ(got.size(), 5U);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(mp::decode<int>(got[i]), i);
  EXPECT_EQ(core.qsize(), 0U);
  EXPECT_EQ(server.integer({"GET", "mpq:{bounded-many}:unfinished"}), 0);  // a plain get acknowledges
  core.shutdown();
  EXPECT_THROW((void)core.get_many(3, mp::detail::Deadline::after(100ms)), mp::ShutDown);
}
