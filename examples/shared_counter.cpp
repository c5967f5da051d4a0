// Shared counters: an mp::Value and an mp::Array incremented by several
// processes, each increment under the object's own get_lock() (Python's
// `with counter.get_lock(): counter.value += 1`). Without the lock, increments
// from different processes would be lost; with it, the totals are exact.
//
// Python:
//   def work(counter, histogram):
//       for i in range(N):
//           with counter.get_lock(): counter.value += 1
//           with histogram.get_lock(): histogram[i % 4] += 1
//   counter = Value('i', 0); histogram = Array('i', 4)
#include <cstdio>
#include <mutex>
#include <vector>

#include "mp/process.hpp"
#include "mp/shared.hpp"

namespace {

constexpr int kWorkers = 4;
constexpr int kIncrements = 10000;

void work(mp::Value<long> counter, mp::Array<long> histogram) {
  for (int i = 0; i < kIncrements; ++i) {
    {
      std::lock_guard hold(counter.get_lock());
      counter.value() += 1;
    }
    std::lock_guard hold(histogram.get_lock());
    histogram[static_cast<std::size_t>(i % 4)] += 1;
  }
}

}  // namespace

int main() {
  mp::Value<long> counter(0);
  mp::Array<long> histogram(4, 0);
  std::vector<mp::Process> workers;
  for (int i = 0; i < kWorkers; ++i) workers.emplace_back(work, counter, histogram);
  for (auto& p : workers) p.start();
  for (auto& p : workers) p.join();

  std::printf("counter: %ld (expected %d)\n", counter.value(), kWorkers * kIncrements);
  std::printf("histogram:");
  for (long bucket : histogram) std::printf(" %ld", bucket);
  std::printf("\n");
  bool exact = counter.value() == kWorkers * kIncrements;
  for (long bucket : histogram) exact = exact && bucket == kWorkers * kIncrements / 4;
  std::printf(exact ? "no increment lost\n" : "INCREMENTS LOST\n");
  return exact ? 0 : 1;
}
