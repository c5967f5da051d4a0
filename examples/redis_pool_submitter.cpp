// examples/redis_pool_submitter.cpp URL [N] — maps collatz::steps over 1..N on whatever worker
// hosts serve the "collatz" pool, and checks every result against a local computation.
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "mp/redis/pool.hpp"
#include "redis_pool_tasks.hpp"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s redis://host:port [N]\n", argv[0]);
    return 2;
  }
  const long long n = argc > 2 ? std::atoll(argv[2]) : 200;
  std::vector<long long> numbers;
  for (long long i = 1; i <= n; ++i) numbers.push_back(i);
  mp::redis::Pool pool(argv[1], "collatz");
  std::vector<long long> steps = pool.map(&collatz::steps, numbers);
  for (long long i = 1; i <= n; ++i) {
    long long expected = 0;
    for (long long x = i; x > 1; x = (x % 2 == 0) ? x / 2 : 3 * x + 1) ++expected;
    if (steps[static_cast<std::size_t>(i - 1)] != expected) {
      std::printf("wrong result for %lld\n", i);
      return 1;
    }
  }
  std::printf("all %lld results check out (in order)\n", n);
  // imap_unordered: the same results, in the order the hosts send them.
  long long total = 0, expected_total = 0;
  for (long long s : pool.imap_unordered(&collatz::steps, numbers)) total += s;
  for (long long s : steps) expected_total += s;
  if (total != expected_total) {
    std::printf("imap_unordered: total %lld, expected %lld\n", total, expected_total);
    return 1;
  }
  std::printf("imap_unordered: the same %lld results, as they arrived\n", n);
  return 0;
}
