// Handles as Process arguments under a start method (issue 11), for the
// start_methods_child helper (which calls mp::init, so spawn works too).
// Each check starts one child with handles of one kind, uses them from both
// sides, and reports "<kind> ok" or "<kind> FAILED: why". The timeouts only
// bound a failure (a broken handle must not hang the test); nothing waits for
// time to pass.
#pragma once

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

#include "mp/context.hpp"
#include "mp/errors.hpp"
#include "mp/pipe.hpp"
#include "mp/process.hpp"
#include "mp/queue.hpp"
#include "mp/shared.hpp"
#include "mp/synchronize.hpp"

namespace mp::test {

inline constexpr auto kBound = std::chrono::seconds(30);  // only reached when a handle is broken

// A registered subclass whose fields are handles.
struct QueueFiller : mp::Process {
  QueueFiller() = default;
  QueueFiller(mp::Queue<int> q, int value) : queue(std::move(q)), n(value) {}
  void run() override { queue.put(n); }
  template <class Archive>
  void serialize(Archive& ar) {
    ar(queue, n);
  }
  mp::Queue<int> queue;
  int n = 0;
};

namespace handles {

void queue_child(mp::Queue<int> in, mp::Queue<int> out) { out.put(in.get(kBound) * 2); }
void joinable_child(mp::JoinableQueue<std::string> jobs) {
  if (jobs.get(kBound) != "job") mp::exit(3);
  jobs.task_done();
}
void simple_child(mp::SimpleQueue<std::string> q) { q.put("from the child"); }
void lock_child(mp::Lock lock, mp::Event held, mp::Event release) {
  lock.acquire();
  held.set();
  if (!release.wait(kBound)) mp::exit(3);
  lock.release();
}
void rlock_child(mp::RLock lock, mp::Event held, mp::Event release) {
  std::lock_guard outer(lock);
  std::lock_guard inner(lock);
  held.set();
  if (!release.wait(kBound)) mp::exit(3);
}
void hold_until_killed(mp::Lock lock, mp::Event held) {
  lock.acquire();
  held.set();
  for (;;) ::pause();
}
void semaphore_child(mp::Semaphore tokens, mp::BoundedSemaphore bounded) {
  tokens.release();
  tokens.release();
  try {
    bounded.release();  // already at its bound of 1
    mp::exit(3);
  } catch (const mp::ValueError&) {
  }
  if (!bounded.acquire(kBound)) mp::exit(4);
}
void event_child(mp::Event go, mp::Event done) {
  if (!go.wait(kBound)) mp::exit(3);
  done.set();
}
void condition_child(mp::Lock lock, mp::Condition condition, mp::Value<int> flag) {
  std::lock_guard hold(lock);  // the Condition's own lock, passed beside it
  flag.value() = 1;
  condition.notify_all();
}
void barrier_child(mp::Barrier barrier) {
  if (barrier.wait(kBound) < 0) mp::exit(3);
}
void shared_child(mp::Value<long> value, mp::Array<int> array) {
  if (value.value() != 10 || array.size() != 3) mp::exit(3);
  std::lock_guard hold(value.get_lock());
  value.value() += 5;
  array[0] = 7;
  array[2] = 9;
}
void value_lock_child(mp::Value<long> value, mp::Event held, mp::Event release) {
  std::lock_guard hold(value.get_lock());
  held.set();
  if (!release.wait(kBound)) mp::exit(3);
}
void duplex_child(mp::Connection<int> connection) { connection.send(connection.recv() + 1); }
void one_way_child(mp::Connection<std::string> writer) { writer.send("through a one-way pipe"); }
void start_child(mp::Queue<int> results, mp::Lock lock, mp::Connection<int> connection, int i) {
  std::lock_guard hold(lock);
  results.put(i);
  connection.send(i);
}

}  // namespace handles

inline bool joined_ok(mp::Process& p) {
  p.join();
  return p.exitcode() == 0;
}

// run_handle_checks(method): every check; returns 0 (the report is the output).
inline int run_handle_checks(mp::StartMethod method) {
  using namespace handles;
  auto check = [](const char* kind, auto&& body) {
    std::string why;
    try {
      why = body();
    } catch (const std::exception& error) {
      why = std::string("exception: ") + error.what();
    }
    if (why.empty()) {
      std::printf("%s ok\n", kind);
    } else {
      std::printf("%s FAILED: %s\n", kind, why.c_str());
    }
    std::fflush(stdout);
  };
  check("Queue", [&]() -> std::string {
    mp::Queue<int> in;
    mp::Queue<int> out;
    mp::Process p(method, queue_child, in, out);
    p.start();
    in.put(21);
    const int got = out.get(kBound);
    if (!joined_ok(p)) return "child failed";
    return got == 42 ? "" : "got " + std::to_string(got);
  });
  check("JoinableQueue", [&]() -> std::string {
    mp::JoinableQueue<std::string> jobs;
    mp::Process p(method, joinable_child, jobs);
    p.start();
    jobs.put("job");
    const bool done = jobs.join(kBound);
    if (!joined_ok(p)) return "child failed";
    return done ? "" : "join() timed out";
  });
  check("SimpleQueue", [&]() -> std::string {
    mp::SimpleQueue<std::string> q;
    mp::Process p(method, simple_child, q);
    p.start();
    const std::string got = q.get();
    if (!joined_ok(p)) return "child failed";
    return got == "from the child" ? "" : "got " + got;
  });
  check("Lock", [&]() -> std::string {
    mp::Lock lock;
    mp::Event held;
    mp::Event release;
    mp::Process p(method, lock_child, lock, held, release);
    p.start();
    if (!held.wait(kBound)) return "the child never held it";
    const bool blocked = !lock.acquire(false);
    release.set();
    if (!joined_ok(p)) return "child failed";
    if (!blocked) return "the parent took a lock the child held";
    if (!lock.acquire(kBound)) return "not free after the child released it";
    lock.release();
    return "";
  });
  check("RLock", [&]() -> std::string {
    mp::RLock lock;
    mp::Event held;
    mp::Event release;
    mp::Process p(method, rlock_child, lock, held, release);
    p.start();
    if (!held.wait(kBound)) return "the child never held it";
    const bool blocked = !lock.acquire(false);
    release.set();
    if (!joined_ok(p)) return "child failed";
    if (!blocked) return "the parent took an RLock the child held";
    if (!lock.acquire(kBound)) return "not free after the child released it";
    lock.release();
    return "";
  });
  check("Lock held by a killed child", [&]() -> std::string {
    mp::Lock lock;
    mp::Event held;
    mp::Process p(method, hold_until_killed, lock, held);
    p.start();
    if (!held.wait(kBound)) return "the child never held it";
    p.kill();
    p.join();
    if (p.exitcode() != -SIGKILL) return "exitcode " + std::to_string(p.exitcode().value_or(-1000));
    if (!lock.acquire(kBound)) return "the dead holder's lock was never freed";
    const bool reported = lock.previous_owner_died();
    lock.release();
    return reported ? "" : "previous_owner_died() is false";
  });
  check("Semaphore", [&]() -> std::string {
    mp::Semaphore tokens(0);
    mp::BoundedSemaphore bounded(1);
    mp::Process p(method, semaphore_child, tokens, bounded);
    p.start();
    const bool got_both = tokens.acquire(kBound) && tokens.acquire(kBound);
    if (!joined_ok(p)) return "child failed (exit " + std::to_string(p.exitcode().value_or(-1000)) + ")";
    if (!got_both) return "the child's releases were not seen";
    return bounded.get_value() == 0 ? "" : "the child's acquire of the BoundedSemaphore was not seen";
  });
  check("Event", [&]() -> std::string {
    mp::Event go;
    mp::Event done;
    mp::Process p(method, event_child, go, done);
    p.start();
    go.set();
    const bool seen = done.wait(kBound);
    if (!joined_ok(p)) return "child failed";
    return seen ? "" : "the child's set() was not seen";
  });
  check("Condition", [&]() -> std::string {
    mp::Lock lock;
    mp::Condition condition(lock);
    mp::Value<int> flag(0);
    mp::Process p(method, condition_child, lock, condition, flag);
    bool notified = false;
    {
      std::unique_lock hold(condition);
      p.start();
      notified = condition.wait_for([&] { return flag.value() == 1; }, kBound);
    }
    if (!joined_ok(p)) return "child failed";
    return notified ? "" : "the child's notify was not seen";
  });
  check("Barrier", [&]() -> std::string {
    mp::Barrier barrier(2);
    mp::Process p(method, barrier_child, barrier);
    p.start();
    const int index = barrier.wait(kBound);
    if (!joined_ok(p)) return "child failed";
    return index >= 0 ? "" : "wait() failed";
  });
  check("Value and Array", [&]() -> std::string {
    mp::Value<long> value(10);
    mp::Array<int> array(3);
    mp::Process p(method, shared_child, value, array);
    p.start();
    if (!joined_ok(p)) return "child failed (it did not see the parent's values?)";
    if (value.value() != 15 || array[0] != 7 || array[1] != 0 || array[2] != 9)
      return "the child's writes were not seen";
    return "";
  });
  check("Value's lock", [&]() -> std::string {
    mp::Value<long> value(1);
    mp::Event held;
    mp::Event release;
    mp::Process p(method, value_lock_child, value, held, release);
    p.start();
    if (!held.wait(kBound)) return "the child never held it";
    const bool blocked = !value.get_lock().acquire(false);
    release.set();
    if (!joined_ok(p)) return "child failed";
    return blocked ? "" : "get_lock() in the child is another lock";
  });
  check("Connection", [&]() -> std::string {
    auto [ours, theirs] = mp::Pipe<int>();
    mp::Process p(method, duplex_child, theirs);
    p.start();
    ours.send(41);
    if (!ours.poll(kBound)) return "no answer";
    const int got = ours.recv();
    if (!joined_ok(p)) return "child failed";
    return got == 42 ? "" : "got " + std::to_string(got);
  });
  check("one-way Connection", [&]() -> std::string {
    auto [reader, writer] = mp::Pipe<std::string>(false);
    mp::Process p(method, one_way_child, writer);
    p.start();
    writer.close();  // the child holds its own copy of the end
    if (!reader.poll(kBound)) return "nothing came";
    const std::string got = reader.recv();
    if (!joined_ok(p)) return "child failed";
    return got == "through a one-way pipe" ? "" : "got " + got;
  });
  check("subclass with a Queue field", [&]() -> std::string {
    mp::Queue<int> q;
    QueueFiller p(q, 25);
    p.start();
    const int got = q.get(kBound);
    if (!joined_ok(p)) return "child failed";
    return got == 25 ? "" : "got " + std::to_string(got);
  });
  return 0;
}

inline std::size_t count_entries(const char* directory) {
  std::size_t n = 0;
  if (DIR* dir = ::opendir(directory)) {
    while (::readdir(dir) != nullptr) ++n;
    ::closedir(dir);
  }
  return n;
}

// run_handle_starts(method, starts): `starts` children, each with a Queue, a
// Lock and a Pipe end; prints how many fds and /dev/shm entries it gained.
inline int run_handle_starts(mp::StartMethod method, int starts) {
  mp::Queue<int> results;
  mp::Lock lock;
  auto [ours, theirs] = mp::Pipe<int>();
  auto one = [&](int i) {
    mp::Process p(method, handles::start_child, results, lock, theirs, i);
    p.start();
    const bool ok = results.get(kBound) == i && ours.recv() == i && joined_ok(p);
    if (!ok) {
      std::printf("start %d FAILED\n", i);
      std::exit(1);
    }
  };
  one(-1);  // the first start may open what every later one reuses (the fork server's socket)
  const std::size_t fds = count_entries("/proc/self/fd");
  const std::size_t shm = count_entries("/dev/shm");
  for (int i = 0; i < starts; ++i) one(i);
  std::printf("fds +%ld shm +%ld\n",
              static_cast<long>(count_entries("/proc/self/fd")) - static_cast<long>(fds),
              static_cast<long>(count_entries("/dev/shm")) - static_cast<long>(shm));
  return 0;
}

}  // namespace mp::test

MP_REGISTER_PROCESS(mp::test::QueueFiller)
