// producer_consumer: 3 producers and 2 consumers over one Queue(10); each
// consumer stops at a std::nullopt sentinel, as Python code sends None.
// Each consumer reports (count, sum) as one item: two separate puts from two
// consumers may interleave on the shared totals queue.
#include <cstdio>
#include <optional>
#include <utility>
#include <vector>

#include "mp/mp.hpp"

namespace {

void produce(mp::Queue<std::optional<int>> q, int id) {
  for (int i = 0; i < 100; ++i) q.put(id * 1000 + i);
}

void consume(mp::Queue<std::optional<int>> q, mp::Queue<std::pair<long, long>> totals) {
  long sum = 0, count = 0;
  while (std::optional<int> item = q.get()) {
    sum += *item;
    ++count;
  }
  totals.put({count, sum});
}

}  // namespace

int main() {
  mp::Queue<std::optional<int>> q(10);
  mp::Queue<std::pair<long, long>> totals;
  std::vector<mp::Process> producers, consumers;
  for (int id = 1; id <= 3; ++id) producers.emplace_back(produce, q, id);
  for (int c = 0; c < 2; ++c) consumers.emplace_back(consume, q, totals);
  for (auto& p : consumers) p.start();
  for (auto& p : producers) p.start();
  for (auto& p : producers) p.join();
  for (std::size_t c = 0; c < consumers.size(); ++c) q.put(std::nullopt);  // one sentinel per consumer
  for (auto& p : consumers) p.join();
  long count = 0, sum = 0;
  for (std::size_t c = 0; c < consumers.size(); ++c) {
    const auto [consumed, consumed_sum] = totals.get();
    count += consumed;
    sum += consumed_sum;
  }
  long expected = 0;
  for (int id = 1; id <= 3; ++id)
    for (int i = 0; i < 100; ++i) expected += id * 1000 + i;
  std::printf("consumed %ld items, sum %ld (expected %ld): %s\n", count, sum, expected,
              sum == expected && count == 300 ? "all there" : "MISMATCH");
}
