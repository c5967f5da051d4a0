// bounded_queue: Queue(maxsize) with put_nowait / get_nowait raising Full / Empty,
// as Python's queue.Full and queue.Empty.
#include <chrono>
#include <cstdio>

#include "mp/mp.hpp"

int main() {
  using namespace std::chrono_literals;
  mp::Queue<int> q(3);
  for (int i = 1; i <= 5; ++i) {
    try {
      q.put_nowait(i);
      std::printf("put %d (qsize %zu)\n", i, q.qsize());
    } catch (const mp::Full&) {
      std::printf("put %d: Full (maxsize %zu)\n", i, q.maxsize());
    }
  }
  try {
    q.put(6, 10ms);
  } catch (const mp::Full&) {
    std::printf("put 6 with a 10 ms timeout: Full\n");
  }
  for (;;) {
    try {
      std::printf("got %d\n", q.get_nowait());
    } catch (const mp::Empty&) {
      std::printf("get_nowait: Empty\n");
      break;
    }
  }
  // The hot-loop forms never throw for a full or empty queue.
  bool ok = q.try_put(7);
  std::optional<int> back = q.try_get();
  std::printf("try_put: %s, try_get: %d, try_get again: %s\n", ok ? "true" : "false", back.value_or(-1),
              q.try_get() ? "a value" : "nullopt");
}
