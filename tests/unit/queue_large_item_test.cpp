// tests/unit/queue_large_item_test.cpp — large (streamed) items honour
// non-blocking calls, timeouts and shutdown, and one process can put a large
// item and get it back (issue 9, defects 1, 2 and 3).
//
// Each body that hung before the fix runs in a forked child under alarm(): a
// regression fails with SIGALRM instead of hanging the suite.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include <gtest/gtest.h>

#include "mp/queue.hpp"
#include "support/child.hpp"

namespace {

using namespace std::chrono_literals;
using mp::test::eventually;
using mp::test::fork_child;
using mp::test::wait_child;

constexpr unsigned kWatchdogSeconds = 30;
constexpr int kShutDownSeen = 3;

// A queue whose ring (64 KiB) is much smaller than the items: they are streamed.
mp::Queue<std::string> small_ring_queue() { return mp::Queue<std::string>(0, mp::QueueOptions{64 * 1024}); }

std::string big_item(char fill) { return std::string(std::size_t{1} << 20, fill); }

const mp::detail::RingHeader& header_of(const mp::Queue<std::string>& q) {
  return *mp::detail::QueueAccess::ring(q).header();
}

// Defect 1: put_nowait / try_put / put(timeout) of an item that must be
// streamed, with no reader, return (Full) instead of waiting for room forever.
TEST(QueueLargeItems, NonBlockingAndTimedPutsOfAStreamedItemRaiseFullInTime) {
  auto q = small_ring_queue();
  const pid_t pid = fork_child([q]() mutable {
    ::alarm(kWatchdogSeconds);
    const std::string big = big_item('x');
    try {
      q.put_nowait(big);
      return 1;
    } catch (const mp::Full&) {
    }
    if (q.try_put(big)) return 2;
    try {
      q.put(big, 100ms);  // streams until the ring is full, then aborts at the deadline
      return 3;
    } catch (const mp::Full&) {
    }
    // The aborted stream is dropped by the next get (there is no item); the
    // queue goes on.
    if (q.try_get().has_value()) return 6;
    q.put(std::string("small"));
    if (q.get(5s) != "small") return 4;
    if (!q.empty()) return 5;
    return 0;
  });
  EXPECT_EQ(wait_child(pid), 0);
}

// Defect 1, as the issue shows it: an 8 MiB put_nowait on an unbounded queue
// with no reader returns at once (Python's does: nothing bounds that queue).
TEST(QueueLargeItems, PutNowaitOfEightMiBOnAnUnboundedQueueReturns) {
  mp::Queue<std::string> q;
  const pid_t pid = fork_child([q]() mutable {
    ::alarm(kWatchdogSeconds);
    q.put_nowait(std::string(8 << 20, 'x'));
    if (!q.try_put(std::string(8 << 20, 'y'))) return 1;
    q.put(std::string(8 << 20, 'z'), 1s);
    if (q.get() != std::string(8 << 20, 'x')) return 2;
    if (q.get() != std::string(8 << 20, 'y')) return 3;
    if (q.get() != std::string(8 << 20, 'z')) return 4;
    return 0;
  });
  EXPECT_EQ(wait_child(pid), 0);
}

// Defect 2: one process puts an 8 MiB item and then gets it (as in Python),
// on an unbounded and on a bounded queue.
TEST(QueueLargeItems, OneProcessPutsAnEightMiBItemThenGetsIt) {
  mp::Queue<std::string> unbounded;
  mp::Queue<std::string> bounded(1);
  const pid_t pid = fork_child([unbounded, bounded]() mutable {
    ::alarm(kWatchdogSeconds);
    const std::string item(8 << 20, 's');
    unbounded.put(item);
    if (unbounded.get() != item) return 1;
    bounded.put(item);
    if (bounded.get() != item) return 2;
    return 0;
  });
  EXPECT_EQ(wait_child(pid), 0);
}

// Defect 3: a producer stopped (SIGSTOP) half-way through an item, after
// filling the ring: a timed get returns Empty at its deadline; the item is
// not lost: once the producer goes on, it is delivered whole.
TEST(QueueLargeItems, TimedGetReturnsEmptyWhileTheProducerIsStoppedMidItem) {
  auto q = small_ring_queue();
  const pid_t producer = fork_child([q]() mutable { q.put(big_item('p')); });
  // No reader yet: the producer fills the ring and waits for room.
  ASSERT_TRUE(eventually(
      [&] { return header_of(q).not_full.sleepers.load() != 0 && header_of(q).open_stream_id != 0; }));
  ASSERT_EQ(::kill(producer, SIGSTOP), 0);

  const pid_t timed_getter = fork_child([q]() mutable {
    ::alarm(kWatchdogSeconds);
    try {
      (void)q.get(200ms);
      return 1;
    } catch (const mp::Empty&) {
      return 0;
    }
  });
  EXPECT_EQ(wait_child(timed_getter), 0);

  ASSERT_EQ(::kill(producer, SIGCONT), 0);
  const pid_t getter = fork_child([q]() mutable {
    ::alarm(kWatchdogSeconds);
    if (q.get() != big_item('p')) return 1;
    return q.empty() ? 0 : 2;
  });
  EXPECT_EQ(wait_child(getter), 0);
  EXPECT_EQ(wait_child(producer), 0);
}

// Defect 3: shutdown() wakes a get blocked half-way through an item whose
// producer is stopped; the producer, once it goes on, learns the queue was
// shut down.
TEST(QueueLargeItems, ShutdownWakesAGetWaitingForAStoppedProducersItem) {
  auto q = small_ring_queue();
  const pid_t producer = fork_child([q]() mutable {
    try {
      q.put(big_item('p'));
      return 0;
    } catch (const mp::ShutDown&) {
      return kShutDownSeen;
    }
  });
  ASSERT_TRUE(eventually(
      [&] { return header_of(q).not_full.sleepers.load() != 0 && header_of(q).open_stream_id != 0; }));
  ASSERT_EQ(::kill(producer, SIGSTOP), 0);

  const pid_t getter = fork_child([q]() mutable {
    ::alarm(kWatchdogSeconds);
    try {
      (void)q.get();
      return 1;
    } catch (const mp::ShutDown&) {
      return kShutDownSeen;
    }
  });
  // The getter is reading the stream (it holds the consumers' side) ...
  ASSERT_TRUE(eventually([&] { return header_of(q).consumer_streaming.load() != 0; }));
  q.shutdown();  // ... and is woken by shutdown.
  EXPECT_EQ(wait_child(getter), kShutDownSeen);
  ASSERT_EQ(::kill(producer, SIGCONT), 0);
  EXPECT_EQ(wait_child(producer), kShutDownSeen);
}

}  // namespace
