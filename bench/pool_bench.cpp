// Pool benchmarks; bench/compare/pool.py runs the same work with Python's
// multiprocessing.Pool in the same run and prints the ratios against the
// issue's goals. Every case uses one Pool(2) made once (but the last).
//   BM_PoolApplyAsyncRoundTrip  apply_async(f, x).get(), one at a time
//   BM_PoolMapChunksize1        map(trivial, 20k items, chunksize=1)
//   BM_PoolMapDefaultChunksize  map(trivial, 200k items), CPython's default chunksize
//   BM_PoolImapUnordered        imap_unordered(trivial, 100k items), chunksize=1
//   BM_PoolCreateCloseJoin      Pool(2) + close() + join()
//   BM_PoolCreateCloseJoinUnder/1  the same with start_method forkserver (the
//                               zygote forked by mp's fork server, started at init)
//   BM_PoolCreateCloseJoinUnder/2  the same with start_method spawn (the zygote
//                               is a fresh run of this program)
#include <benchmark/benchmark.h>

#include <numeric>
#include <vector>

#include "mp/context.hpp"
#include "mp/pool.hpp"

namespace {

int trivial(int x) { return x + 1; }

mp::Pool& shared_pool() {
  static mp::Pool pool(2);
  return pool;
}

std::vector<int> items(int n) {
  std::vector<int> v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

void BM_PoolApplyAsyncRoundTrip(benchmark::State& state) {
  mp::Pool& pool = shared_pool();
  int x = 0;
  for (auto _ : state) {
    x = pool.apply_async(trivial, x).get();
  }
  benchmark::DoNotOptimize(x);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PoolApplyAsyncRoundTrip)->UseRealTime()->Unit(benchmark::kMicrosecond);

void BM_PoolMapChunksize1(benchmark::State& state) {
  mp::Pool& pool = shared_pool();
  const auto input = items(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    auto out = pool.map(trivial, input, 1);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_PoolMapChunksize1)->Arg(20000)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_PoolMapDefaultChunksize(benchmark::State& state) {
  mp::Pool& pool = shared_pool();
  const auto input = items(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    auto out = pool.map(trivial, input);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_PoolMapDefaultChunksize)->Arg(200000)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_PoolImapUnordered(benchmark::State& state) {
  mp::Pool& pool = shared_pool();
  const auto input = items(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    long sum = 0;
    for (int y : pool.imap_unordered(trivial, input)) sum += y;
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_PoolImapUnordered)->Arg(100000)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_PoolCreateCloseJoin(benchmark::State& state) {
  for (auto _ : state) {
    mp::Pool pool(2);
    pool.close();
    pool.join();
  }
}
BENCHMARK(BM_PoolCreateCloseJoin)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_PoolCreateCloseJoinUnder(benchmark::State& state) {
  mp::PoolOptions options;
  options.start_method = state.range(0) == 1 ? mp::StartMethod::forkserver : mp::StartMethod::spawn;
  for (auto _ : state) {
    mp::Pool pool(2, options);
    pool.close();
    pool.join();
  }
}
BENCHMARK(BM_PoolCreateCloseJoinUnder)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  mp::init(argc, argv);  // a spawn zygote runs here and never returns; starts the fork server
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
