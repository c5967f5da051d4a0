// pool_squares: the sum of x*x for x below 50 million, split into blocks that
// a Pool of workers sums in parallel; checked against the closed form.
//   python: sum(pool.map(block_sum, blocks))
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <utility>
#include <vector>

#include "mp/pool.hpp"

namespace {

using Block = std::pair<std::uint64_t, std::uint64_t>;  // [first, last)

// Exact modulo 2^64 (unsigned arithmetic wraps), like the closed form below.
std::uint64_t block_sum(Block block) {
  std::uint64_t sum = 0;
  for (std::uint64_t x = block.first; x < block.second; ++x) sum += x * x;
  return sum;
}

}  // namespace

int main() {
  constexpr std::uint64_t n = 50'000'000;
  constexpr std::uint64_t block_size = 1'000'000;
  std::vector<Block> blocks;
  for (std::uint64_t first = 0; first < n; first += block_size)
    blocks.emplace_back(first, std::min(first + block_size, n));

  mp::Pool pool;  // cpu_count() workers
  std::uint64_t total = 0;
  for (std::uint64_t part : pool.map(block_sum, blocks)) total += part;
  pool.close();
  pool.join();

  // sum_{x<n} x^2 = (n-1) n (2n-1) / 6, computed without overflow in 128 bits.
  const unsigned __int128 exact = static_cast<unsigned __int128>(n - 1) * n * (2 * n - 1) / 6;
  const auto expected = static_cast<std::uint64_t>(exact);  // modulo 2^64, as the sum above
  std::printf("workers: %d, blocks: %zu\n", pool.processes(), blocks.size());
  std::printf("sum of squares below %llu (mod 2^64) = %llu\n", static_cast<unsigned long long>(n),
              static_cast<unsigned long long>(total));
  std::printf("closed form %s\n", total == expected ? "agrees" : "DISAGREES");
  return total == expected ? 0 : 1;
}
