// queue_bench: mp::Queue between processes (and Boost.Interprocess
// message_queue for comparison). bench/compare/queue.py runs this with
// --benchmark_format=json next to Python's multiprocessing doing the same work.
//
// Every benchmark forks its peers with mp::Process once per iteration and
// counts the items (or bytes) that crossed; the rate counters are per second
// of wall time.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

#include "mp/mp.hpp"

#if defined(MP_HAVE_BOOST)
#include <boost/interprocess/ipc/message_queue.hpp>
#endif

namespace {

constexpr long kSmallItems = 2'000'000;

// 1 producer process -> 1 consumer (this process), items of type long.
void BM_Queue_SmallItems_1P1C(benchmark::State& state) {
  for (auto _ : state) {
    mp::Queue<long> q;
    mp::Process producer(
        [](mp::Queue<long> out) {
          for (long i = 0; i < kSmallItems; ++i) out.put(i);
        },
        q);
    producer.start();
    long sum = 0;
    for (long i = 0; i < kSmallItems; ++i) sum += q.get();
    producer.join();
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(state.iterations() * kSmallItems);
}
BENCHMARK(BM_Queue_SmallItems_1P1C)->UseRealTime()->Unit(benchmark::kMillisecond)->Iterations(3);

// Fixed-size byte items (std::vector<std::byte>), 1 producer -> 1 consumer.
void BM_Queue_Bytes_1P1C(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  const long count = static_cast<long>((std::size_t{512} << 20) / size);  // 512 MiB per iteration
  for (auto _ : state) {
    mp::Queue<std::vector<std::byte>> q;
    mp::Process producer(
        [size, count](mp::Queue<std::vector<std::byte>> out) {
          std::vector<std::byte> item(size, std::byte{7});
          for (long i = 0; i < count; ++i) out.put(item);
        },
        q);
    producer.start();
    std::size_t total = 0;
    for (long i = 0; i < count; ++i) total += q.get().size();
    producer.join();
    benchmark::DoNotOptimize(total);
  }
  state.SetBytesProcessed(state.iterations() * count * static_cast<long>(size));
  state.SetItemsProcessed(state.iterations() * count);
}
BENCHMARK(BM_Queue_Bytes_1P1C)
    ->Arg(4096)
    ->Arg(1 << 20)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3);

// Ping-pong: a round trip over two queues (request, reply) with an echo child.
void BM_Queue_PingPong(benchmark::State& state) {
  mp::Queue<long> requests, replies;
  mp::Process echo(
      [](mp::Queue<long> in, mp::Queue<long> out) {
        for (long v = in.get(); v >= 0; v = in.get()) out.put(v + 1);
      },
      requests, replies);
  echo.start();
  long v = 0;
  for (auto _ : state) {
    requests.put(v);
    v = replies.get();
  }
  requests.put(-1);
  echo.join();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Queue_PingPong)->UseRealTime()->Unit(benchmark::kMicrosecond)->MinTime(1.0);

// 3 producer processes -> 3 consumer processes, small items.
void BM_Queue_SmallItems_3P3C(benchmark::State& state) {
  constexpr long kPerProducer = 400'000;
  for (auto _ : state) {
    mp::Queue<long> q;
    std::vector<mp::Process> children;
    for (int c = 0; c < 3; ++c)
      children.emplace_back(
          [](mp::Queue<long> in) {
            while (in.get() >= 0) {
            }
          },
          q);
    for (int p = 0; p < 3; ++p)
      children.emplace_back(
          [](mp::Queue<long> out) {
            for (long i = 0; i < kPerProducer; ++i) out.put(i);
          },
          q);
    for (auto& child : children) child.start();
    for (int p = 3; p < 6; ++p) children[static_cast<std::size_t>(p)].join();
    for (int c = 0; c < 3; ++c) q.put(-1);
    for (int c = 0; c < 3; ++c) children[static_cast<std::size_t>(c)].join();
  }
  state.SetItemsProcessed(state.iterations() * 3 * kPerProducer);
}
BENCHMARK(BM_Queue_SmallItems_3P3C)->UseRealTime()->Unit(benchmark::kMillisecond)->Iterations(3);

// JoinableQueue: this process puts N, 2 consumer processes get + task_done, join().
void BM_JoinableQueue_PutGetTaskDoneJoin(benchmark::State& state) {
  constexpr long kItems = 500'000;
  for (auto _ : state) {
    mp::JoinableQueue<long> q;
    std::vector<mp::Process> consumers;
    for (int c = 0; c < 2; ++c)
      consumers.emplace_back(
          [](mp::JoinableQueue<long> in) {
            for (;;) {
              long v = in.get();
              in.task_done();
              if (v < 0) return;
            }
          },
          q);
    for (auto& c : consumers) c.start();
    for (long i = 0; i < kItems; ++i) q.put(i);
    q.join();
    q.put(-1);
    q.put(-1);
    for (auto& c : consumers) c.join();
  }
  state.SetItemsProcessed(state.iterations() * kItems);
}
BENCHMARK(BM_JoinableQueue_PutGetTaskDoneJoin)->UseRealTime()->Unit(benchmark::kMillisecond)->Iterations(3);

#if defined(MP_HAVE_BOOST)
// Boost.Interprocess message_queue, 1 producer process -> 1 consumer, long items.
void BM_BoostMessageQueue_SmallItems_1P1C(benchmark::State& state) {
  namespace bip = boost::interprocess;
  constexpr long kItems = 1'000'000;
  const std::string name = "mp_bench_mq_" + std::to_string(::getpid());
  for (auto _ : state) {
    bip::message_queue::remove(name.c_str());
    bip::message_queue mq(bip::create_only, name.c_str(), 1024, sizeof(long));
    mp::Process producer([name] {
      bip::message_queue out(bip::open_only, name.c_str());
      for (long i = 0; i < kItems; ++i) out.send(&i, sizeof i, 0);
    });
    producer.start();
    long sum = 0, v = 0;
    std::size_t received = 0;
    unsigned priority = 0;
    for (long i = 0; i < kItems; ++i) {
      mq.receive(&v, sizeof v, received, priority);
      sum += v;
    }
    producer.join();
    benchmark::DoNotOptimize(sum);
  }
  bip::message_queue::remove(name.c_str());
  state.SetItemsProcessed(state.iterations() * kItems);
}
BENCHMARK(BM_BoostMessageQueue_SmallItems_1P1C)->UseRealTime()->Unit(benchmark::kMillisecond)->Iterations(3);
#endif

}  // namespace

BENCHMARK_MAIN();
