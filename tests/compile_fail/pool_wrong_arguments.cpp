// apply with arguments the callable does not take must say so.
// expect-error: mp::Pool: the callable cannot be called with these arguments
#include <string>

#include "mp/pool.hpp"

int twice(int x) { return 2 * x; }

int main() {
  mp::Pool pool(1);
  return pool.apply(twice, std::string("not an int"));
}
