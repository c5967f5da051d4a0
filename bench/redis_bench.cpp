// bench/redis_bench — mp::redis throughput and latency against a running server.
//
// The server comes from $MP_REDIS_URL (bench/compare/redis.py starts a
// throwaway one and sets it); without it every benchmark is skipped.
//   BM_RedisQueue4x4      4 producer + 4 consumer processes, 64-byte items,
//                         put -> get -> task_done on a JoinableQueue; items/s
//   BM_RedisQueue4x4Batched  the same through QueueCore's batch calls (put_many 64,
//                         get_many 16 + task_done_many), as mp::redis::Pool's hosts use them
//   BM_RedisRoundTrip     1 producer -> 1 consumer and back (two queues); per round trip
//   BM_RedisLock          acquire + release of an mp::redis::Lock; per pair
// Children are forked here and leave with _exit (the code between fork and
// _exit is in this file: spawn()).
#include <benchmark/benchmark.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "mp/redis.hpp"

namespace {

// 64 bytes, trivially copyable: the codec copies it as-is ("pod64").
struct Item {
  std::uint8_t bytes[64];
  std::uint8_t& operator[](std::size_t i) { return bytes[i]; }
};

const char* server_url() { return std::getenv("MP_REDIS_URL"); }

std::string unique_name(const char* what) {
  return std::string(what) + "-" + std::to_string(::getpid()) + "-" +
         std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
}

pid_t spawn(const std::function<int()>& body) {
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    int code = 1;
    try {
      code = body();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "bench child: %s\n", e.what());
    }
    std::fflush(nullptr);
    ::_exit(code);
  }
  return pid;
}

bool reap_all(const std::vector<pid_t>& pids) {
  bool ok = true;
  for (pid_t pid : pids) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    ok = ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }
  return ok;
}

constexpr int kProducers = 4;
constexpr int kConsumers = 4;

// four_by_four(state, prefix, open, produce, consume): the harness both 4x4
// benchmarks share. Per iteration: a fresh queue named after `prefix`, 4
// producer and 4 consumer processes (each opens its own handle with
// open(name)), released together through a pipe; produce(queue, count) puts
// count items, consume(queue, share) gets and acknowledges share items (each
// returns 0 when all went well); timed until the owner's join() returns and
// every child has ended. state.range(0): items per producer; range(1): maxsize.
template <class Open, class Produce, class Consume>
void four_by_four(benchmark::State& state, const char* prefix, Open open, Produce produce, Consume consume) {
  const int per_producer = static_cast<int>(state.range(0));
  const int total = per_producer * kProducers;
  for (auto _ : state) {
    std::string name = unique_name(prefix);
    auto q = open(name);
    int go[2];
    if (::pipe(go) != 0) {
      state.SkipWithError("pipe failed");
      return;
    }
    auto wait_go = [&] {
      char c;
      return ::read(go[0], &c, 1) == 1;
    };
    std::vector<pid_t> children;
    for (int p = 0; p < kProducers; ++p) {
      children.push_back(spawn([&] {
        auto mine = open(name);
        if (!wait_go()) return 1;
        return produce(*mine, per_producer);
      }));
    }
    for (int c = 0; c < kConsumers; ++c) {
      int share = total / kConsumers + (c < total % kConsumers ? 1 : 0);
      children.push_back(spawn([&, share] {
        auto mine = open(name);
        if (!wait_go()) return 1;
        return consume(*mine, share);
      }));
    }
    ::close(go[0]);
    auto start = std::chrono::steady_clock::now();
    char signal[kProducers + kConsumers] = {};
    [[maybe_unused]] auto n = ::write(go[1], signal, sizeof signal);
    ::close(go[1]);
    q->join();
    bool ok = reap_all(children);
    auto elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    state.SetIterationTime(elapsed);
    if (!ok) {
      state.SkipWithError("a child failed");
      return;
    }
  }
  state.counters["items_per_second"] = benchmark::Counter(
      static_cast<double>(total) * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.SetItemsProcessed(static_cast<std::int64_t>(total) * state.iterations());
}

// BM_RedisQueue4x4: the public API, put / get + task_done, one item per call.
void BM_RedisQueue4x4(benchmark::State& state) {
  const char* url = server_url();
  if (url == nullptr) {
    state.SkipWithError("set MP_REDIS_URL (bench/compare/redis.py does)");
    return;
  }
  const auto maxsize = static_cast<std::size_t>(state.range(1));
  four_by_four(
      state, "bench4x4",
      [&](const std::string& name) {
        return std::make_unique<mp::redis::JoinableQueue<Item>>(url, name, maxsize);
      },
      [](mp::redis::JoinableQueue<Item>& mine, int count) {
        Item item{};
        for (int i = 0; i < count; ++i) {
          item[0] = static_cast<std::uint8_t>(i);
          mine.put(item);
        }
        return 0;
      },
      [](mp::redis::JoinableQueue<Item>& mine, int share) {
        for (int i = 0; i < share; ++i) {
          benchmark::DoNotOptimize(mine.get());
          mine.task_done();
        }
        return 0;
      });
}
BENCHMARK(BM_RedisQueue4x4)
    ->Args({5000, 1000})
    ->Args({5000, 0})
    ->UseManualTime()
    ->Iterations(2)
    ->Unit(benchmark::kMillisecond);

// BM_RedisQueue4x4Batched: the same work through the batch calls mp::redis::Pool's hosts use
// (QueueCore::put_many, get_many, task_done_many; not public API): producers put 64 items per
// call, consumers take up to 16 and acknowledge them together. Shows what the machinery does
// when a caller can batch; the public put/get/task_done cannot.
void BM_RedisQueue4x4Batched(benchmark::State& state) {
  const char* url = server_url();
  if (url == nullptr) {
    state.SkipWithError("set MP_REDIS_URL (bench/compare/redis.py does)");
    return;
  }
  static constexpr std::size_t kPutBatch = 64;
  static constexpr std::size_t kGetBatch = 16;
  const auto maxsize = static_cast<std::size_t>(state.range(1));
  using mp::redis::detail::QueueCore;
  four_by_four(
      state, "bench4x4b",
      [&](const std::string& name) {
        return std::make_unique<QueueCore>(url, name, maxsize, true, mp::codec_signature<Item>(),
                                           mp::redis::Options{});
      },
      [](QueueCore& mine, int count) {
        Item item{};
        std::vector<std::vector<std::byte>> batch;
        for (int i = 0; i < count;) {
          batch.clear();
          for (; i < count && batch.size() < kPutBatch; ++i) {
            item[0] = static_cast<std::uint8_t>(i);
            batch.push_back(mp::encode(item));
          }
          if (mine.put_many(batch, mp::detail::Deadline::never()) != batch.size()) return 2;
        }
        return 0;
      },
      [](QueueCore& mine, int share) {
        for (int got = 0; got < share;) {
          auto items = mine.get_many(std::min<std::size_t>(kGetBatch, static_cast<std::size_t>(share - got)),
                                     mp::detail::Deadline::never());
          benchmark::DoNotOptimize(items.data());
          mine.task_done_many(items.size());
          got += static_cast<int>(items.size());
        }
        return 0;
      });
}
BENCHMARK(BM_RedisQueue4x4Batched)
    ->Args({5000, 1000})
    ->Args({5000, 0})
    ->UseManualTime()
    ->Iterations(2)
    ->Unit(benchmark::kMillisecond);

void BM_RedisRoundTrip(benchmark::State& state) {
  const char* url = server_url();
  if (url == nullptr) {
    state.SkipWithError("set MP_REDIS_URL (bench/compare/redis.py does)");
    return;
  }
  std::string name = unique_name("benchrt");
  mp::redis::Queue<Item> ping(url, name + "-ping");
  mp::redis::Queue<Item> pong(url, name + "-pong");
  pid_t echo = spawn([&] {
    mp::redis::Queue<Item> in(url, name + "-ping");
    mp::redis::Queue<Item> out(url, name + "-pong");
    for (;;) {
      Item item = in.get();
      if (item[0] == 255) return 0;
      out.put(item);
    }
  });
  Item item{};
  for (int i = 0; i < 50; ++i) {  // warm up
    ping.put(item);
    item = pong.get();
  }
  for (auto _ : state) {
    ping.put(item);
    item = pong.get();
  }
  item[0] = 255;
  ping.put(item);
  reap_all({echo});
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RedisRoundTrip)->UseRealTime()->Unit(benchmark::kMicrosecond);

void BM_RedisLock(benchmark::State& state) {
  const char* url = server_url();
  if (url == nullptr) {
    state.SkipWithError("set MP_REDIS_URL (bench/compare/redis.py does)");
    return;
  }
  mp::redis::Lock lock(url, unique_name("benchlock"));
  for (auto _ : state) {
    lock.acquire();
    lock.release();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RedisLock)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
