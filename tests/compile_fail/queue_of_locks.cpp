// A handle on a shared object (here a Lock) is no value: putting it into a
// Queue must stop at a static_assert saying how such objects are shared.
// expect-error: should only be shared between processes through inheritance
#include "mp/lock.hpp"
#include "mp/queue.hpp"

int main() {
  mp::Queue<mp::Lock> locks;
  locks.put(mp::Lock{});
}
