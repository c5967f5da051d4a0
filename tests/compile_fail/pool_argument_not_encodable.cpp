// Arguments travel by the codec: a std::unique_ptr argument must be refused
// with a message that says so.
// expect-error: mp::Pool: an argument \(or range item\) is not codec-serialisable
#include <memory>

#include "mp/pool.hpp"

int deref(const std::unique_ptr<int>& p) { return *p; }

int main() {
  mp::Pool pool(1);
  auto r = pool.apply_async(deref, std::make_unique<int>(3));
  return r.get();
}
