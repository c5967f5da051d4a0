// The byte ring under mp::Queue: its protocol in one process (suites ending in
// Threads run under ThreadSanitizer) and its repair after SIGKILL (processes).
#include "mp/detail/ring.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <span>
#include <thread>
#include <vector>

#include "support/child.hpp"
#include "support/values.hpp"

namespace {

using mp::detail::Deadline;
using mp::detail::GetTarget;
using mp::detail::Ring;
using mp::detail::RingStatus;

using mp::test::pattern;

RingStatus put(Ring& ring, const std::vector<std::byte>& bytes, bool nonblocking = false) {
  return ring.put(bytes, Deadline::never(), nonblocking);
}

RingStatus get(Ring& ring, std::vector<std::byte>& out, bool nonblocking = false) {
  GetTarget target{nullptr, 0, &out, false};
  return ring.get(target, Deadline::never(), nonblocking);
}

TEST(Ring, CapacityIsRoundedToAPowerOfTwoWithinLimits) {
  EXPECT_EQ(Ring::create(0, 1).capacity(), mp::detail::kMinRingCapacity);
  EXPECT_EQ(Ring::create(0, 5000).capacity(), 8192u);
  EXPECT_EQ(Ring::create(0).capacity(), mp::detail::kDefaultRingCapacity);
  EXPECT_EQ(Ring::create(0, 8192).stream_threshold(), 1024u);
}

TEST(Ring, ItemsComeOutInOrderAcrossTheWrap) {
  Ring ring = Ring::create(0, 4096);
  std::vector<std::byte> out;
  for (std::uint32_t i = 0; i < 2000; ++i) {
    auto item = pattern(i % 300, i);  // 0..299 bytes: wraps at every alignment
    ASSERT_EQ(put(ring, item), RingStatus::ok);
    ASSERT_EQ(ring.size(), 1u);
    ASSERT_EQ(get(ring, out), RingStatus::ok);
    ASSERT_EQ(out, item) << "item " << i;
  }
  EXPECT_EQ(ring.size(), 0u);
  EXPECT_EQ(get(ring, out, true), RingStatus::would_block);
}

TEST(Ring, FixedTargetTakesAnItemOfExactlyItsSize) {
  Ring ring = Ring::create(0, 4096);
  const long value = 0x1122334455667788;
  std::vector<std::byte> as_bytes(sizeof value);
  std::memcpy(as_bytes.data(), &value, sizeof value);
  ASSERT_EQ(put(ring, as_bytes), RingStatus::ok);
  ASSERT_EQ(put(ring, pattern(3, 1)), RingStatus::ok);
  long got = 0;
  std::vector<std::byte> buffer;
  GetTarget target{reinterpret_cast<std::byte*>(&got), sizeof got, &buffer, false};
  ASSERT_EQ(ring.get(target, Deadline::never(), true), RingStatus::ok);
  EXPECT_TRUE(target.got_fixed);
  EXPECT_EQ(got, value);
  ASSERT_EQ(ring.get(target, Deadline::never(), true), RingStatus::ok);
  EXPECT_FALSE(target.got_fixed);  // wrong size: goes to the buffer for the codec to judge
  EXPECT_EQ(buffer, pattern(3, 1));
}

TEST(Ring, MaxsizeCountsItems) {
  Ring ring = Ring::create(3, 4096);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(put(ring, pattern(1, i), true), RingStatus::ok);
  EXPECT_EQ(put(ring, pattern(1, 9), true), RingStatus::would_block);
  EXPECT_EQ(ring.put(pattern(1, 9), Deadline::after(std::chrono::milliseconds(1)), false),
            RingStatus::would_block);
  std::vector<std::byte> out;
  ASSERT_EQ(get(ring, out), RingStatus::ok);
  EXPECT_EQ(put(ring, pattern(1, 9), true), RingStatus::ok);
  EXPECT_EQ(ring.size(), 3u);
}

TEST(Ring, BytesBoundAnUnlimitedRing) {
  Ring ring = Ring::create(0, 4096);
  int fitted = 0;
  while (put(ring, pattern(200, fitted), true) == RingStatus::ok) ++fitted;
  EXPECT_EQ(fitted, 4096 / 208);  // an item record: 8-byte header + 200 bytes, 8-aligned
  std::vector<std::byte> out;
  ASSERT_EQ(get(ring, out), RingStatus::ok);
  EXPECT_EQ(out, pattern(200, 0));
  EXPECT_EQ(put(ring, pattern(200, 99), true), RingStatus::ok);
}

TEST(Ring, TimedGetOnEmptyReportsWouldBlock) {
  Ring ring = Ring::create(0, 4096);
  std::vector<std::byte> out;
  GetTarget target{nullptr, 0, &out, false};
  EXPECT_EQ(ring.get(target, Deadline::after(std::chrono::milliseconds(5)), false), RingStatus::would_block);
  EXPECT_EQ(ring.get(target, Deadline::after(std::chrono::milliseconds(-5)), false), RingStatus::would_block);
}

TEST(Ring, ShutdownRefusesPutsAndDrainsGets) {
  Ring ring = Ring::create(0, 4096);
  ASSERT_EQ(put(ring, pattern(10, 1)), RingStatus::ok);
  ring.shutdown();
  EXPECT_TRUE(ring.is_shut_down());
  EXPECT_EQ(put(ring, pattern(10, 2)), RingStatus::shut_down);
  std::vector<std::byte> out;
  EXPECT_EQ(get(ring, out), RingStatus::ok);
  EXPECT_EQ(out, pattern(10, 1));
  EXPECT_EQ(get(ring, out), RingStatus::shut_down);
}

TEST(Ring, TaskDoneCountsAgainstPuts) {
  Ring ring = Ring::create(0, 4096);
  EXPECT_FALSE(ring.task_done());
  ASSERT_EQ(put(ring, pattern(4, 1)), RingStatus::ok);
  ASSERT_EQ(put(ring, pattern(4, 2)), RingStatus::ok);
  EXPECT_EQ(ring.unfinished_tasks(), 2u);
  EXPECT_FALSE(ring.join(Deadline::after(std::chrono::milliseconds(1))));
  EXPECT_TRUE(ring.task_done());
  EXPECT_TRUE(ring.task_done());
  EXPECT_FALSE(ring.task_done());
  EXPECT_TRUE(ring.join(Deadline::never()));
}

// task_done() reads the consumers' copy of write_word (INV11) first; here
// that copy lags the puts (2 of 5: nobody got since), and the count must
// still be exact, and the last task_done() must still wake a joiner.
TEST(RingThreads, TaskDoneIsExactWhileTheConsumersCopyOfThePutsLags) {
  Ring ring = Ring::create(0, 4096);
  ASSERT_EQ(put(ring, pattern(4, 1)), RingStatus::ok);
  ASSERT_EQ(put(ring, pattern(4, 2)), RingStatus::ok);
  std::vector<std::byte> out;
  ASSERT_EQ(get(ring, out), RingStatus::ok);  // the consumers' copy: 2 puts
  for (std::uint32_t i = 3; i <= 5; ++i) ASSERT_EQ(put(ring, pattern(4, i)), RingStatus::ok);
  ASSERT_EQ(ring.header()->known_write_word.load() >> 32, 2u);  // its count of puts
  std::atomic<bool> joined{false};
  std::thread joiner([&] { joined = ring.join(Deadline::after(std::chrono::seconds(60))); });
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(ring.task_done()) << i;
  EXPECT_FALSE(ring.task_done());  // a sixth would exceed the 5 puts
  joiner.join();
  EXPECT_TRUE(joined);
  EXPECT_EQ(ring.unfinished_tasks(), 0u);
}

// The chase rule (ring_internal.hpp, kChaseBackoffPauses): a get whose
// first look at write_word finds the producers more than one record ahead
// raises consumer_chasing (the next look waits a little first); a first look
// that finds one record or none lowers it, so a round trip's reply is looked
// for at once. Gets that take what the consumers' copy already shows do not
// look, and leave it as it is.
TEST(Ring, ChaseRuleFollowsWhatTheFirstLookFinds) {
  Ring ring = Ring::create(0, 4096);
  ASSERT_EQ(ring.header()->chase, 1u);
  const auto chasing = [&] { return ring.header()->consumer_chasing.load(); };
  std::vector<std::byte> out;
  ASSERT_EQ(chasing(), 0u);
  for (std::uint32_t i = 0; i < 3; ++i) ASSERT_EQ(put(ring, pattern(8, i)), RingStatus::ok);
  ASSERT_EQ(get(ring, out), RingStatus::ok);  // looks: three records ahead
  EXPECT_EQ(chasing(), 1u);
  ASSERT_EQ(get(ring, out), RingStatus::ok);  // the consumers' copy shows two more: no look
  ASSERT_EQ(get(ring, out), RingStatus::ok);
  EXPECT_EQ(chasing(), 1u);
  EXPECT_EQ(get(ring, out, true), RingStatus::would_block);  // looks: nothing
  EXPECT_EQ(chasing(), 0u);
  ASSERT_EQ(put(ring, pattern(8, 9)), RingStatus::ok);
  ASSERT_EQ(get(ring, out), RingStatus::ok);  // looks: one record, a reply
  EXPECT_EQ(chasing(), 0u);
  EXPECT_EQ(out, pattern(8, 9));
}

// Where producers soon wait for the consumers (a maxsize below
// kChaseMinMaxsize, or the Pool's closed loop) a consumer never waits before
// it looks: the chase rule is off.
TEST(Ring, ChaseRuleIsOffWhereProducersWaitForTheConsumers) {
  for (Ring ring : {Ring::create(16, 4096), Ring::create(0, 4096, mp::detail::RingPacing::closed_loop)}) {
    EXPECT_EQ(ring.header()->chase, 0u);
    std::vector<std::byte> out;
    for (std::uint32_t i = 0; i < 3; ++i) ASSERT_EQ(put(ring, pattern(8, i)), RingStatus::ok);
    ASSERT_EQ(get(ring, out), RingStatus::ok);  // looks: three records ahead
    EXPECT_EQ(ring.header()->consumer_chasing.load(), 0u);
  }
  EXPECT_EQ(Ring::create(mp::detail::kChaseMinMaxsize, 4096).header()->chase, 1u);
}

// put(lead, body) writes one record from two spans; a prefixed target takes
// it straight into the caller's object when the lead and the size match,
// and otherwise leaves all of it in the buffer for the codec to judge.
TEST(Ring, GatheredPutAndPrefixedTargetCopyOncePerSide) {
  Ring ring = Ring::create(0, 4096);
  const std::uint64_t count = 100;
  const auto lead = std::as_bytes(std::span<const std::uint64_t, 1>(&count, 1));
  const auto body = pattern(100, 7);
  for (int round = 0; round < 60; ++round) {  // 60 x 128 bytes: across the wrap of 4096
    ASSERT_EQ(ring.put(lead, body, Deadline::never(), false), RingStatus::ok);
    std::vector<std::byte> object(100), buffer;
    GetTarget target{object.data(), object.size(), &buffer, false, true, count};
    ASSERT_EQ(ring.get(target, Deadline::never(), true), RingStatus::ok);
    ASSERT_TRUE(target.got_fixed) << round;
    ASSERT_EQ(object, body) << round;
  }
  // Same size, another lead (a record of some other shape): to the buffer.
  ASSERT_EQ(ring.put(lead, body, Deadline::never(), false), RingStatus::ok);
  std::vector<std::byte> object(100), buffer;
  GetTarget other{object.data(), object.size(), &buffer, false, true, count + 1};
  ASSERT_EQ(ring.get(other, Deadline::never(), true), RingStatus::ok);
  EXPECT_FALSE(other.got_fixed);
  ASSERT_EQ(buffer.size(), 108u);
  EXPECT_TRUE(std::equal(body.begin(), body.end(), buffer.begin() + 8));
  // Another size: to the buffer.
  ASSERT_EQ(ring.put(lead, pattern(40, 3), Deadline::never(), false), RingStatus::ok);
  GetTarget smaller{object.data(), object.size(), &buffer, false, true, count};
  ASSERT_EQ(ring.get(smaller, Deadline::never(), true), RingStatus::ok);
  EXPECT_FALSE(smaller.got_fixed);
  EXPECT_EQ(buffer.size(), 48u);
  // Above the stream threshold (512 bytes here) the two spans are streamed.
  const auto big = pattern(3000, 9);
  ASSERT_TRUE(ring.streams(8 + big.size()));
  ASSERT_EQ(ring.put(lead, big, Deadline::never(), false), RingStatus::ok);
  ASSERT_EQ(get(ring, buffer), RingStatus::ok);
  ASSERT_EQ(buffer.size(), 3008u);
  EXPECT_TRUE(std::equal(big.begin(), big.end(), buffer.begin() + 8));
  // A streamed item whose whole payload has the prefixed target's size (the
  // target leaves the 8-byte lead out) is not copied into the object: its
  // lead would land there. It goes to the buffer.
  std::vector<std::byte> sized(3008);
  ASSERT_EQ(ring.put(lead, big, Deadline::never(), false), RingStatus::ok);
  GetTarget prefixed{sized.data(), sized.size(), &buffer, false, true, count};
  ASSERT_EQ(ring.get(prefixed, Deadline::never(), false), RingStatus::ok);
  EXPECT_FALSE(prefixed.got_fixed);
  ASSERT_EQ(buffer.size(), 3008u);
  EXPECT_TRUE(std::equal(big.begin(), big.end(), buffer.begin() + 8));
}

TEST(Ring, NonBlockingGetDoesNotStartAStreamStillBeingWritten) {
  Ring ring = Ring::create(0, 4096);  // streams records above 512 bytes
  auto big = pattern(100'000, 7);
  std::atomic<bool> put_returned{false};
  std::thread producer([&] {
    EXPECT_EQ(put(ring, big), RingStatus::ok);
    put_returned = true;
  });
  // The producer fills the ring and waits; a stream is in the ring but not complete.
  while (ring.header()->producer_streaming.load() == 0) std::this_thread::yield();
  std::vector<std::byte> out;
  EXPECT_EQ(ring.size(), 0u);
  EXPECT_EQ(get(ring, out, true), RingStatus::would_block);
  ASSERT_EQ(get(ring, out), RingStatus::ok);
  producer.join();
  EXPECT_TRUE(put_returned);
  EXPECT_EQ(out, big);
}

// ---- thread world: the protocol under ThreadSanitizer ----------------------

TEST(RingThreads, ManyProducersManyConsumersLoseNothingAndKeepEachProducersOrder) {
  Ring ring = Ring::create(0, 8192);  // small: lots of wrapping and waiting; streams above 1 KiB
  constexpr int kProducers = 3, kConsumers = 3, kPerProducer = 3000;
  std::vector<std::thread> threads;
  for (int p = 0; p < kProducers; ++p)
    threads.emplace_back([&, p] {
      for (int i = 0; i < kPerProducer; ++i) {
        // [producer, sequence] then filler; every 500th item is streamed.
        std::size_t size = (i % 500 == 0) ? 20'000 : 8 + static_cast<std::size_t>(i % 64);
        auto item = pattern(size, static_cast<std::uint32_t>(p * 100000 + i));
        std::uint32_t tag[2] = {static_cast<std::uint32_t>(p), static_cast<std::uint32_t>(i)};
        std::memcpy(item.data(), tag, sizeof tag);
        ASSERT_EQ(put(ring, item), RingStatus::ok);
      }
    });
  std::vector<std::vector<std::pair<int, int>>> seen(kConsumers);
  std::atomic<int> total{0};
  for (int c = 0; c < kConsumers; ++c)
    threads.emplace_back([&, c] {
      std::vector<std::byte> out;
      while (total.load() < kProducers * kPerProducer) {
        GetTarget target{nullptr, 0, &out, false};
        RingStatus status = ring.get(target, Deadline::after(std::chrono::milliseconds(20)), false);
        if (status == RingStatus::would_block) continue;
        ASSERT_EQ(status, RingStatus::ok);
        std::uint32_t tag[2];
        std::memcpy(tag, out.data(), sizeof tag);
        auto expected = pattern(out.size(), tag[0] * 100000 + tag[1]);
        std::memcpy(expected.data(), tag, sizeof tag);
        ASSERT_EQ(out, expected);
        seen[c].emplace_back(tag[0], tag[1]);
        total.fetch_add(1);
      }
    });
  for (auto& t : threads) t.join();
  std::vector<std::vector<int>> count(kProducers, std::vector<int>(kPerProducer, 0));
  for (const auto& list : seen) {
    std::vector<int> last(kProducers, -1);
    for (auto [p, i] : list) {
      EXPECT_GT(i, last[p]) << "consumer saw producer " << p << " out of order";
      last[p] = i;
      ++count[p][i];
    }
  }
  for (int p = 0; p < kProducers; ++p)
    for (int i = 0; i < kPerProducer; ++i) ASSERT_EQ(count[p][i], 1) << "producer " << p << " item " << i;
  EXPECT_EQ(ring.size(), 0u);
}

// INV9: timed readers that give a stream up half-way (their deadline passes
// while the producer still writes it) make the producer send it again; every
// item still arrives exactly once and in order. Every fourth get is untimed,
// so the run always progresses.
TEST(RingThreads, ReadersThatGiveUpAStreamHalfWayLoseAndDuplicateNothing) {
  Ring ring = Ring::create(0, 4096);  // streams above 512 bytes; 20 KB items need a reader to free room
  constexpr int kItems = 60;
  std::thread producer([&] {
    for (int i = 0; i < kItems; ++i) {
      auto item = pattern(20'000, static_cast<std::uint32_t>(i));
      std::memcpy(item.data(), &i, sizeof i);
      ASSERT_EQ(put(ring, item), RingStatus::ok);
    }
  });
  std::vector<std::byte> out;
  int expected = 0, gave_up = 0;
  for (int attempt = 0; expected < kItems; ++attempt) {
    GetTarget target{nullptr, 0, &out, false};
    const Deadline deadline =
        attempt % 4 == 3 ? Deadline::never() : Deadline::after(std::chrono::microseconds(50));
    const RingStatus status = ring.get(target, deadline, false);
    if (status == RingStatus::would_block) {
      ++gave_up;
      continue;
    }
    ASSERT_EQ(status, RingStatus::ok);
    int i = -1;
    std::memcpy(&i, out.data(), sizeof i);
    ASSERT_EQ(i, expected);
    auto want = pattern(20'000, static_cast<std::uint32_t>(i));
    std::memcpy(want.data(), &i, sizeof i);
    ASSERT_EQ(out, want);
    ++expected;
  }
  producer.join();
  EXPECT_EQ(ring.size(), 0u);
  std::vector<std::byte> rest;
  EXPECT_EQ(get(ring, rest, true), RingStatus::would_block);
  std::printf("timed gets that gave up: %d\n", gave_up);
}

TEST(RingThreads, ShutdownWakesBlockedGettersAndPutters) {
  Ring empty = Ring::create(0, 4096);
  Ring full = Ring::create(1, 4096);
  ASSERT_EQ(put(full, pattern(4, 1)), RingStatus::ok);
  std::thread getter([&] {
    std::vector<std::byte> out;
    EXPECT_EQ(get(empty, out), RingStatus::shut_down);
  });
  std::thread putter([&] { EXPECT_EQ(put(full, pattern(4, 2)), RingStatus::shut_down); });
  while (empty.header()->not_empty.sleepers.load() == 0 || full.header()->not_full.sleepers.load() == 0)
    std::this_thread::yield();
  empty.shutdown();
  full.shutdown();
  getter.join();
  putter.join();
}

TEST(RingThreads, ShutdownAbortsAStreamBeingWritten) {
  Ring ring = Ring::create(0, 4096);
  std::thread producer([&] { EXPECT_EQ(put(ring, pattern(50'000, 1)), RingStatus::shut_down); });
  while (ring.header()->producer_streaming.load() == 0) std::this_thread::yield();
  ring.shutdown();
  producer.join();
  std::vector<std::byte> out;
  EXPECT_EQ(get(ring, out), RingStatus::shut_down);  // the half stream is dropped, nothing else is there
}

TEST(RingThreads, JoinReturnsOnceEveryItemIsDone) {
  Ring ring = Ring::create(0, 4096);
  constexpr int kItems = 500;
  std::atomic<int> done{0};
  std::thread consumer([&] {
    std::vector<std::byte> out;
    for (int i = 0; i < kItems; ++i) {
      ASSERT_EQ(get(ring, out), RingStatus::ok);
      done.fetch_add(1);
      ASSERT_TRUE(ring.task_done());
    }
  });
  for (int i = 0; i < kItems; ++i) ASSERT_EQ(put(ring, pattern(16, i)), RingStatus::ok);
  EXPECT_TRUE(ring.join(Deadline::never()));
  EXPECT_EQ(done.load(), kItems);
  consumer.join();
  EXPECT_FALSE(ring.task_done());
}

// ---- process world: repair after SIGKILL -----------------------------------

using mp::test::fork_child;
using mp::test::kill_child;

TEST(RingCrash, ProducerKilledMidStreamLeavesAnAbortAndTheRingGoesOn) {
  Ring ring = Ring::create(0, 4096);
  const pid_t pid = fork_child([&] {  // starts a stream nobody reads yet, and blocks on the full ring
    auto big = pattern(1 << 20, 3);
    (void)ring.put(big, Deadline::never(), false);
  });
  while (ring.header()->producer_streaming.load() == 0 ||
         ring.header()->not_full.sleepers.load() == 0)  // mid-stream, waiting for room
    std::this_thread::yield();
  kill_child(pid);
  std::vector<std::byte> out;
  // The getter reads the half stream and drops it at the ABORT that whoever
  // takes the dead producer lock first (the getter's liveness check or our
  // put) publishes; our put then waits for room and lands after it.
  std::thread getter([&] { EXPECT_EQ(get(ring, out), RingStatus::ok); });
  ASSERT_EQ(put(ring, pattern(33, 4)), RingStatus::ok);
  getter.join();
  EXPECT_EQ(ring.producer_repairs(), 1u);
  EXPECT_EQ(out, pattern(33, 4));
  EXPECT_EQ(ring.size(), 0u);
  EXPECT_EQ(get(ring, out, true), RingStatus::would_block);
}

TEST(RingCrash, ReaderSeesItsStreamAbortedWhenTheProducerDies) {
  Ring ring = Ring::create(0, 4096);
  const pid_t pid = fork_child([&] {
    auto big = pattern(8 << 20, 3);
    (void)ring.put(big, Deadline::never(), false);
  });
  std::atomic<bool> finished{false};
  RingStatus status{};
  std::vector<std::byte> out;
  std::thread reader([&] {
    status = get(ring, out);
    finished = true;
  });
  // The reader is mid-stream for the ~2k chunk hand-offs of the 8 MiB item; if
  // it read the whole stream before we looked, the scenario did not happen
  // this run: say so instead of waiting for it forever.
  while (ring.header()->consumer_streaming.load() == 0 && !finished.load()) std::this_thread::yield();
  kill_child(pid);  // the reader notices within its liveness poll and repairs
  if (finished.load()) {
    reader.join();
    GTEST_SKIP() << "the reader got the whole stream before its producer could be killed";
  }
  ASSERT_EQ(put(ring, pattern(5, 5)), RingStatus::ok);
  reader.join();
  EXPECT_EQ(status, RingStatus::ok);
  EXPECT_EQ(out, pattern(5, 5));  // the streamed item never arrives; the next one does
  EXPECT_EQ(ring.producer_repairs(), 1u);
}

TEST(RingCrash, ConsumerKilledMidStreamLosesOnlyThatItem) {
  Ring ring = Ring::create(0, 4096);
  const pid_t pid = fork_child([&] {  // reads forever
    std::vector<std::byte> out;
    for (;;) (void)get(ring, out);
  });
  std::atomic<bool> producer_done{false};
  std::thread producer([&] {
    EXPECT_EQ(put(ring, pattern(8 << 20, 1), false), RingStatus::ok);
    EXPECT_EQ(put(ring, pattern(77, 2), false), RingStatus::ok);
    producer_done.store(true);
  });
  // The child is mid-stream for the ~2k chunk hand-offs of the 8 MiB item. If
  // the scheduler lets it read the whole stream before we look, the scenario
  // did not happen this run: say so instead of waiting for it forever.
  while (ring.header()->consumer_streaming.load() == 0 && !producer_done.load()) std::this_thread::yield();
  if (ring.header()->consumer_streaming.load() == 0) {
    kill_child(pid);
    producer.join();
    GTEST_SKIP() << "the consumer read the whole stream before it could be killed mid-stream";
  }
  kill_child(pid);
  std::vector<std::byte> out;
  ASSERT_EQ(get(ring, out), RingStatus::ok);  // frees the orphaned rest of the stream (INV6)
  EXPECT_EQ(out, pattern(77, 2));
  producer.join();
  EXPECT_EQ(ring.size(), 0u);
  EXPECT_EQ(ring.consumer_repairs(), 1u);
}

}  // namespace
