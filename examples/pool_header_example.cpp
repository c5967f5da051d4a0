// The examples at the top of mp/pool.hpp and mp/async_result.hpp, compiled
// and run as they are written there.
#include <chrono>
#include <cstdio>
#include <vector>

#include "mp/pool.hpp"

namespace {
int square(int x) { return x * x; }
void use(int y) { std::printf("imap: %d\n", y); }
}  // namespace

int main() {
  {                                                                     // mp/pool.hpp
    mp::Pool pool(4);                                                   // 0 (default): cpu_count()
    std::vector<int> squares = pool.map(square, std::vector{1, 2, 3});  // {1, 4, 9}
    mp::AsyncResult<int> r = pool.apply_async(square, 12);
    int v = r.get(std::chrono::seconds(5));  // 144, or TimeoutError
    std::printf("map: %d %d %d, apply_async: %d\n", squares[0], squares[1], squares[2], v);
  }
  {  // mp/async_result.hpp
    mp::Pool pool(2);
    mp::AsyncResult<int> r = pool.apply_async([](int x) { return x * x; }, 7);
    if (!r.wait(std::chrono::seconds(1))) { /* still running */
    }
    int v = r.get();  // 49
    std::printf("apply_async: %d\n", v);
    for (int y : pool.imap([](int x) { return x + 1; }, std::vector{1, 2, 3})) use(y);
  }
  return 0;
}
