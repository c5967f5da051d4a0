// tests/unit/queue_unbounded_test.cpp — maxsize 0 has no hidden bound: one
// process puts millions of items and gets them back, memory grows with the
// backlog and is given back after the drain (issue 9, defect 5).
#include <unistd.h>

#include <chrono>
#include <cstddef>

#include <gtest/gtest.h>

#include "mp/queue.hpp"
#include "support/child.hpp"

namespace {

using namespace std::chrono_literals;
using mp::test::fork_child;
using mp::test::wait_child;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr long kItems = 1'000'000;  // the sanitizers make 10 million take minutes
#else
constexpr long kItems = 10'000'000;
#endif

std::size_t resident(const mp::Queue<long>& q) { return mp::detail::QueueAccess::ring(q).resident_bytes(); }

// Memory a drained queue may keep: its header page and at most one reclaim
// granule of ring (the one the consumers are in).
constexpr std::size_t kAtRest = mp::detail::kRingDataOffset + mp::detail::kReclaimGranule;

// Before the fix the put loop stopped at ~87,000 items (a 2 MiB ring) and
// waited forever: the body runs in a child under alarm() so that fails fast.
TEST(QueueUnbounded, OneProcessPutsMillionsOfItemsThenGetsThemAll) {
  mp::Queue<long> q;
  const pid_t pid = fork_child([q]() mutable {
    ::alarm(240);
    for (long i = 0; i < kItems; ++i) q.put(i);
    if (q.qsize() != static_cast<std::size_t>(kItems)) return 1;
    // The backlog lives in the queue's memory: 16 bytes a record (8 of header).
    if (resident(q) < static_cast<std::size_t>(kItems) * 16) return 2;
    for (long i = 0; i < kItems; ++i)
      if (q.get() != i) return 3;
    if (!q.empty()) return 4;
    if (resident(q) > kAtRest) return 5;  // given back after the drain
    return 0;
  });
  EXPECT_EQ(wait_child(pid), 0);
}

TEST(QueueUnbounded, MemoryFollowsTheBacklogAndIsGivenBack) {
  mp::Queue<long> q;
  EXPECT_LE(resident(q), kAtRest);
  for (int round = 0; round < 3; ++round) {
    for (long i = 0; i < 300'000; ++i) q.put(i);  // 4.8 MB of 16-byte records
    EXPECT_GE(resident(q), std::size_t{4} << 20);
    for (long i = 0; i < 300'000; ++i) ASSERT_EQ(q.get(), i);
    EXPECT_LE(resident(q), kAtRest) << "round " << round;
  }
  // Reserved, not used: the mapping is the 2 GiB reservation.
  EXPECT_EQ(mp::detail::QueueAccess::ring(q).mapped_bytes(),
            mp::detail::kRingDataOffset + mp::detail::kDefaultRingCapacity);
}

// A child forked before the backlog grew sees every item (no remapping).
TEST(QueueUnbounded, AChildForkedEarlierSeesTheGrownBacklog) {
  mp::Queue<long> q;
  mp::Queue<long> go(1);
  const pid_t pid = fork_child([q, go]() mutable {
    (void)go.get();
    for (long i = 0; i < 500'000; ++i)
      if (q.get() != i) return 1;
    return 0;
  });
  for (long i = 0; i < 500'000; ++i) q.put(i);
  go.put(1);
  EXPECT_EQ(wait_child(pid), 0);
  EXPECT_TRUE(q.empty());
  EXPECT_LE(resident(q), kAtRest);
}

TEST(QueueUnbounded, BoundedQueuesStillRaiseFull) {
  mp::Queue<long> q(3);
  for (long i = 0; i < 3; ++i) q.put(i);
  EXPECT_TRUE(q.full());
  EXPECT_THROW(q.put_nowait(3), mp::Full);
  EXPECT_FALSE(q.try_put(3));
  EXPECT_THROW(q.put(3, 10ms), mp::Full);
  EXPECT_EQ(q.get(), 0);
  q.put_nowait(3);
  EXPECT_EQ(q.qsize(), 3u);
}

}  // namespace
