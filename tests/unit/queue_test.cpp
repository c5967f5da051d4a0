// mp::Queue and mp::SimpleQueue: every member and error, what CPython's
// test_multiprocessing asserts about queues, and many processes at once.
#include "mp/queue.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "support/child.hpp"

namespace {

using namespace std::chrono_literals;
using mp::test::fork_child;
using mp::test::SharedArray;
using mp::test::wait_child;

struct Job {
  std::string name;
  std::vector<double> weights;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(name, weights);
  }
  bool operator==(const Job&) const = default;
};

struct Pod {
  int a;
  double b;
  char c[5];
};

TEST(Queue, RoundTripsValuesOfManyTypes) {
  mp::Queue<long> longs;
  longs.put(-42);
  longs.put(1L << 40);
  EXPECT_EQ(longs.get(), -42);
  EXPECT_EQ(longs.get(), 1L << 40);

  mp::Queue<std::string> strings;
  strings.put("");
  strings.put(std::string(100'000, 'x'));  // above 1/8 of a small ring? no: default ring, a single record
  EXPECT_EQ(strings.get(), "");
  EXPECT_EQ(strings.get(), std::string(100'000, 'x'));

  mp::Queue<Job> jobs;
  jobs.put(Job{"j", {1.5, 2.5}});
  EXPECT_EQ(jobs.get(), (Job{"j", {1.5, 2.5}}));

  mp::Queue<Pod> pods;
  pods.put(Pod{7, 0.5, "abcd"});
  Pod p = pods.get();
  EXPECT_EQ(p.a, 7);
  EXPECT_EQ(p.b, 0.5);
  EXPECT_STREQ(p.c, "abcd");

  mp::Queue<std::optional<std::vector<int>>> optionals;
  optionals.put(std::vector<int>{1, 2, 3});
  optionals.put(std::nullopt);
  EXPECT_EQ(optionals.get(), (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(optionals.get(), std::nullopt);
}

// A codec of the user's own for a vector of bitwise elements: the Queue must
// use it (encode and decode run), never its straight copy, which only the
// library's own vector and string codecs allow (codec<T>::contiguous).
struct Reading {
  std::int32_t value;
};
int g_reading_encodes = 0;
int g_reading_decodes = 0;

}  // namespace

template <>
struct mp::codec<std::vector<Reading>> {
  static std::size_t min_size() noexcept { return 8; }
  static void encode(Writer& writer, const std::vector<Reading>& readings) {
    ++g_reading_encodes;
    writer.length(readings.size());
    for (const Reading& r : readings) mp::codec<std::int32_t>::encode(writer, r.value * 2);
  }
  static void decode(Reader& reader, std::vector<Reading>& readings) {
    ++g_reading_decodes;
    const std::size_t n = reader.length(4, 4);
    readings.resize(n);
    for (Reading& r : readings) {
      std::int32_t doubled = 0;
      mp::codec<std::int32_t>::decode(reader, doubled);
      r.value = doubled / 2;
    }
  }
  static void signature(std::string& out) { out += "readings"; }
};

namespace {

TEST(Queue, AUsersOwnCodecForAVectorIsUsedNotBypassed) {
  mp::Queue<std::vector<Reading>> q;
  for (int round = 0; round < 3; ++round) q.put(std::vector<Reading>{{1}, {2}, {round}});
  for (int round = 0; round < 3; ++round) {
    const std::vector<Reading> got = q.get();
    ASSERT_EQ(got.size(), 3u);
    EXPECT_EQ(got[2].value, round);
  }
  EXPECT_EQ(g_reading_encodes, 3);
  EXPECT_EQ(g_reading_decodes, 3);
}

// Vectors and strings of bitwise elements go straight between the object
// and the ring (detail::contiguous_item): runs of one size (taken into an
// object sized beforehand), changing sizes (through the buffer), empty ones,
// streamed ones in between, and items another process put, all intact and
// in order.
TEST(Queue, VectorsAndStringsKeepTheirBytesWhateverTheirSizes) {
  std::vector<std::size_t> sizes;
  for (int i = 0; i < 50; ++i) sizes.push_back(4096);
  for (std::size_t n : {0, 0, 1, 7, 7, 7, 4096, 300'000, 4096, 4096, 0, 12, 12, 300'008, 300'008, 300'000})
    sizes.push_back(n);
  for (int i = 0; i < 20; ++i) sizes.push_back(static_cast<std::size_t>(i % 3) * 1000);
  const auto bytes_of = [](std::size_t n, std::size_t seed) {
    std::vector<std::byte> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>((i * 31 + seed * 7) & 0xff);
    return v;
  };
  mp::Queue<std::vector<std::byte>> q;
  for (std::size_t k = 0; k < sizes.size(); ++k) q.put(bytes_of(sizes[k], k));
  for (std::size_t k = 0; k < sizes.size(); ++k) ASSERT_EQ(q.get(), bytes_of(sizes[k], k)) << k;
  for (std::size_t k = 0; k < sizes.size(); ++k) {  // one at a time: the ring is empty at each get
    q.put(bytes_of(sizes[k], k + 1));
    ASSERT_EQ(q.get(), bytes_of(sizes[k], k + 1)) << k;
  }

  mp::Queue<std::string> strings;
  const auto text = [](std::size_t n, char c) { return std::string(n, c); };
  pid_t child = fork_child([&] {
    for (int i = 0; i < 200; ++i)
      strings.put(text(static_cast<std::size_t>(i / 50) * 100, static_cast<char>('a' + i % 26)));
    return 0;
  });
  for (int i = 0; i < 200; ++i)
    ASSERT_EQ(strings.get(), text(static_cast<std::size_t>(i / 50) * 100, static_cast<char>('a' + i % 26)))
        << i;
  EXPECT_EQ(wait_child(child), 0);

  mp::Queue<std::vector<int>> ints;
  for (int i = 0; i < 10; ++i) ints.put(std::vector<int>(5, i));
  ints.put(std::vector<int>(6, 9));
  for (int i = 0; i < 10; ++i) ASSERT_EQ(ints.get(), std::vector<int>(5, i));
  EXPECT_EQ(ints.get(), std::vector<int>(6, 9));
  EXPECT_FALSE(ints.try_get().has_value());
}

TEST(Queue, QsizeEmptyAndFullFollowPutsAndGets) {
  mp::Queue<int> q(3);
  EXPECT_EQ(q.maxsize(), 3u);
  EXPECT_TRUE(q.empty());
  EXPECT_FALSE(q.full());
  std::vector<std::size_t> sizes;
  for (int i = 0; i < 3; ++i) {
    q.put(i);
    sizes.push_back(q.qsize());
  }
  EXPECT_TRUE(q.full());
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(q.get(), i);
    sizes.push_back(q.qsize());
  }
  EXPECT_EQ(sizes, (std::vector<std::size_t>{1, 2, 3, 2, 1, 0}));
  EXPECT_TRUE(q.empty());
}

TEST(Queue, UnlimitedQueueIsNeverFull) {
  mp::Queue<int> q;
  for (int i = 0; i < 10'000; ++i) q.put_nowait(i);
  EXPECT_FALSE(q.full());
  EXPECT_EQ(q.qsize(), 10'000u);
}

TEST(Queue, NowaitAndTimeoutsRaiseFullAndEmpty) {
  mp::Queue<int> q(1);
  EXPECT_THROW(q.get_nowait(), mp::Empty);
  EXPECT_THROW(q.get(1ms), mp::Empty);
  EXPECT_THROW(q.get(-5s), mp::Empty);  // negative: do not wait
  EXPECT_THROW(q.get(0s), mp::Empty);
  q.put_nowait(1);
  EXPECT_THROW(q.put_nowait(2), mp::Full);
  EXPECT_THROW(q.put(2, 1ms), mp::Full);
  EXPECT_THROW(q.put(2, -1s), mp::Full);
  EXPECT_EQ(q.get(0s), 1);  // present: a zero timeout still takes it
  q.put(3, 0s);
  EXPECT_EQ(q.get_nowait(), 3);
  try {
    q.put_nowait(4);
    q.put_nowait(5);
    FAIL() << "expected Full";
  } catch (const mp::Full& e) {
    EXPECT_NE(std::string(e.what()).find("maxsize 1"), std::string::npos) << e.what();
  }
}

TEST(Queue, TimedGetSucceedsWhenAnotherProcessPutsInTime) {
  mp::Queue<int> q;
  pid_t child = fork_child([&] {
    std::this_thread::sleep_for(20ms);
    q.put(5);
  });
  EXPECT_EQ(q.get(30s), 5);
  EXPECT_EQ(wait_child(child), 0);
}

TEST(Queue, TryPutAndTryGetNeverThrowForFullEmptyOrShutDown) {
  mp::Queue<int> q(2);
  EXPECT_EQ(q.try_get(), std::nullopt);
  EXPECT_TRUE(q.try_put(1));
  EXPECT_TRUE(q.try_put(2));
  EXPECT_FALSE(q.try_put(3));
  EXPECT_EQ(q.try_get(), 1);
  q.shutdown();
  EXPECT_FALSE(q.try_put(4));
  EXPECT_EQ(q.try_get(), 2);
  EXPECT_EQ(q.try_get(), std::nullopt);
}

TEST(Queue, CopiesShareOneQueue) {
  mp::Queue<std::string> a;
  mp::Queue<std::string> b = a;
  a.put("x");
  EXPECT_EQ(b.qsize(), 1u);
  EXPECT_EQ(b.get(), "x");
}

TEST(Queue, CloseStopsEveryHandleInThisProcessOnly) {
  mp::Queue<int> q;
  mp::Queue<int> copy = q;
  q.put(1);
  q.put(2);
  pid_t reader = fork_child([q]() mutable { return q.get() == 1 ? 0 : 1; });  // forked before close
  ASSERT_EQ(wait_child(reader), 0);
  q.close();
  q.close();  // twice is fine
  EXPECT_TRUE(copy.closed());
  EXPECT_THROW(copy.put(3), mp::ValueError);
  EXPECT_THROW(q.put_nowait(3), mp::ValueError);
  EXPECT_THROW((void)q.try_put(3), mp::ValueError);
  EXPECT_THROW(q.get(), mp::ValueError);  // as Python's Queue.get after close()
  EXPECT_EQ(q.qsize(), 1u);
  // A child forked after close() has its own, open, handles: it can still use the queue.
  pid_t child = fork_child([q]() mutable {
    if (q.closed()) return 1;
    if (q.get() != 2) return 2;
    q.put(7);
    return 0;
  });
  ASSERT_EQ(wait_child(child), 0);
  EXPECT_EQ(q.qsize(), 1u);
}

TEST(Queue, ACloseInAChildLeavesTheParentOpen) {
  mp::Queue<int> q;
  pid_t child = fork_child([q]() mutable {
    q.put(1);
    q.close();
  });
  ASSERT_EQ(wait_child(child), 0);
  EXPECT_FALSE(q.closed());
  EXPECT_EQ(q.get(), 1);
  q.put(2);
  EXPECT_EQ(q.get(), 2);
}

TEST(Queue, ItemsPutBeforeForkAndByTheChildArriveInOrder) {
  mp::Queue<int> q;
  for (int i = 0; i < 5; ++i) q.put(i);
  pid_t child = fork_child([q]() mutable {
    for (int i = 5; i < 10; ++i) q.put(i);
  });
  ASSERT_EQ(wait_child(child), 0);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(q.get(1s), i);
  EXPECT_TRUE(q.empty());
}

TEST(Queue, ShutdownRefusesPutsDrainsThenRaises) {
  mp::Queue<int> q;
  q.put(1);
  q.put(2);
  q.shutdown();
  EXPECT_TRUE(q.is_shutdown());
  EXPECT_THROW(q.put(3), mp::ShutDown);
  EXPECT_THROW(q.put_nowait(3), mp::ShutDown);
  EXPECT_EQ(q.get(), 1);
  EXPECT_EQ(q.get_nowait(), 2);
  EXPECT_THROW(q.get(), mp::ShutDown);
  EXPECT_THROW(q.get_nowait(), mp::ShutDown);
  EXPECT_THROW(q.get(1s), mp::ShutDown);
}

TEST(Queue, ShutdownWakesGettersAndPuttersBlockedInOtherProcesses) {
  mp::Queue<int> empty;
  mp::Queue<int> full(1);
  full.put(0);
  SharedArray<std::atomic<int>> started(1);
  pid_t getter = fork_child([&]() mutable {
    started[0].fetch_add(1);
    try {
      (void)empty.get();
    } catch (const mp::ShutDown&) {
      return 0;
    }
    return 1;
  });
  pid_t putter = fork_child([&]() mutable {
    started[0].fetch_add(1);
    try {
      full.put(1);
    } catch (const mp::ShutDown&) {
      return 0;
    }
    return 1;
  });
  while (started[0].load() < 2) std::this_thread::yield();
  std::this_thread::sleep_for(20ms);  // let them block (the test passes either way)
  empty.shutdown();
  full.shutdown();
  EXPECT_EQ(wait_child(getter), 0);
  EXPECT_EQ(wait_child(putter), 0);
}

TEST(Queue, ABlockedPutProceedsWhenAnotherProcessGets) {
  mp::Queue<int> q(1);
  q.put(1);
  pid_t child = fork_child([q]() mutable {
    std::this_thread::sleep_for(10ms);
    return q.get() == 1 ? 0 : 1;
  });
  q.put(2);  // blocks until the child took 1
  EXPECT_EQ(wait_child(child), 0);
  EXPECT_EQ(q.get(), 2);
}

TEST(Queue, RingBytesOptionIsCheckedAndUsed) {
  EXPECT_THROW(mp::Queue<int>(0, mp::QueueOptions{std::size_t{4} << 30}), mp::ValueError);
  mp::Queue<std::string> small(0, mp::QueueOptions{4096});
  std::string big(300'000, 'q');  // streamed through 4 KiB
  pid_t child = fork_child([small]() mutable { return small.get() == std::string(300'000, 'q') ? 0 : 1; });
  small.put(big);
  EXPECT_EQ(wait_child(child), 0);
}

// 4 producer processes x 25 000 items, 3 consumer processes: none lost, none
// duplicated, each producer's items in order as every consumer saw them.
TEST(Queue, ManyProducersAndConsumersMoveHundredThousandItems) {
  constexpr int kProducers = 4, kConsumers = 3, kPerProducer = 25'000;
  constexpr int kTotal = kProducers * kPerProducer;
  mp::Queue<std::uint64_t> q(1000);
  SharedArray<std::atomic<std::uint32_t>> got(kTotal);  // how many times each item was got
  SharedArray<std::atomic<std::uint32_t>> disorder(1);
  std::vector<pid_t> children;
  for (int c = 0; c < kConsumers; ++c)
    children.push_back(fork_child([&]() mutable {
      std::vector<std::int64_t> last(kProducers, -1);
      for (;;) {
        std::uint64_t item = q.get();
        if (item == ~std::uint64_t{0}) return 0;
        const auto producer = static_cast<int>(item >> 32);
        const auto sequence = static_cast<std::int64_t>(item & 0xffffffff);
        if (sequence <= last[producer]) disorder[0].fetch_add(1);
        last[producer] = sequence;
        got[producer * kPerProducer + sequence].fetch_add(1);
      }
    }));
  std::vector<pid_t> producers;
  for (int p = 0; p < kProducers; ++p)
    producers.push_back(fork_child([&, p]() mutable {
      for (std::uint64_t i = 0; i < kPerProducer; ++i) q.put((std::uint64_t(p) << 32) | i);
    }));
  for (pid_t pid : producers) EXPECT_EQ(wait_child(pid), 0);
  for (int c = 0; c < kConsumers; ++c) q.put(~std::uint64_t{0});
  for (pid_t pid : children) EXPECT_EQ(wait_child(pid), 0);
  EXPECT_EQ(disorder[0].load(), 0u);
  int missing = 0, duplicated = 0;
  for (int i = 0; i < kTotal; ++i) {
    missing += got[i].load() == 0;
    duplicated += got[i].load() > 1;
  }
  EXPECT_EQ(missing, 0);
  EXPECT_EQ(duplicated, 0);
  EXPECT_TRUE(q.empty());
}

// A 256 MiB item goes through a queue whose memory is given back afterwards.
TEST(Queue, A256MiBItemRoundTripsAndItsMemoryIsGivenBack) {
  constexpr std::size_t kBytes = std::size_t{256} << 20;
  mp::Queue<std::vector<std::uint8_t>> q;
  pid_t child = fork_child([q]() mutable {
    std::vector<std::uint8_t> big(kBytes);
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<std::uint8_t>((i * 131) ^ (i >> 13));
    q.put(big);
    q.put({1, 2, 3});
  });
  std::vector<std::uint8_t> got = q.get();
  ASSERT_EQ(got.size(), kBytes);
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < got.size(); ++i)
    wrong += got[i] != static_cast<std::uint8_t>((i * 131) ^ (i >> 13));
  EXPECT_EQ(wrong, 0u);
  EXPECT_EQ(q.get(), (std::vector<std::uint8_t>{1, 2, 3}));
  EXPECT_EQ(wait_child(child), 0);
  // The memory a drained queue keeps is small, whatever went through it.
  EXPECT_LE(mp::detail::QueueAccess::ring(q).resident_bytes(),
            mp::detail::kRingDataOffset + mp::detail::kReclaimGranule);
}

TEST(SimpleQueue, PutGetEmptyAndClose) {
  mp::SimpleQueue<std::string> q;
  EXPECT_TRUE(q.empty());
  pid_t child = fork_child([q]() mutable {
    q.put("a");
    q.put("b");
  });
  EXPECT_EQ(q.get(), "a");
  EXPECT_EQ(q.get(), "b");
  EXPECT_EQ(wait_child(child), 0);
  EXPECT_TRUE(q.empty());
  q.close();
  EXPECT_THROW(q.put("c"), mp::ValueError);
  EXPECT_THROW(q.get(), mp::ValueError);
  EXPECT_THROW((void)q.empty(), mp::ValueError);
}

// ---- thread world -----------------------------------------------------------

TEST(QueueThreads, ThreadsShareHandlesAndKeepEachProducersOrder) {
  mp::Queue<std::string> q(16);
  constexpr int kProducers = 3, kPerProducer = 2000;
  std::vector<std::thread> threads;
  for (int p = 0; p < kProducers; ++p)
    threads.emplace_back([q, p]() mutable {
      for (int i = 0; i < kPerProducer; ++i) q.put(std::to_string(p) + ":" + std::to_string(i));
    });
  std::map<int, int> next;
  for (int n = 0; n < kProducers * kPerProducer; ++n) {
    std::string s = q.get();
    int p = std::stoi(s.substr(0, s.find(':')));
    int i = std::stoi(s.substr(s.find(':') + 1));
    ASSERT_EQ(i, next[p]) << s;
    next[p] = i + 1;
  }
  for (auto& t : threads) t.join();
  EXPECT_TRUE(q.empty());
}

TEST(QueueThreads, ShutdownWakesABlockedThread) {
  mp::Queue<int> q;
  std::thread getter([q]() mutable { EXPECT_THROW((void)q.get(), mp::ShutDown); });
  std::this_thread::sleep_for(5ms);
  q.shutdown();
  getter.join();
}

}  // namespace
