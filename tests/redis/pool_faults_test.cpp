// mp::redis::Pool when worker hosts die or stop: real serve() processes, SIGKILLed or
// SIGTERMed while they hold tasks. Every host is forked before the Pool exists (the Pool
// runs a receiver thread; see PROTOCOL: fork first).
//
// A task finds out which host runs it from /proc: worker -> its zygote -> the serve process.
// Tasks that must block on one host and not on the next use a marker file made with link(2)
// (atomic: exactly one runner makes it, and it holds the host's pid when it appears).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "mp/redis/pool.hpp"
#include "redis/redis_server.hpp"
#include "support/child.hpp"

namespace faulttasks {

std::string g_dir;  // the test's server directory: set before the hosts are forked

// host_pid(): the serve() process running this task (the worker's parent is the local pool's zygote).
pid_t host_pid() {
  std::ifstream stat("/proc/" + std::to_string(::getppid()) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  auto after_name = text.rfind(')');
  if (after_name == std::string::npos) return -1;
  char state = 0;
  int parent = -1;
  if (std::sscanf(text.c_str() + after_name + 1, " %c %d", &state, &parent) != 2) return -1;
  return parent;
}

// first_here(marker): true for exactly one runner, which leaves its host's pid in g_dir/marker.
bool first_here(const std::string& marker) {
  const std::string draft = g_dir + "/" + marker + "." + std::to_string(::getpid());
  {
    std::ofstream out(draft);
    out << host_pid();
  }
  bool first = ::link(draft.c_str(), (g_dir + "/" + marker).c_str()) == 0;
  ::unlink(draft.c_str());
  return first;
}

void hang() {
  for (;;) ::pause();  // until its host is killed or stopped
}

// stuck_everywhere(x): records each host that runs it (g_dir/run-<host pid>), then hangs.
int stuck_everywhere(int x) {
  std::ofstream(g_dir + "/run-" + std::to_string(host_pid())) << x;
  hang();
  return x;
}

// tick(x): x * x after 10 ms; item 20 hangs on the first host that runs it.
int tick(int x) {
  if (x == 20 && first_here("stuck")) hang();
  ::usleep(10000);
  return x * x;
}

// held_once(x): x; hangs on the first host that runs it.
int held_once(int x) {
  if (first_here("held")) hang();
  return x;
}

// host_then_worker_dies(x): 1st run hangs (its host gets killed), 2nd run kills its own worker,
// a 3rd run leaves g_dir/third and returns x.
int host_then_worker_dies(int x) {
  if (first_here("first")) hang();
  if (first_here("second")) ::raise(SIGKILL);
  (void)first_here("third");
  return x;
}

// refuse_counted(x): counts its runs (one byte each in g_dir/refusals), then throws.
int refuse_counted(int x) {
  int fd = ::open((g_dir + "/refusals").c_str(), O_CREAT | O_WRONLY | O_APPEND | O_CLOEXEC, 0600);
  if (fd >= 0) {
    (void)!::write(fd, "x", 1);
    ::close(fd);
  }
  throw std::domain_error("refused " + std::to_string(x));
}

int twice(int x) { return 2 * x; }

// until_go(x): leaves g_dir/waiting, then returns x once g_dir/go exists (-1 after 20 s).
int until_go(int x) {
  (void)first_here("waiting");
  for (int i = 0; i < 4000; ++i) {
    if (::access((g_dir + "/go").c_str(), F_OK) == 0) return x;
    ::usleep(5000);
  }
  return -1;
}

// stuck_on_first_host(x): 3 * x after 5 ms; hangs on the host of the first runner.
int stuck_on_first_host(int x) {
  (void)first_here("batch");
  pid_t doomed = 0;
  std::ifstream(g_dir + "/batch") >> doomed;
  if (doomed == host_pid()) hang();
  ::usleep(5000);
  return 3 * x;
}

}  // namespace faulttasks

MP_TASK(faulttasks::stuck_everywhere);
MP_TASK(faulttasks::tick);
MP_TASK(faulttasks::held_once);
MP_TASK(faulttasks::host_then_worker_dies);
MP_TASK(faulttasks::refuse_counted);
MP_TASK(faulttasks::twice);
MP_TASK(faulttasks::until_go);
MP_TASK(faulttasks::stuck_on_first_host);

namespace {

using namespace std::chrono_literals;

std::vector<pid_t> start_hosts(const std::string& url, const std::string& name, int count,
                               std::chrono::milliseconds lease) {
  mp::redis::ServeOptions options;
  options.processes = 1;
  options.lease = lease;
  std::vector<pid_t> hosts;
  for (int i = 0; i < count; ++i) {
    hosts.push_back(mp::test::fork_child([=] { return mp::redis::serve(url, name, options); }));
  }
  return hosts;
}

// marker_pid(name): the host pid a first_here(name) left, once it is there (0 if never).
pid_t marker_pid(const std::string& name) {
  pid_t pid = 0;
  bool seen = mp::test::eventually([&] {
    std::ifstream in(faulttasks::g_dir + "/" + name);
    return static_cast<bool>(in >> pid);
  });
  return seen ? pid : 0;
}

bool is_one_of(pid_t pid, const std::vector<pid_t>& hosts) {
  return std::find(hosts.begin(), hosts.end(), pid) != hosts.end();
}

long long stat_of(const mp::test::RedisServer& server, const std::string& queue, const std::string& field) {
  auto reply = server.command({"HGET", "mpq:{" + queue + "}:stats", field});
  if (!reply || reply->type != REDIS_REPLY_STRING) return 0;
  return std::stoll(std::string(reply->str, reply->len));
}

}  // namespace

// The "must show": a worker host SIGKILLed mid-map; the map completes with every result.
TEST(RedisPoolFaults, AWorkerHostSigkilledMidMapStillCompletes) {
  mp::test::RedisServer server;
  faulttasks::g_dir = server.dir();
  auto hosts = start_hosts(server.url(), "killed-mid-map", 2, 500ms);
  {
    mp::redis::Pool pool(server.url(), "killed-mid-map");
    std::vector<int> items;
    for (int i = 0; i < 60; ++i) items.push_back(i);
    auto squares = pool.map_async(&faulttasks::tick, items);
    pid_t doomed = marker_pid("stuck");  // the host running item 20 (and holding it)
    ASSERT_TRUE(is_one_of(doomed, hosts)) << doomed;
    EXPECT_EQ(mp::test::kill_child(doomed), -SIGKILL);
    std::vector<int> got = squares.get(60s);
    ASSERT_EQ(got.size(), items.size());
    for (int i = 0; i < 60; ++i) EXPECT_EQ(got[i], i * i) << i;
    EXPECT_GE(stat_of(server, "killed-mid-map", "failed"), 1);  // its tasks were handed out again
    EXPECT_EQ(stat_of(server, "killed-mid-map", "dead"), 0);
  }
  for (pid_t host : hosts) {
    if (host == marker_pid("stuck")) continue;
    ::kill(host, SIGTERM);
    EXPECT_EQ(mp::test::wait_child(host), 0);
  }
}

// A host takes as many tasks as its window has room for in one round trip (get_many): each is
// still leased on its own, so when the host dies every task it held goes back and runs once more.
TEST(RedisPoolFaults, ABatchFetchingHostSigkilledMidBatchHasEveryTaskOfItRedelivered) {
  mp::test::RedisServer server;
  faulttasks::g_dir = server.dir();
  auto hosts = start_hosts(server.url(), "batch-killed", 2, 500ms);  // 1 process each: window 4
  constexpr int kTasks = 200;
  {
    mp::redis::Pool pool(server.url(), "batch-killed");
    std::vector<int> items;
    for (int i = 0; i < kTasks; ++i) items.push_back(i);
    auto tripled = pool.map_async(&faulttasks::stuck_on_first_host, items);
    pid_t doomed = marker_pid("batch");
    ASSERT_TRUE(is_one_of(doomed, hosts)) << doomed;
    // Its one worker hangs, so the doomed host fills its window (4 tasks) and keeps them.
    auto held_by_doomed = [&] {
      long long held = 0;
      auto keys = server.command({"KEYS", "mpq:{batch-killed}:inflight:*:" + std::to_string(doomed) + ":*"});
      if (!keys || keys->type != REDIS_REPLY_ARRAY) return held;
      for (std::size_t i = 0; i < keys->elements; ++i)
        held += server.integer({"LLEN", std::string(keys->element[i]->str, keys->element[i]->len)});
      return held;
    };
    ASSERT_TRUE(mp::test::eventually([&] { return held_by_doomed() == 4; })) << held_by_doomed();
    EXPECT_EQ(mp::test::kill_child(doomed), -SIGKILL);
    std::vector<int> got = tripled.get(60s);
    ASSERT_EQ(got.size(), items.size());
    for (int i = 0; i < kTasks; ++i) EXPECT_EQ(got[i], 3 * i) << i;
    EXPECT_EQ(stat_of(server, "batch-killed", "failed"), 4);  // the 4 it held, each handed out again
    EXPECT_EQ(stat_of(server, "batch-killed", "dead"), 0);
    // Each task acknowledged exactly once (the survivor acknowledges just after each result).
    EXPECT_TRUE(mp::test::eventually([&] { return stat_of(server, "batch-killed", "done") == kTasks; }))
        << stat_of(server, "batch-killed", "done");
  }
  for (pid_t host : hosts) {
    if (host == marker_pid("batch")) continue;
    ::kill(host, SIGTERM);
    EXPECT_EQ(mp::test::wait_child(host), 0);
  }
}

TEST(RedisPoolFaults, ATaskWhoseHostDiesOnEveryAttemptFailsWithWorkerLostAndIsADeadLetter) {
  mp::test::RedisServer server;
  faulttasks::g_dir = server.dir();
  auto hosts = start_hosts(server.url(), "host-deaths", 3, 500ms);
  mp::redis::PoolOptions options;
  options.max_attempts = 3;
  options.lease = 500ms;  // how often the pool looks at the dead letters
  mp::redis::Pool pool(server.url(), "host-deaths", options);
  auto result = pool.apply_async(&faulttasks::stuck_everywhere, 7);
  std::set<pid_t> killed;
  for (int attempt = 0; attempt < 3; ++attempt) {
    pid_t holder = 0;
    ASSERT_TRUE(mp::test::eventually([&] {
      for (const auto& entry : std::filesystem::directory_iterator(server.dir())) {
        std::string file = entry.path().filename();
        if (file.rfind("run-", 0) != 0) continue;
        pid_t pid = std::stoi(file.substr(4));
        if (killed.count(pid) == 0) holder = pid;
      }
      return holder != 0;
    })) << "attempt "
        << attempt + 1 << " never started";
    ASSERT_TRUE(is_one_of(holder, hosts)) << holder;
    EXPECT_EQ(mp::test::kill_child(holder), -SIGKILL);
    killed.insert(holder);
  }
  // No host is left: the submitter itself finds the third lease run out.
  try {
    (void)result.get(30s);
    ADD_FAILURE() << "no error";
  } catch (const mp::WorkerLost& e) {
    EXPECT_NE(std::string(e.what()).find("3 attempts"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("dead letter"), std::string::npos) << e.what();
  }
  EXPECT_EQ(server.integer({"LLEN", "mpq:{host-deaths}:dead"}), 1);
  EXPECT_EQ(server.integer({"LLEN", "mpq:{host-deaths}:items"}), 0);  // not handed out a 4th time
  EXPECT_EQ(stat_of(server, "host-deaths", "failed"), 3);
}

TEST(RedisPoolFaults, HostDeathsAndWorkerDeathsShareOneAttemptCount) {
  mp::test::RedisServer server;
  faulttasks::g_dir = server.dir();
  auto hosts = start_hosts(server.url(), "mixed-deaths", 2, 500ms);
  pid_t survivor = 0;
  {
    mp::redis::PoolOptions options;
    options.max_attempts = 2;
    options.lease = 500ms;
    mp::redis::Pool pool(server.url(), "mixed-deaths", options);
    auto result = pool.apply_async(&faulttasks::host_then_worker_dies, 1);
    pid_t doomed = marker_pid("first");
    ASSERT_TRUE(is_one_of(doomed, hosts)) << doomed;
    EXPECT_EQ(mp::test::kill_child(doomed), -SIGKILL);
    survivor = hosts[0] == doomed ? hosts[1] : hosts[0];
    // Attempt 2 (on the survivor) loses its worker: with the host's death, 2 of 2 attempts.
    EXPECT_THROW((void)result.get(30s), mp::WorkerLost);
    EXPECT_FALSE(std::filesystem::exists(server.dir() + "/third"));
    EXPECT_EQ(server.integer({"LLEN", "mpq:{mixed-deaths}:dead"}), 1);
    EXPECT_EQ(pool.apply_async(&faulttasks::twice, 21).get(30s), 42);  // the survivor keeps serving
  }
  ::kill(survivor, SIGTERM);
  EXPECT_EQ(mp::test::wait_child(survivor), 0);
}

TEST(RedisPoolFaults, SigtermHandsUnfinishedTasksBackAtOnce) {
  mp::test::RedisServer server;
  faulttasks::g_dir = server.dir();
  // A lease far longer than the wait below: the task can only come back by being handed back.
  auto hosts = start_hosts(server.url(), "stopping", 2, 120s);
  pid_t other = 0;
  {
    mp::redis::Pool pool(server.url(), "stopping");
    auto result = pool.apply_async(&faulttasks::held_once, 5);
    pid_t stopping = marker_pid("held");
    ASSERT_TRUE(is_one_of(stopping, hosts)) << stopping;
    ::kill(stopping, SIGTERM);
    EXPECT_EQ(mp::test::wait_child(stopping), 0);  // serve() returned 0
    other = hosts[0] == stopping ? hosts[1] : hosts[0];
    if (!result.wait(30s)) {  // say where the task is
      auto inflight = server.command({"KEYS", "mpq:{stopping}:inflight:*"});
      std::string where;
      for (std::size_t i = 0; inflight && i < inflight->elements; ++i) {
        where += std::string(inflight->element[i]->str) + " (" +
                 std::to_string(server.integer({"LLEN", inflight->element[i]->str})) + ") ";
      }
      ADD_FAILURE() << "not handed back: items " << server.integer({"LLEN", "mpq:{stopping}:items"})
                    << ", in flight: " << where << ", consumers "
                    << server.integer({"SCARD", "mpq:{stopping}:consumers"}) << ", the other host "
                    << (::kill(other, 0) == 0 ? "runs" : "is gone");
    }
    EXPECT_EQ(result.get(30s), 5);                        // run again by the other host
    EXPECT_EQ(stat_of(server, "stopping", "failed"), 0);  // a clean stop is not a failed attempt
  }
  ::kill(other, SIGTERM);
  EXPECT_EQ(mp::test::wait_child(other), 0);
}

TEST(RedisPoolFaults, ATaskThatThrowsFailsWithRemoteErrorAndIsNotRetried) {
  mp::test::RedisServer server;
  faulttasks::g_dir = server.dir();
  auto hosts = start_hosts(server.url(), "throwing", 1, 500ms);
  {
    mp::redis::Pool pool(server.url(), "throwing");
    try {
      (void)pool.apply(&faulttasks::refuse_counted, 3);
      ADD_FAILURE() << "no error";
    } catch (const mp::RemoteError& e) {
      EXPECT_NE(std::string(e.what()).find("refused 3"), std::string::npos) << e.what();
      EXPECT_NE(e.type_name().find("domain_error"), std::string::npos) << e.type_name();
    }
    EXPECT_EQ(pool.apply(&faulttasks::twice, 4), 8);  // the host took the next task: it is done with that one
    EXPECT_EQ(std::filesystem::file_size(server.dir() + "/refusals"), 1u);  // ran once
    EXPECT_EQ(stat_of(server, "throwing", "failed"), 0);
    EXPECT_EQ(server.integer({"LLEN", "mpq:{throwing}:dead"}), 0);
  }
  ::kill(hosts[0], SIGTERM);
  EXPECT_EQ(mp::test::wait_child(hosts[0]), 0);
}

// The ACL the README recommends for a user that only runs mp (its list, as in
// tests/redis/credentials_test.cpp, plus +lrange, which a submitter needs to read dead letters).
TEST(RedisPoolFaults, APoolAndItsHostsRunUnderTheReadmeAclUser) {
  mp::test::RedisServer server;
  faulttasks::g_dir = server.dir();
  const char* const rules =
      "-@all +select +fcall +function|load +ping +lmove +blmove +hget +llen +lindex +sadd +set +get +blpop "
      "+lpush +ltrim +subscribe +hset +hmget +hincrby +hdel +exists +incr +decr +publish +rpop +rpush +lpop "
      "+smembers +srem +del +pexpire +pttl +lrange +hkeys +lrem +decrby ~mpq:* ~mpl:* &mpq:*";
  std::vector<std::string> setuser = {"ACL", "SETUSER", "worker", "reset", "on", ">pool-pw"};
  std::string all = rules;
  for (std::size_t start = 0; start < all.size();) {
    auto end = std::min(all.find(' ', start), all.size());
    setuser.push_back(all.substr(start, end - start));
    start = end + 1;
  }
  auto set = server.command_argv(setuser);
  ASSERT_TRUE(set && set->type == REDIS_REPLY_STATUS) << (set ? set->str : "no reply");
  const std::string url = "redis://worker:pool-pw@127.0.0.1:" + std::to_string(server.port());
  auto hosts = start_hosts(url, "acl-pool", 1, 500ms);
  {
    mp::redis::PoolOptions options;
    options.max_attempts = 1;
    options.lease = 500ms;
    mp::redis::Pool pool(url, "acl-pool", options);
    EXPECT_EQ(pool.map(&faulttasks::twice, std::vector<int>{1, 2, 3}), (std::vector<int>{2, 4, 6}));
    // Cancel under the ACL: a running task, and a map whose tasks wait on the host and the server.
    auto running = pool.apply_async(&faulttasks::until_go, 1);
    ASSERT_TRUE(mp::test::eventually([&] { return std::filesystem::exists(server.dir() + "/waiting"); }));
    std::vector<int> many(200, 1);
    auto doubled = pool.map_async(&faulttasks::twice, many);  // more than any window: most stay on the server
    // The map first: the host hears of it before the running task's end frees its process, so
    // none of the map's tasks it holds starts, and each mark is one the host holds and removes.
    EXPECT_TRUE(doubled.cancel());
    EXPECT_TRUE(running.cancel());
    EXPECT_EQ(server.integer({"LLEN", "mpq:{acl-pool}:items"}), 0);
    EXPECT_THROW((void)running.get(), mp::Cancelled);
    EXPECT_THROW((void)doubled.get(), mp::Cancelled);
    // The host heard it (its cancel watch runs under the ACL too): what it held is stopped or
    // dropped and acknowledged, and it serves on.
    EXPECT_TRUE(mp::test::eventually([&] {
      return server.integer({"HLEN", "mpq:{acl-pool}:cancelled"}) == 0;
    }));
    EXPECT_EQ(pool.apply_async(&faulttasks::twice, 21).get(30s), 42);
    // Out of attempts when its only host dies: only the submitter's dead-letter watch can say so.
    auto result = pool.apply_async(&faulttasks::stuck_everywhere, 1);
    ASSERT_TRUE(mp::test::eventually(
        [&] { return std::filesystem::exists(server.dir() + "/run-" + std::to_string(hosts[0])); }));
    EXPECT_EQ(mp::test::kill_child(hosts[0]), -SIGKILL);
    EXPECT_THROW((void)result.get(30s), mp::WorkerLost);
  }
}

// A server that stalls for longer than one get's short wait but less than the queue's
// server_timeout (10 s) is not lost: neither the host nor the submitter gives up.
TEST(RedisPoolFaults, AServerStallShorterThanTheServerTimeoutLosesNothing) {
  mp::test::RedisServer server;
  faulttasks::g_dir = server.dir();
  auto hosts = start_hosts(server.url(), "stalled", 1, 10s);
  {
    mp::redis::Pool pool(server.url(), "stalled");
    EXPECT_EQ(pool.apply(&faulttasks::twice, 1), 2);
    auto pending = pool.apply_async(&faulttasks::until_go, 9);  // running on the host: a result is awaited
    ASSERT_NE(marker_pid("waiting"), 0);
    server.freeze();
    std::this_thread::sleep_for(1500ms);  // the stall: longer than a get's wait + 0.5 s
    server.thaw();
    std::ofstream(server.dir() + "/go") << 1;
    EXPECT_EQ(pending.get(30s), 9);                                    // not failed by the stall
    EXPECT_EQ(pool.apply_async(&faulttasks::twice, 21).get(30s), 42);  // the host still serves
  }
  ::kill(hosts[0], SIGTERM);
  EXPECT_EQ(mp::test::wait_child(hosts[0]), 0);  // and it stopped cleanly, not on an error
}

// A host stopped (SIGSTOP) for longer than its lease loses the task it held to the queue; when
// it wakes, its refused acknowledgement is not an error: it keeps serving.
TEST(RedisPoolFaults, AHostThatOutlivedItsLeaseKeepsServing) {
  mp::test::RedisServer server;
  faulttasks::g_dir = server.dir();
  auto hosts = start_hosts(server.url(), "paused", 1, 300ms);
  {
    mp::redis::PoolOptions options;
    options.lease = 300ms;  // the submitter reaps the stopped host's lease every 150 ms
    mp::redis::Pool pool(server.url(), "paused", options);
    auto pending = pool.apply_async(&faulttasks::until_go, 5);
    ASSERT_NE(marker_pid("waiting"), 0);
    ::kill(hosts[0], SIGSTOP);
    // Its lease runs out and the task goes back to the queue (counted as a failed delivery).
    EXPECT_TRUE(mp::test::eventually([&] { return server.integer({"LLEN", "mpq:{paused}:items"}) == 1; }));
    std::ofstream(server.dir() + "/go") << 1;
    ::kill(hosts[0], SIGCONT);
    EXPECT_EQ(pending.get(30s), 5);
    EXPECT_EQ(pool.apply_async(&faulttasks::twice, 4).get(30s), 8);  // still serving
  }
  ::kill(hosts[0], SIGTERM);
  EXPECT_EQ(mp::test::wait_child(hosts[0]), 0);
}
