// Results travel back by the codec: a callable returning a std::unique_ptr
// must be refused with a message that says so.
// expect-error: mp::Pool: the callable's result is not codec-serialisable
#include <memory>
#include <vector>

#include "mp/pool.hpp"

std::unique_ptr<int> box(int x) { return std::make_unique<int>(x); }

int main() {
  mp::Pool pool(1);
  auto out = pool.map(box, std::vector<int>{1});
  return static_cast<int>(out.size());
}
