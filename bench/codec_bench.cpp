// Encode and decode throughput of mp/codec.hpp: the memcpy fast path
// (vector<int>, string, PODs) against a plain memcpy of the same bytes, and
// the element-by-element path (vector<string>, a serialize() struct).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "mp/codec.hpp"

namespace {

struct Order {
  std::int64_t id = 0;
  std::string customer;
  std::vector<double> prices;
  std::optional<std::string> note;
  std::map<std::string, int> tags;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(id, customer, prices, note, tags);
  }
};

Order sample_order() {
  Order order;
  order.id = 42;
  order.customer = "Ada Lovelace";
  order.prices = {1.5, 2.25, 9.75, 100.0};
  order.note = "leave at the door";
  order.tags = {{"priority", 1}, {"gift", 0}};
  return order;
}

void BM_MemcpyBaseline(benchmark::State& state) {
  const std::vector<std::int32_t> values(static_cast<std::size_t>(state.range(0)), 7);
  std::vector<std::byte> out;
  for (auto _ : state) {
    out.resize(8 + values.size() * sizeof(std::int32_t));
    std::memcpy(out.data() + 8, values.data(), values.size() * sizeof(std::int32_t));
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() *
                          static_cast<std::int64_t>(values.size() * sizeof(std::int32_t)));
}
BENCHMARK(BM_MemcpyBaseline)->Arg(16)->Arg(1 << 20);

void BM_EncodeVectorInt(benchmark::State& state) {
  const std::vector<std::int32_t> values(static_cast<std::size_t>(state.range(0)), 7);
  std::vector<std::byte> out;
  for (auto _ : state) {
    out.clear();
    mp::encode_into(out, values);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() *
                          static_cast<std::int64_t>(values.size() * sizeof(std::int32_t)));
}
BENCHMARK(BM_EncodeVectorInt)->Arg(16)->Arg(1 << 20);

void BM_DecodeVectorInt(benchmark::State& state) {
  const std::vector<std::byte> bytes =
      mp::encode(std::vector<std::int32_t>(static_cast<std::size_t>(state.range(0)), 7));
  for (auto _ : state) {
    auto values = mp::decode<std::vector<std::int32_t>>(bytes);
    benchmark::DoNotOptimize(values.data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(bytes.size()));
}
BENCHMARK(BM_DecodeVectorInt)->Arg(16)->Arg(1 << 20);

void BM_EncodeInt(benchmark::State& state) {
  std::vector<std::byte> out;
  std::int64_t value = 0;
  for (auto _ : state) {
    out.clear();
    mp::encode_into(out, ++value);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_EncodeInt);

void BM_DecodeInt(benchmark::State& state) {
  const std::vector<std::byte> bytes = mp::encode(std::int64_t{12345});
  for (auto _ : state) benchmark::DoNotOptimize(mp::decode<std::int64_t>(bytes));
}
BENCHMARK(BM_DecodeInt);

void BM_RoundTripString(benchmark::State& state) {
  const std::string text(static_cast<std::size_t>(state.range(0)), 'x');
  std::vector<std::byte> out;
  for (auto _ : state) {
    out.clear();
    mp::encode_into(out, text);
    auto back = mp::decode<std::string>(out);
    benchmark::DoNotOptimize(back.data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(text.size()));
}
BENCHMARK(BM_RoundTripString)->Arg(64)->Arg(1 << 16);

void BM_RoundTripVectorOfStrings(benchmark::State& state) {
  const std::vector<std::string> words(1000, std::string("multiprocessing"));
  std::vector<std::byte> out;
  for (auto _ : state) {
    out.clear();
    mp::encode_into(out, words);
    auto back = mp::decode<std::vector<std::string>>(out);
    benchmark::DoNotOptimize(back.data());
  }
  state.SetItemsProcessed(state.iterations() * 1000);
}
BENCHMARK(BM_RoundTripVectorOfStrings);

void BM_RoundTripSerializeStruct(benchmark::State& state) {
  const Order order = sample_order();
  std::vector<std::byte> out;
  for (auto _ : state) {
    out.clear();
    mp::encode_into(out, order);
    auto back = mp::decode<Order>(out);
    benchmark::DoNotOptimize(back.id);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RoundTripSerializeStruct);

}  // namespace

BENCHMARK_MAIN();
