// mp::redis::Lock: Lockable/TimedLockable, fencing, leases, lost leases, dead holders.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <mutex>
#include <string>
#include <thread>

#include "mp/redis.hpp"
#include "redis/redis_server.hpp"
#include "support/child.hpp"

using namespace std::chrono_literals;

namespace {

template <class T>
bool read_from(int fd, T& out) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, 20000) <= 0) return false;
  return ::read(fd, &out, sizeof out) == static_cast<ssize_t>(sizeof out);
}

}  // namespace

TEST(RedisLock, LockableAndFencingTokenGrows) {
  mp::test::RedisServer server;
  mp::redis::Lock lock(server.url(), "ledger", 2s);
  EXPECT_EQ(lock.fencing_token(), 0u);
  std::uint64_t first = 0;
  {
    std::lock_guard hold(lock);
    first = lock.fencing_token();
    EXPECT_GT(first, 0u);
  }
  {
    std::unique_lock hold(lock, std::defer_lock);
    EXPECT_TRUE(hold.try_lock_for(1s));
    EXPECT_GT(lock.fencing_token(), first);
  }
  EXPECT_TRUE(lock.try_lock_until(std::chrono::steady_clock::now() + 1s));
  lock.unlock();
  EXPECT_TRUE(lock.acquire(false));
  lock.release();
  lock.acquire();
  lock.release();
}

TEST(RedisLock, OtherProcessesWaitWhileHeld) {
  mp::test::RedisServer server;
  mp::redis::Lock lock(server.url(), "busy", 2s);
  // The children are forked before this process holds the lock: a held lock
  // runs a lease-keeper thread, and a fork while another thread runs can
  // deadlock the child (GCC 12's ASan allocator has no fork handlers). Each
  // child waits for its go-ahead on a pipe.
  int held[2];
  int released[2];
  ASSERT_EQ(::pipe(held), 0);
  ASSERT_EQ(::pipe(released), 0);
  pid_t child = mp::test::fork_child([&] {
    char go = 0;
    if (::read(held[0], &go, 1) != 1) return 4;
    mp::redis::Lock mine(server.url(), "busy", 2s);
    if (mine.try_lock()) return 1;
    if (mine.acquire(100ms)) return 2;
    if (lock.try_lock()) return 3;  // the inherited handle: the child does not hold it either
    return 0;
  });
  pid_t after = mp::test::fork_child([&] {
    char go = 0;
    if (::read(released[0], &go, 1) != 1) return 4;
    mp::redis::Lock mine(server.url(), "busy", 2s);
    if (!mine.acquire(5s)) return 1;
    mine.release();
    return 0;
  });
  ::close(held[0]);
  ::close(released[0]);
  lock.acquire();
  ASSERT_EQ(::write(held[1], "g", 1), 1);
  ::close(held[1]);
  EXPECT_EQ(mp::test::wait_child(child), 0);
  lock.release();
  ASSERT_EQ(::write(released[1], "g", 1), 1);
  ::close(released[1]);
  EXPECT_EQ(mp::test::wait_child(after), 0);
}

TEST(RedisLock, MutualExclusionAcrossProcesses) {
  mp::test::RedisServer server;
  constexpr int kWorkers = 4;
  constexpr int kRounds = 25;
  server.command({"SET", "counter", "0"});
  std::vector<pid_t> workers;
  for (int w = 0; w < kWorkers; ++w) {
    workers.push_back(mp::test::fork_child([&] {
      mp::redis::Lock lock(server.url(), "counter-lock", 2s);
      for (int i = 0; i < kRounds; ++i) {
        std::lock_guard hold(lock);
        long long value = server.integer({"GET", "counter"});  // read-modify-write: needs the lock
        server.command({"SET", "counter", std::to_string(value + 1)});
      }
      return 0;
    }));
  }
  for (pid_t w : workers) EXPECT_EQ(mp::test::wait_child(w), 0);
  EXPECT_EQ(server.integer({"GET", "counter"}), kWorkers * kRounds);
}

TEST(RedisLock, ReleasingAnUnheldLockIsValueError) {
  mp::test::RedisServer server;
  mp::redis::Lock lock(server.url(), "unheld");
  EXPECT_THROW(lock.release(), mp::ValueError);
  lock.acquire();
  lock.release();
  EXPECT_THROW(lock.unlock(), mp::ValueError);
  lock.acquire();
  EXPECT_THROW(lock.acquire(), mp::ValueError);  // not re-entrant: would wait for itself
  EXPECT_FALSE(lock.try_lock());
  EXPECT_FALSE(lock.acquire(std::chrono::milliseconds(50)));
  lock.release();
}

TEST(RedisLock, LeaseIsRenewedWhileHeld) {
  mp::test::RedisServer server;
  mp::redis::Lock lock(server.url(), "renewed", 300ms);
  // Forked before the lock is held (its lease keeper is a thread; see
  // OtherProcessesWaitWhileHeld); the child tries once the parent holds it.
  int held[2];
  ASSERT_EQ(::pipe(held), 0);
  pid_t child = mp::test::fork_child([&] {
    char go = 0;
    if (::read(held[0], &go, 1) != 1) return 2;
    mp::redis::Lock other(server.url(), "renewed", 300ms);
    return other.acquire(1200ms) ? 1 : 0;
  });
  ::close(held[0]);
  lock.acquire();
  ASSERT_EQ(::write(held[1], "g", 1), 1);
  ::close(held[1]);
  // Several leases long: still held (the keeper extends it), so others cannot take it.
  EXPECT_EQ(mp::test::wait_child(child), 0);
  lock.release();  // no LockLost
}

TEST(RedisLock, ReleaseAfterTheLeaseWasLostIsLockLost) {
  mp::test::RedisServer server;
  mp::redis::Lock lock(server.url(), "lost", 5s);
  lock.acquire();
  server.command({"DEL", "mpl:{lost}:lock"});  // as if the lease had run out
  mp::redis::Lock thief(server.url(), "lost", 5s);
  EXPECT_TRUE(thief.try_lock());
  EXPECT_GT(thief.fencing_token(), lock.fencing_token());
  try {
    lock.release();
    FAIL() << "no LockLost";
  } catch (const mp::LockLost& e) {
    EXPECT_NE(std::string(e.what()).find("lost"), std::string::npos);
  }
  thief.release();  // the thief's hold was not disturbed by the stale release
}

TEST(RedisLock, AKilledHoldersLockIsFreeAfterItsLease) {
  mp::test::RedisServer server;
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  pid_t holder = mp::test::fork_child([&] {
    mp::redis::Lock lock(server.url(), "orphan", 400ms);
    lock.acquire();
    std::uint64_t token = lock.fencing_token();
    [[maybe_unused]] auto n = ::write(fds[1], &token, sizeof token);
    ::pause();
    return 0;
  });
  std::uint64_t holder_token = 0;
  ASSERT_TRUE(read_from(fds[0], holder_token));
  mp::test::kill_child(holder);
  ::close(fds[0]);
  ::close(fds[1]);
  mp::redis::Lock lock(server.url(), "orphan", 400ms);
  ASSERT_TRUE(lock.acquire(20s));
  EXPECT_GT(lock.fencing_token(), holder_token);
  lock.release();
}

TEST(RedisLock, ServerGoneWhileAcquiringIsConnectionError) {
  mp::test::RedisServer server;
  mp::redis::Options options;
  options.server_timeout = 1s;
  mp::redis::Lock holder(server.url(), "gone", 2s, options);
  mp::redis::Lock waiter(server.url(), "gone", 2s, options);
  holder.acquire();
  std::atomic<bool> connection_error{false};
  std::thread t([&] {
    try {
      waiter.acquire();
    } catch (const mp::ConnectionError&) {
      connection_error = true;
    }
  });
  std::this_thread::sleep_for(200ms);
  server.kill9();
  t.join();
  EXPECT_TRUE(connection_error);
  EXPECT_THROW(holder.release(), mp::ConnectionError);
}
