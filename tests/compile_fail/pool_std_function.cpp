// A std::function holds its target behind a pointer: it cannot travel.
// expect-error: mp::Pool: the callable cannot travel to a worker process
#include <functional>

#include "mp/pool.hpp"

int main() {
  mp::Pool pool(1);
  std::function<int(int)> f = [](int x) { return x + 1; };
  return pool.apply(f, 1);
}
