// starmap spreads each item into the call: the items must be tuples.
// expect-error: mp::Pool::starmap: each item must be a std::tuple, std::pair or std::array
#include <vector>

#include "mp/pool.hpp"

int add(int a, int b) { return a + b; }

int main() {
  mp::Pool pool(1);
  auto out = pool.starmap(add, std::vector<int>{1, 2});
  return static_cast<int>(out.size());
}
