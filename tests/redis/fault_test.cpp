// Faults: consumers killed or stalled while holding items, the server killed
// and restarted, the server gone while calls wait, forks sharing a handle.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/leak_check.hpp"
#include "mp/redis.hpp"
#include "redis/redis_server.hpp"
#include "support/child.hpp"

using namespace std::chrono_literals;

namespace {

mp::redis::Options fast() {
  mp::redis::Options options;
  options.lease = 400ms;
  options.server_timeout = 5s;
  return options;
}

struct Pipe {
  Pipe() {
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2");
  }
  ~Pipe() {
    close_read();
    close_write();
  }
  void close_read() {
    if (fds[0] >= 0) ::close(fds[0]);
    fds[0] = -1;
  }
  void close_write() {
    if (fds[1] >= 0) ::close(fds[1]);
    fds[1] = -1;
  }
  template <class T>
  void write_value(const T& v) const {
    [[maybe_unused]] auto n = ::write(fds[1], &v, sizeof v);
  }
  // read_value(out, timeout_ms): false on timeout or EOF.
  template <class T>
  bool read_value(T& out, int timeout_ms = 20000) const {
    pollfd p{fds[0], POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return false;
    return ::read(fds[0], &out, sizeof out) == static_cast<ssize_t>(sizeof out);
  }
  int fds[2] = {-1, -1};
};

// ReplyLosingProxy(server_port): a TCP proxy to the server, run by a thread of this process, so
// that a test can lose replies the server did send: every byte is passed on both ways until
// lose_replies(); from then on, on the connections open at that moment, requests still reach the
// server (which applies them) but its replies are dropped, and such a connection is closed once a
// reply was dropped and the client then sent nothing for 200 ms (it waits for that reply).
// Connections made later are passed on normally. No fork happens beside it.
class ReplyLosingProxy {
 public:
  explicit ReplyLosingProxy(int server_port) : server_port_(server_port) {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (listener_ < 0 || ::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(listener_, 16) != 0 ||
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      throw std::runtime_error("proxy: cannot listen");
    }
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { loop(); });
  }
  ReplyLosingProxy(const ReplyLosingProxy&) = delete;
  ReplyLosingProxy& operator=(const ReplyLosingProxy&) = delete;
  ~ReplyLosingProxy() {
    stop_ = true;
    thread_.join();
    for (auto& pair : pairs_) close_pair(pair);
    ::close(listener_);
  }
  [[nodiscard]] std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }
  void lose_replies() { lose_requested_ = true; }

 private:
  struct Pair {
    int client = -1, server = -1;
    bool losing = false;
    int lost = 0;  // replies dropped
    std::chrono::steady_clock::time_point last_request = std::chrono::steady_clock::now();
  };

  static void close_pair(Pair& pair) {
    if (pair.client >= 0) ::close(pair.client);
    if (pair.server >= 0) ::close(pair.server);
    pair.client = pair.server = -1;
  }

  void accept_one() {
    Pair pair;
    pair.client = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
    pair.server = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(static_cast<std::uint16_t>(server_port_));
    if (pair.client < 0 || pair.server < 0 ||
        ::connect(pair.server, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      close_pair(pair);
      return;
    }
    pairs_.push_back(pair);
  }

  // pass(from, to, drop): moves what `from` has to `to` (or drops it); false when `from` closed.
  static bool pass(int from, int to, bool drop) {
    char buffer[65536];
    ssize_t n = ::read(from, buffer, sizeof buffer);
    if (n <= 0) return false;
    if (drop) return true;
    for (ssize_t done = 0; done < n;) {
      ssize_t w = ::send(to, buffer + done, static_cast<std::size_t>(n - done), MSG_NOSIGNAL);
      if (w <= 0) return false;
      done += w;
    }
    return true;
  }

  void loop() {
    while (!stop_) {
      if (lose_requested_.exchange(false)) {
        for (auto& pair : pairs_) pair.losing = true;
      }
      std::vector<pollfd> fds{{listener_, POLLIN, 0}};
      for (auto& pair : pairs_) {
        fds.push_back({pair.client, POLLIN, 0});
        fds.push_back({pair.server, POLLIN, 0});
      }
      ::poll(fds.data(), fds.size(), 20);
      if ((fds[0].revents & POLLIN) != 0) accept_one();
      const auto now = std::chrono::steady_clock::now();
      for (std::size_t i = 0; i < fds.size() / 2; ++i) {
        Pair& pair = pairs_[i];
        bool open = true;
        if ((fds[1 + 2 * i].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
          open = pass(pair.client, pair.server, false);
          pair.last_request = now;
        }
        if (open && (fds[2 + 2 * i].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
          if (pair.losing) ++pair.lost;
          open = pass(pair.server, pair.client, pair.losing);
        }
        if (pair.losing && pair.lost > 0 && now - pair.last_request > std::chrono::milliseconds(200))
          open = false;
        if (!open) close_pair(pair);
      }
      std::erase_if(pairs_, [](const Pair& pair) { return pair.client < 0; });
    }
  }

  int server_port_;
  int port_ = 0;
  int listener_ = -1;
  std::vector<Pair> pairs_;                  // the thread's only (and the destructor's, after the join)
  std::atomic<bool> stop_{false};            // seq_cst: set by the destructor, read by the thread
  std::atomic<bool> lose_requested_{false};  // seq_cst: set by lose_replies(), taken by the thread
  std::thread thread_;
};

}  // namespace

TEST(RedisFaults, ConsumerKilledHoldingAnItemItIsHandedOutAgainAndJoinWaits) {
  mp::test::RedisServer server;
  // Only the consumer that dies needs a short lease. The surviving one gets 3 s: with 400 ms, a
  // renewal thread starved for 400 ms (ASan, load 10) lost its own lease and its task_done() was
  // refused. It reaps every lease/2, so the dead one's item comes back within about 2 s.
  mp::redis::Options survivor = fast();
  survivor.lease = 3s;
  mp::redis::JoinableQueue<int> q(server.url(), "crash", 0, survivor);
  for (int i = 0; i < 3; ++i) q.put(i);
  Pipe got;
  pid_t consumer = mp::test::fork_child([&] {
    mp::redis::JoinableQueue<int> mine(server.url(), "crash", 0, fast());
    int item = mine.get();
    got.write_value(item);
    ::pause();  // holds the item until killed
    return 0;
  });
  int taken = -1;
  ASSERT_TRUE(got.read_value(taken));
  EXPECT_EQ(taken, 0);
  mp::test::kill_child(consumer);

  std::vector<int> seen;
  for (int i = 0; i < 3; ++i) {
    seen.push_back(q.get(20s));  // 1, 2, then 0 once the dead consumer's lease ran out
    q.task_done();
  }
  EXPECT_EQ(seen, (std::vector<int>{1, 2, 0}));
  q.join();
  EXPECT_EQ(server.integer({"GET", "mpq:{crash}:unfinished"}), 0);
  EXPECT_TRUE(q.empty());
}

TEST(RedisFaults, LateTaskDoneOfAZombieConsumerIsRefusedAndTheCountStaysExact) {
  mp::test::RedisServer server;
  mp::redis::JoinableQueue<int> q(server.url(), "zombie", 0, fast());
  q.put(7);
  Pipe got;
  Pipe go;
  pid_t zombie = mp::test::fork_child([&] {
    mp::redis::JoinableQueue<int> mine(server.url(), "zombie", 0, fast());
    got.write_value(mine.get());
    char c = 0;
    if (!go.read_value(c)) return 3;
    try {
      mine.task_done();
      return 1;  // accepted: would have counted the item twice
    } catch (const mp::ValueError&) {
      return 0;
    }
  });
  int taken = -1;
  ASSERT_TRUE(got.read_value(taken));
  EXPECT_EQ(taken, 7);
  ::kill(zombie, SIGSTOP);   // stalls, heartbeat thread included: its lease runs out
  EXPECT_EQ(q.get(20s), 7);  // handed out again
  q.task_done();
  ::kill(zombie, SIGCONT);
  go.write_value('g');
  EXPECT_EQ(mp::test::wait_child(zombie), 0);
  q.join();
  EXPECT_EQ(server.integer({"GET", "mpq:{zombie}:unfinished"}), 0);
}

TEST(RedisFaults, FourProducersFourConsumersWithRandomKillsLoseNothing) {
  mp::test::RedisServer server;
  constexpr int kProducers = 4;
  constexpr int kConsumers = 4;
  constexpr int kPerProducer = 150;
  using Item = std::pair<std::int32_t, std::int32_t>;  // producer, sequence
  mp::redis::JoinableQueue<Item> q(server.url(), "storm", 50, fast());
  struct Record {
    std::int32_t consumer, producer, seq;
  };
  Pipe records;
  auto start_consumer = [&](int id) {
    return mp::test::fork_child([&, id] {
      records.close_read();
      mp::redis::JoinableQueue<Item> mine(server.url(), "storm", 0, fast());
      for (;;) {
        Item item;
        try {
          item = mine.get();
        } catch (const mp::ShutDown&) {
          return 0;
        }
        records.write_value(Record{id, item.first, item.second});
        ::usleep(500);
        mine.task_done();
      }
    });
  };
  std::vector<pid_t> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.push_back(mp::test::fork_child([&, p] {
      records.close_read();
      mp::redis::JoinableQueue<Item> mine(server.url(), "storm", 0, fast());
      for (int i = 0; i < kPerProducer; ++i) mine.put({p, i});
      return 0;
    }));
  }
  std::vector<pid_t> consumers;
  int next_id = 0;
  for (int c = 0; c < kConsumers; ++c) consumers.push_back(start_consumer(next_id++));
  // The parent keeps the write end open for replacement consumers; reads use timeouts.

  std::mt19937 random(12345);
  std::vector<Record> all;
  std::set<std::size_t> kill_at = {60, 180, 300};
  int kills = 0;
  std::atomic<bool> joined{false};
  // The reader collects what consumers did and kills one now and then (replacing it).
  std::thread reader([&] {
    Record r{};
    while (!joined) {
      if (!records.read_value(r, 100)) continue;
      all.push_back(r);
      if (kill_at.count(all.size()) != 0) {
        std::size_t victim = random() % consumers.size();
        mp::test::kill_child(consumers[victim]);
        consumers[victim] = start_consumer(next_id++);
        ++kills;
      }
    }
  });
  // join() only after every put: before that, "nothing unfinished" is true and ends it at once.
  for (pid_t p : producers) EXPECT_EQ(mp::test::wait_child(p), 0);
  q.join();
  joined = true;
  reader.join();
  EXPECT_EQ(kills, 3);
  mp::redis::JoinableQueue<Item> control(server.url(), "storm", 0, fast());
  control.shutdown();
  for (pid_t c : consumers) EXPECT_EQ(mp::test::wait_child(c), 0);
  Record r{};
  while (records.read_value(r, 200)) all.push_back(r);

  std::map<std::pair<int, int>, int> deliveries;
  for (const auto& rec : all) ++deliveries[{rec.producer, rec.seq}];
  EXPECT_EQ(deliveries.size(), static_cast<std::size_t>(kProducers * kPerProducer)) << "items lost";
  int duplicates = 0;
  for (const auto& [item, count] : deliveries) duplicates += count - 1;
  EXPECT_LE(duplicates, kills);  // each killed consumer held at most one item
  // Per consumer, each producer's items come in order, apart from re-deliveries.
  std::map<std::pair<int, int>, int> highest;
  int out_of_order = 0;
  for (const auto& rec : all) {
    auto key = std::make_pair(rec.consumer, rec.producer);
    auto it = highest.find(key);
    if (it != highest.end() && rec.seq < it->second) {
      ++out_of_order;
    } else {
      highest[key] = rec.seq;
    }
  }
  EXPECT_LE(out_of_order, kills);
  EXPECT_EQ(server.integer({"GET", "mpq:{storm}:unfinished"}), 0);
}

TEST(RedisFaults, ServerKilledDuringPutsEveryAcknowledgedPutSurvivesInOrder) {
  mp::test::RedisServer server;
  constexpr int kItems = 400;
  mp::redis::Queue<std::int32_t> q(server.url(), "durable");
  Pipe acked;
  pid_t producer = mp::test::fork_child([&] {
    mp::redis::Options options;
    options.server_timeout = 15s;  // rides out the restart
    mp::redis::Queue<std::int32_t> mine(server.url(), "durable", 0, options);
    for (std::int32_t i = 0; i < kItems; ++i) {
      mine.put(i);
      acked.write_value(i);
    }
    return 0;
  });
  std::int32_t last = -1;
  while (last < 100 && acked.read_value(last)) {
  }
  ASSERT_GE(last, 100);
  server.kill9();
  std::this_thread::sleep_for(200ms);
  server.start_again();  // replays its AOF
  EXPECT_EQ(mp::test::wait_child(producer), 0);
  // Every put exactly once, in order: retries of in-doubt puts are deduplicated.
  std::vector<std::int32_t> order;
  while (auto item = q.try_get()) order.push_back(*item);
  ASSERT_EQ(order.size(), static_cast<std::size_t>(kItems));
  for (std::int32_t i = 0; i < kItems; ++i) ASSERT_EQ(order[i], i);
}

TEST(RedisFaults, ServerGoneWhileCallsWaitGivesConnectionErrorNotAHang) {
  mp::test::RedisServer server;
  mp::redis::Options options = fast();
  options.server_timeout = 1s;
  mp::redis::JoinableQueue<int> q(server.url(), "gone", 1, options);
  q.put(1);  // full now; and unfinished = 1, so join waits
  mp::redis::Queue<int> empty(server.url(), "gone-empty", 0, options);
  std::atomic<int> connection_errors{0};
  auto expect_connection_error = [&](auto&& call) {
    return std::thread([&, call] {
      try {
        call();
      } catch (const mp::ConnectionError& e) {
        if (std::string(e.what()).find(std::to_string(server.port())) != std::string::npos)
          ++connection_errors;
      } catch (...) {
      }
    });
  };
  std::vector<std::thread> waiters;
  waiters.push_back(expect_connection_error([&] { (void)empty.get(); }));  // no timeout: gives up after 1 s
  waiters.push_back(expect_connection_error([&] { (void)empty.get(30s); }));  // timeout beyond the budget
  waiters.push_back(expect_connection_error([&] { q.put(2); }));              // blocked on full
  waiters.push_back(expect_connection_error([&] { q.join(); }));              // waiting for task_done
  std::this_thread::sleep_for(300ms);
  server.kill9();
  for (auto& t : waiters) t.join();
  EXPECT_EQ(connection_errors, 4);
  // A call made while the server is gone fails too, and the next call after
  // it is back reconnects.
  EXPECT_THROW((void)empty.qsize(), mp::ConnectionError);
  server.start_again();
  EXPECT_EQ(q.qsize(), 1u);
  EXPECT_EQ(q.get(), 1);
  q.task_done();
  q.join();
}

TEST(RedisFaults, QueueKeepsWorkingAcrossAServerRestart) {
  mp::test::RedisServer server;
  mp::redis::JoinableQueue<std::string> q(server.url(), "restart", 0, fast());
  q.put("before");
  server.restart();  // functions and data come back from the AOF
  EXPECT_EQ(q.get(), "before");
  q.task_done();
  q.put("after");
  EXPECT_EQ(q.get(), "after");
  q.task_done();
  q.join();
}

TEST(RedisFaults, ForkedChildNeverSharesTheParentsSocket) {
  mp::test::RedisServer server;
  mp::redis::Queue<std::int32_t> q(server.url(), "forked");
  q.put(-1);
  EXPECT_EQ(q.get(), -1);  // the parent's connection is open now
  constexpr int kItems = 300;
  pid_t child = mp::test::fork_child([&] {
    for (std::int32_t i = 0; i < kItems; ++i) q.put(i);
    return 0;
  });
  // Interleaved traffic on the same handle: a shared socket would mix the replies.
  std::int32_t expected = 0;
  while (expected < kItems) {
    ASSERT_EQ(q.get(20s), expected);
    ++expected;
    EXPECT_LE(q.qsize(), static_cast<std::size_t>(kItems));
  }
  EXPECT_EQ(mp::test::wait_child(child), 0);
}

// A write to a connection the server has closed must not raise SIGPIPE (which would kill the
// process): task_done() sends its acknowledgement without reading the reply, so the next
// call's write is the second one into the dead socket.
TEST(RedisFaults, TaskDoneAfterAServerRestartDoesNotDieOfSigpipe) {
  mp::test::RedisServer server;
  mp::redis::Options options;  // the default 10 s lease: still fresh after the restart
  options.server_timeout = 5s;
  mp::redis::JoinableQueue<std::string> q(server.url(), "sigpipe", 0, options);
  q.put("a");
  q.put("b");
  EXPECT_EQ(q.get(), "a");
  server.restart();  // the pooled link now talks to a socket the old server closed
  q.task_done();
  EXPECT_EQ(q.get(), "b");
  q.task_done();
  q.join();
  EXPECT_EQ(server.integer({"GET", "mpq:{sigpipe}:unfinished"}), 0);
}

// task_done() on a fresh lease is deferred: sent, applied by the server at once, its reply read
// with the next command. Here the server applies two task_done()s but their replies are lost
// with the connection, so the queue sends what it still owed again: each must be applied once.
// Fails if the server's sequence lookup is skipped for a deferred acknowledgement, and (unless
// the test thread stalls > 200 ms between the two calls) if a link carries two deferred
// acknowledgements at once (the server only recognises an acker's last applied sequence number).
TEST(RedisFaults, DeferredTaskDonesWhoseRepliesAreLostAreAppliedOnce) {
  mp::test::RedisServer server;
  ReplyLosingProxy proxy(server.port());
  mp::redis::Options options;  // the default 10 s lease: both task_done()s are surely deferred
  mp::redis::JoinableQueue<int> q(proxy.url(), "resent-acks", 0, options);
  for (int i = 0; i < 3; ++i) q.put(i);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(q.get(5s), i);
  auto unfinished = [&] { return server.integer({"GET", "mpq:{resent-acks}:unfinished"}); };
  proxy.lose_replies();
  q.task_done();
  q.task_done();
  EXPECT_EQ(q.qsize(), 0U);    // on a new connection: what was owed is sent again first
  EXPECT_EQ(unfinished(), 1);  // the third is still held
  q.task_done();
  q.join();
  EXPECT_EQ(unfinished(), 0);
}

// put_many sends a batch as one call: when its reply is lost with the connection, the batch is
// sent again and the server's record of the batch keeps it from being stored twice. Likewise a
// deferred task_done_many.
TEST(RedisFaults, PutManyWhoseReplyIsLostIsStoredOnce) {
  mp::test::RedisServer server;
  ReplyLosingProxy proxy(server.port());
  mp::redis::detail::QueueCore core(proxy.url(), "resent-batch", 0, true, mp::codec_signature<int>(),
                                    mp::redis::Options{});
  std::vector<std::vector<std::byte>> items;
  for (int i = 0; i < 150; ++i) items.push_back(mp::encode(i));
  EXPECT_EQ(core.qsize(), 0U);  // connected: lose_replies() applies to this connection
  proxy.lose_replies();
  EXPECT_EQ(core.put_many(items, mp::detail::Deadline::after(20s)), 150U);
  EXPECT_EQ(server.integer({"LLEN", "mpq:{resent-batch}:items"}), 150);
  EXPECT_EQ(server.integer({"GET", "mpq:{resent-batch}:unfinished"}), 150);
  auto got = core.get_many(200, mp::detail::Deadline::after(1s));
  ASSERT_EQ(got.size(), 150U);
  for (int i = 0; i < 150; ++i) EXPECT_EQ(mp::decode<int>(got[i]), i);
  // The same for a deferred batch of acknowledgements (one call on the server): applied once.
  proxy.lose_replies();
  core.task_done_many(150);
  EXPECT_EQ(core.qsize(), 0U);  // on a new connection: the batch is sent again first
  EXPECT_EQ(server.integer({"GET", "mpq:{resent-batch}:unfinished"}), 0);
  EXPECT_EQ(server.integer({"HGET", "mpq:{resent-batch}:stats", "done"}), 150);
  core.join();
}
