// A Pipe of a type that cannot travel between processes (here a
// std::unique_ptr) must stop at a static_assert that says what to do.
// expect-error: mp::Connection<T> / mp::Pipe<T>: T is not Encodable
#include <memory>

#include "mp/pipe.hpp"

int main() {
  auto [a, b] = mp::Pipe<std::unique_ptr<int>>();
  (void)a;
  (void)b;
}
