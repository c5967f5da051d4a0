// mp::redis::Pool: AsyncResult::cancel(), cancelled(), add_done_callback() against real worker
// hosts (serve) in other processes. Tasks leave marker files in the test server's directory,
// so the test sees what ran where. Hosts are forked before the Pool exists (it runs a thread).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "mp/redis/pool.hpp"
#include "redis/redis_server.hpp"
#include "redis/serve_host.hpp"
#include "support/child.hpp"

namespace canceltasks {

std::string g_dir;  // the test's server directory: set before the hosts are forked

bool exists(const std::string& name) { return ::access((g_dir + "/" + name).c_str(), F_OK) == 0; }

// append_line(name, text): one line per call (O_APPEND: whole lines from any process).
void append_line(const std::string& name, const std::string& text) {
  int fd = ::open((g_dir + "/" + name).c_str(), O_CREAT | O_WRONLY | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return;
  std::string line = text + "\n";
  (void)!::write(fd, line.data(), line.size());
  ::close(fd);
}

// long_running(x): a line with its pid in started-<x> per run, then 60 s asleep.
int long_running(int x) {
  append_line("started-" + std::to_string(x), std::to_string(::getpid()));
  ::sleep(60);
  return x;
}

// blocker(x): leaves blocking-<x>, then returns x once g_dir/go exists (-1 after 20 s).
int blocker(int x) {
  append_line("blocking-" + std::to_string(x), std::to_string(::getpid()));
  for (int i = 0; i < 4000; ++i) {
    if (exists("go")) return x;
    ::usleep(5000);
  }
  return -1;
}

// effect(x): x, leaving a line in effect-<x> per run, and x in the file `order`.
int effect(int x) {
  append_line("effect-" + std::to_string(x), "ran");
  append_line("order", std::to_string(x));
  return x;
}

// meet(x): leaves meet-<x>, returns x once meet-0 and meet-1 both exist (-1 after 20 s): the
// two calls complete only if two worker processes run them at once.
int meet(int x) {
  append_line("meet-" + std::to_string(x), "here");
  for (int i = 0; i < 4000; ++i) {
    if (exists("meet-0") && exists("meet-1")) return x;
    ::usleep(5000);
  }
  return -1;
}

int square(int x) { return x * x; }

}  // namespace canceltasks

MP_TASK(canceltasks::long_running);
MP_TASK(canceltasks::blocker);
MP_TASK(canceltasks::effect);
MP_TASK(canceltasks::meet);
MP_TASK(canceltasks::square);

namespace {

using namespace std::chrono_literals;

std::vector<std::string> lines_of(const std::string& name) {
  std::ifstream in(canceltasks::g_dir + "/" + name);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// gone(pid): the process no longer runs (reaped, or a zombie).
bool gone(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  auto after_name = text.rfind(')');
  return after_name == std::string::npos || text.compare(after_name, 4, ") Z ") == 0;
}

long long stat_of(const mp::test::RedisServer& server, const std::string& queue, const std::string& field) {
  auto reply = server.command({"HGET", "mpq:{" + queue + "}:stats", field});
  if (!reply || reply->type != REDIS_REPLY_STRING) return 0;
  return std::stoll(std::string(reply->str, reply->len));
}

long long unfinished(const mp::test::RedisServer& server, const std::string& queue) {
  auto reply = server.command({"GET", "mpq:{" + queue + "}:unfinished"});
  if (!reply || reply->type != REDIS_REPLY_STRING) return 0;
  return std::stoll(std::string(reply->str, reply->len));
}

// marks_stopping(server, queue): how many cancel marks a host has taken up ("stopping").
long long marks_stopping(const mp::test::RedisServer& server, const std::string& queue) {
  auto reply = server.command({"HVALS", "mpq:{" + queue + "}:cancelled"});
  long long n = 0;
  if (!reply || reply->type != REDIS_REPLY_ARRAY) return n;
  for (std::size_t i = 0; i < reply->elements; ++i)
    n += std::string(reply->element[i]->str, reply->element[i]->len) == "stopping" ? 1 : 0;
  return n;
}

// mp_redis(args): the built mp-redis's output (stdout and stderr) for args (shell words).
std::string mp_redis(const std::string& args) {
  std::string command = std::string(MP_BINARY_DIR) + "/tools/mp-redis " + args + " 2>&1";
  std::string output;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return output;
  char buf[4096];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) output.append(buf, n);
  (void)::pclose(pipe);
  return output;
}

using mp::test::start_host;
using mp::test::stop_host;

}  // namespace

TEST(RedisPoolCancel, ARunningTaskIsKilledNotRetriedAndItsHostKeepsItsProcesses) {
  mp::test::RedisServer server;
  canceltasks::g_dir = server.dir();
  pid_t host = start_host(server.url(), "cancel-running", 2);
  {
    mp::redis::Pool pool(server.url(), "cancel-running");
    auto longer = pool.apply_async(&canceltasks::long_running, 1);
    ASSERT_TRUE(mp::test::eventually([] { return !lines_of("started-1").empty(); }));
    const pid_t worker = std::stoi(lines_of("started-1").front());
    EXPECT_TRUE(longer.cancel());
    EXPECT_TRUE(longer.cancelled());
    EXPECT_TRUE(longer.ready());
    EXPECT_THROW((void)longer.get(), mp::Cancelled);
    EXPECT_TRUE(mp::test::eventually([&] { return gone(worker); }));  // its worker was killed
    // The host replaced it: two tasks that need two processes at once both complete.
    auto first = pool.apply_async(&canceltasks::meet, 0);
    auto second = pool.apply_async(&canceltasks::meet, 1);
    EXPECT_EQ(first.get(30s), 0);
    EXPECT_EQ(second.get(30s), 1);
    EXPECT_EQ(pool.map_async(&canceltasks::square, std::vector{1, 2, 3}).get(30s), (std::vector{1, 4, 9}));
    // Acknowledged, not handed out again: it ran once, no delivery failed.
    EXPECT_TRUE(mp::test::eventually([&] { return unfinished(server, "cancel-running") == 0; }));
    EXPECT_EQ(lines_of("started-1").size(), 1u);
    EXPECT_EQ(stat_of(server, "cancel-running", "failed"), 0);
    EXPECT_EQ(stat_of(server, "cancel-running", "cancelled"), 1);
  }
  stop_host(host);
}

TEST(RedisPoolCancel, ATaskCancelledBeforeItStartsNeverRuns) {
  mp::test::RedisServer server;
  canceltasks::g_dir = server.dir();
  pid_t host = start_host(server.url(), "cancel-waiting", 1);  // one process: a window of 4 tasks
  {
    mp::redis::Pool pool(server.url(), "cancel-waiting");
    auto blocked = pool.apply_async(&canceltasks::blocker, 0);
    ASSERT_TRUE(mp::test::eventually([] { return canceltasks::exists("blocking-0"); }));
    auto held = pool.apply_async(&canceltasks::effect, 1);  // taken by the host, queued behind the blocker
    auto after1 = pool.apply_async(&canceltasks::effect, 2);
    auto after2 = pool.apply_async(&canceltasks::effect, 3);
    auto waiting = pool.apply_async(&canceltasks::effect, 4);  // the host's window is full: on the server
    ASSERT_TRUE(mp::test::eventually([&] {
      return server.integer({"LLEN", "mpq:{cancel-waiting}:items"}) == 1;
    }));
    EXPECT_TRUE(waiting.cancel());
    EXPECT_EQ(server.integer({"LLEN", "mpq:{cancel-waiting}:items"}), 0);  // removed from the server
    EXPECT_TRUE(held.cancel());
    // The host took the cancel up (before the blocker lets anything else start).
    ASSERT_TRUE(mp::test::eventually([&] { return marks_stopping(server, "cancel-waiting") == 1; }));
    canceltasks::append_line("go", "");
    EXPECT_EQ(blocked.get(30s), 0);
    EXPECT_EQ(after1.get(30s), 2);
    EXPECT_EQ(after2.get(30s), 3);
    EXPECT_THROW((void)held.get(), mp::Cancelled);
    EXPECT_THROW((void)waiting.get(), mp::Cancelled);
    EXPECT_EQ(pool.apply_async(&canceltasks::effect, 5).get(30s), 5);  // after where the cancelled ones were
    EXPECT_FALSE(canceltasks::exists("effect-1"));
    EXPECT_FALSE(canceltasks::exists("effect-4"));
    EXPECT_EQ(lines_of("effect-2").size(), 1u);
    EXPECT_EQ(stat_of(server, "cancel-waiting", "cancelled"), 2);
    EXPECT_TRUE(mp::test::eventually([&] { return unfinished(server, "cancel-waiting") == 0; }));
    // The host dropped its mark once it acknowledged the task.
    EXPECT_TRUE(mp::test::eventually([&] {
      return server.integer({"HLEN", "mpq:{cancel-waiting}:cancelled"}) == 0;
    }));
  }
  stop_host(host);
  std::string stats = mp_redis("--json stats " + server.url());  // after the Pool's threads are gone
  EXPECT_NE(stats.find("\"name\":\"cancel-waiting\""), std::string::npos) << stats;
  EXPECT_NE(stats.find("\"cancelled\":2"), std::string::npos) << stats;
}

// Cancelling many waiting tasks at once rebuilds the server's list: what is left keeps its order.
TEST(RedisPoolCancel, ACancelledMapNeverRunsAndTheTasksBehindItKeepTheirOrder) {
  mp::test::RedisServer server;
  canceltasks::g_dir = server.dir();
  pid_t host = start_host(server.url(), "cancel-map", 1);
  {
    mp::redis::Pool pool(server.url(), "cancel-map");
    auto blocked = pool.apply_async(&canceltasks::blocker, 0);
    ASSERT_TRUE(mp::test::eventually([] { return canceltasks::exists("blocking-0"); }));
    std::vector<int> first, second;
    for (int i = 100; i < 140; ++i) first.push_back(i);
    for (int i = 200; i < 210; ++i) second.push_back(i);
    auto cancelled = pool.map_async(&canceltasks::effect, first);  // 3 held by the host, 37 on the server
    auto kept = pool.map_async(&canceltasks::effect, second);
    ASSERT_TRUE(mp::test::eventually([&] {
      return server.integer({"LLEN", "mpq:{cancel-map}:items"}) == 47;
    }));
    EXPECT_TRUE(cancelled.cancel());
    EXPECT_EQ(server.integer({"LLEN", "mpq:{cancel-map}:items"}), 10);
    ASSERT_TRUE(mp::test::eventually([&] { return marks_stopping(server, "cancel-map") == 3; }));
    canceltasks::append_line("go", "");
    EXPECT_EQ(blocked.get(30s), 0);
    EXPECT_EQ(kept.get(30s), second);
    EXPECT_THROW((void)cancelled.get(), mp::Cancelled);
    std::vector<std::string> expected;
    for (int x : second) expected.push_back(std::to_string(x));
    EXPECT_EQ(lines_of("order"), expected);  // none of the cancelled ran; the rest in order
    EXPECT_EQ(stat_of(server, "cancel-map", "cancelled"), 40);
    EXPECT_TRUE(mp::test::eventually([&] { return unfinished(server, "cancel-map") == 0; }));
  }
  stop_host(host);
}

TEST(RedisPoolCancel, ADoneCallbackRunsOnceAndCancelAfterDoneIsFalse) {
  mp::test::RedisServer server;
  canceltasks::g_dir = server.dir();
  pid_t host = start_host(server.url(), "callbacks", 2);
  {
    mp::redis::Pool pool(server.url(), "callbacks");
    std::atomic<int> calls{0};
    std::atomic<bool> saw_ready{false};
    auto squared = pool.apply_async(&canceltasks::square, 7);
    squared.add_done_callback([&](const mp::redis::AsyncResult<int>& done) {
      saw_ready = done.ready();
      ++calls;
    });
    EXPECT_EQ(squared.get(30s), 49);
    EXPECT_TRUE(mp::test::eventually([&] { return calls.load() == 1; }));
    EXPECT_TRUE(saw_ready.load());
    int at_once = 0;  // ready already: runs now, in this thread
    squared.add_done_callback([&](const mp::redis::AsyncResult<int>&) { ++at_once; });
    EXPECT_EQ(at_once, 1);
    EXPECT_FALSE(squared.cancel());
    EXPECT_FALSE(squared.cancelled());
    EXPECT_EQ(squared.get(), 49);

    // map_async: once, when every task is in.
    std::atomic<int> map_calls{0};
    std::atomic<std::size_t> values{0};
    auto squares = pool.map_async(&canceltasks::square, std::vector{1, 2, 3, 4, 5, 6});
    squares.add_done_callback([&](const auto& done) {
      values = done.get().size();
      ++map_calls;
    });
    EXPECT_EQ(squares.get(30s).size(), 6u);
    EXPECT_TRUE(mp::test::eventually([&] { return map_calls.load() == 1; }));
    EXPECT_EQ(values.load(), 6u);

    // A cancelled result: its callback runs once, from cancel().
    std::atomic<int> cancel_calls{0};
    std::atomic<bool> saw_cancelled{false};
    auto blocked = pool.apply_async(&canceltasks::blocker, 9);
    blocked.add_done_callback([&](const mp::redis::AsyncResult<int>& done) {
      saw_cancelled = done.cancelled();
      ++cancel_calls;
    });
    EXPECT_TRUE(blocked.cancel());
    EXPECT_EQ(cancel_calls.load(), 1);
    EXPECT_TRUE(saw_cancelled.load());
    EXPECT_TRUE(blocked.cancel());  // still will not deliver
    EXPECT_EQ(cancel_calls.load(), 1);
    EXPECT_EQ(map_calls.load(), 1);
    EXPECT_EQ(calls.load(), 1);
  }
  stop_host(host);
}
