// A lambda that captures a std::string cannot be rebuilt from bytes in a
// worker: Pool::map must stop at a static_assert that says why.
// expect-error: mp::Pool: the callable cannot travel to a worker process
#include <string>
#include <vector>

#include "mp/pool.hpp"

int main() {
  mp::Pool pool(1);
  std::string suffix = "!";
  auto out = pool.map([suffix](int x) { return std::to_string(x) + suffix; }, std::vector<int>{1, 2});
  return static_cast<int>(out.size());
}
