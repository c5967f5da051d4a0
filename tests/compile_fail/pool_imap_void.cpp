// imap yields results: a void callable has none to yield.
// expect-error: mp::Pool::imap: the callable returns void
#include <vector>

#include "mp/pool.hpp"

void nothing(int) {}

int main() {
  mp::Pool pool(1);
  auto it = pool.imap(nothing, std::vector<int>{1, 2});
  return 0;
}
