// Helper for the Pool start-method tests: a program that calls mp::init()
// first (so spawn works and the fork server starts from a quiet state).
// Usage: pool_start_methods MODE METHOD      METHOD: fork | forkserver | spawn
// MODE busy: 8 threads allocate and hold locks (a user mutex, stdout's lock)
//   while Pools under METHOD run map/apply/imap, an initializer,
//   maxtasksperchild, task_timeout, a worker that SIGKILLs itself and
//   terminate(); one line "<what> ok" (or "<what> FAILED: why") each.
// repeat: 20 Pool(2)s made, used, closed and joined; prints "fds +N shm +M"
//   (the growth of this process's fds and of /dev/shm after the first one).
// fork_default / fork_chosen: with one other thread running, two Pools under
//   the default method (a warning, once) or with start_method = fork chosen
//   (none); prints nothing.
// owner: a Pool(3) whose workers all ran a task; prints
//   "ready <pid> workers: <pid> <pid> <pid>" and waits to be SIGKILLed.
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "mp/context.hpp"
#include "mp/errors.hpp"
#include "mp/pool.hpp"
#include "support/pool_tasks.hpp"

namespace {

using namespace std::chrono_literals;
using namespace mp::test::tasks;

int pid_after_nap(int) {
  ::usleep(20'000);  // long enough that every worker takes one
  return static_cast<int>(::getpid());
}

std::string busy_text(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += std::to_string(i);
  return s;
}

// BusyThreads: 8 threads that allocate, hold a user mutex and hold stdout's
// lock, each for a moment at a time, until stopped.
class BusyThreads {
 public:
  void start() {
    for (int i = 0; i < 8; ++i) {
      threads_.emplace_back([this, i] {
        while (!stop_.load()) {
          if (i % 3 == 0) {
            std::vector<std::string> junk;
            for (int k = 0; k < 100; ++k) junk.push_back(busy_text(50));
          } else if (i % 3 == 1) {
            std::lock_guard lock(mutex_);
            std::this_thread::sleep_for(200us);
          } else {
            ::flockfile(stdout);
            std::this_thread::sleep_for(200us);
            ::funlockfile(stdout);
          }
          std::this_thread::sleep_for(50us);
        }
      });
    }
  }
  ~BusyThreads() {
    stop_.store(true);
    for (auto& thread : threads_) thread.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::vector<std::thread> threads_;
};

mp::PoolOptions under(mp::StartMethod method) {
  mp::PoolOptions options;
  options.start_method = method;
  return options;
}

// Lines are collected and printed at the end (the busy threads hold stdout's lock).
std::vector<std::string> g_lines;
void check(bool ok, const std::string& what, const std::string& why = "") {
  g_lines.push_back(what + (ok ? " ok" : " FAILED: " + why));
}

int run_busy(mp::StartMethod method) {
  BusyThreads busy;
#if defined(__SANITIZE_ADDRESS__)
  // spawn forks (then execs) the zygote from this process: under ASan, whose
  // allocator has no fork handlers, not beside allocating threads. The
  // workers are still forked by the quiet zygote while the threads run.
  const bool threads_first = method != mp::StartMethod::spawn;
#else
  const bool threads_first = true;
#endif
  if (threads_first) busy.start();
  {
    mp::Pool pool(2, under(method));
    if (!threads_first) busy.start();
    std::vector<int> items;
    for (int i = 0; i < 200; ++i) items.push_back(i);
    const std::vector<int> squares = pool.map(square, items);
    bool same = squares.size() == items.size();
    for (std::size_t i = 0; same && i < items.size(); ++i) same = squares[i] == items[i] * items[i];
    check(same, "map");
    check(pool.apply([](int a, int b) { return a * b; }, 6, 7) == 42, "apply");
    std::vector<int> streamed;
    for (int value : pool.imap(square, std::vector<int>{1, 2, 3})) streamed.push_back(value);
    check(streamed == std::vector<int>{1, 4, 9}, "imap");
  }
  {
    mp::PoolOptions options = under(method);
    options.initializer = initialize;
    options.maxtasksperchild = 1;
    mp::Pool pool(2, options);
    check(pool.map(read_initialized, std::vector<int>(6, 0), 1) == std::vector<int>(6, 7), "initializer");
    const std::vector<int> pids = pool.map(worker_pid, std::vector<int>(6, 0), 1);
    check(std::set<int>(pids.begin(), pids.end()).size() == 6, "maxtasksperchild");
  }
  {
    mp::PoolOptions options = under(method);
    options.task_timeout = 300ms;
    mp::Pool pool(1, options);
    try {
      pool.apply(sleep_forever, 0);
      check(false, "timeout", "the task returned");
    } catch (const mp::TaskTimeout&) {
      check(pool.apply(square, 5) == 25, "timeout", "no replacement");
    }
  }
  {
    mp::Pool pool(2, under(method));
    try {
      pool.apply(die_inside, 0);
      check(false, "worker lost", "the task returned");
    } catch (const mp::WorkerLost& e) {
      check(pool.map(square, std::vector<int>{1, 2, 3}, 1) == std::vector<int>{1, 4, 9}, "worker lost",
            e.what());
    }
  }
  {
    mp::Pool pool(1, under(method));
    auto stuck = pool.apply_async(sleep_forever, 0);
    pool.terminate();
    try {
      stuck.get();
      check(false, "terminate", "the task returned");
    } catch (const mp::WorkerLost&) {
      check(true, "terminate");
    }
  }
  return 0;
}

int count_entries(const char* directory) {
  DIR* dir = ::opendir(directory);
  if (dir == nullptr) return 0;
  int count = 0;
  while (::readdir(dir) != nullptr) ++count;
  ::closedir(dir);
  return count;
}

int run_repeat(mp::StartMethod method) {
  auto once = [method] {
    mp::Pool pool(2, under(method));
    (void)pool.map(square, std::vector<int>{1, 2, 3, 4}, 1);
    pool.close();
    pool.join();
  };
  once();  // the fork server and everything made once per process
  const int fds = count_entries("/proc/self/fd");
  const int shm = count_entries("/dev/shm");
  for (int i = 0; i < 20; ++i) once();
  std::printf("fds %+d shm %+d\n", count_entries("/proc/self/fd") - fds, count_entries("/dev/shm") - shm);
  return 0;
}

int run_fork_warning(bool chosen) {
  std::mutex mutex;
  std::condition_variable changed;
  bool done = false;
  std::thread idle([&] {
    std::unique_lock lock(mutex);
    changed.wait(lock, [&] { return done; });
  });
  for (int i = 0; i < 2; ++i) {
    mp::Pool pool(1, chosen ? under(mp::StartMethod::fork) : mp::PoolOptions{});
    (void)pool.apply(square, 2);
  }
  {
    std::lock_guard lock(mutex);
    done = true;
  }
  changed.notify_all();
  idle.join();
  return 0;
}

int run_owner(mp::StartMethod method) {
  mp::Pool pool(3, under(method));
  std::set<int> pids;
  for (int round = 0; round < 20 && pids.size() < 3; ++round) {
    for (int pid : pool.map(pid_after_nap, std::vector<int>(6, 0), 1)) pids.insert(pid);
  }
  std::printf("ready %d workers:", static_cast<int>(::getpid()));
  for (int pid : pids) std::printf(" %d", pid);
  std::printf("\n");
  std::fflush(stdout);
  for (;;) ::pause();
}

}  // namespace

int main(int argc, char** argv) {
  mp::init(argc, argv);
  if (argc < 3) return 2;
  const std::string mode = argv[1];
  const std::string name = argv[2];
  mp::StartMethod method = mp::StartMethod::fork;
  if (name == "forkserver") method = mp::StartMethod::forkserver;
  if (name == "spawn") method = mp::StartMethod::spawn;
  int rc = 2;
  if (mode == "busy") rc = run_busy(method);
  if (mode == "repeat") rc = run_repeat(method);
  if (mode == "fork_default") rc = run_fork_warning(false);
  if (mode == "fork_chosen") rc = run_fork_warning(true);
  if (mode == "owner") rc = run_owner(method);
  for (const std::string& line : g_lines) std::printf("%s\n", line.c_str());
  return rc;
}
