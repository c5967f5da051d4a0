// tests/support/pool_tasks.hpp — small tasks the Pool tests run in workers, in
// the unit tests and in the helper programs alike: a result, the worker's
// identity, a worker that dies or never returns, an initializer's trace.
#pragma once

#include <signal.h>
#include <unistd.h>

namespace mp::test::tasks {

inline int square(int x) { return x * x; }
inline int worker_pid(int) { return static_cast<int>(::getpid()); }
inline int die_inside(int) {
  ::raise(SIGKILL);
  return 0;
}
inline int sleep_forever(int) {
  for (;;) ::pause();
}

// initialize() runs in each worker; read_initialized() shows it did (7).
inline int g_initialized = 0;
inline void initialize() { g_initialized = 7; }
inline int read_initialized(int) { return g_initialized; }

}  // namespace mp::test::tasks
