// examples/redis_pool_tasks.hpp — the tasks both redis_pool_submitter and redis_pool_worker register.
#pragma once

#include <unistd.h>

#include "mp/redis/pool.hpp"

namespace collatz {

// steps(n): how many Collatz steps n takes to reach 1 (slowed down a little, so a demo can
// kill a worker host mid-map).
inline long long steps(long long n) {
  ::usleep(10000);
  long long count = 0;
  while (n > 1) {
    n = (n % 2 == 0) ? n / 2 : 3 * n + 1;
    ++count;
  }
  return count;
}

}  // namespace collatz

MP_TASK(collatz::steps);
