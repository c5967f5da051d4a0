// mp/detail/robust_mutex.hpp — a process-shared mutex that survives its holder's death.
//
// A pthread mutex with PTHREAD_PROCESS_SHARED and PTHREAD_MUTEX_ROBUST, placed
// in shared memory. The kernel keeps a per-thread list of the robust mutexes
// a thread holds; when the thread dies (even by SIGKILL) it marks each one
// FUTEX_OWNER_DIED and wakes a waiter, whose lock call then returns
// EOWNERDEAD. We mark the mutex consistent at once and report owner_died to
// the caller, which must repair whatever the dead holder left half-done (a
// queue drops a half-written record; a user Lock sets previous_owner_died()).
// Waits are timed on CLOCK_MONOTONIC (pthread_mutex_clocklock).
//
// Lifetime: the mutex lives in a MAP_SHARED region; it is never destroyed
// (other processes may use it until the mapping goes away).
#pragma once

#include <pthread.h>

#include <cerrno>

#include "mp/detail/clock.hpp"

namespace mp::detail {

enum class LockOutcome {
  acquired,         // got it
  owner_died,       // got it, the previous holder died holding it: repair state
  timed_out,        // deadline passed (or busy, for try_lock)
  error,            // unexpected; errno-like code in the caller's hands
};

class RobustMutex {
 public:
  // RobustMutex::RobustMutex(): initialise in place, in shared memory.
  RobustMutex() noexcept {
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&native_, &attr);
    pthread_mutexattr_destroy(&attr);
  }
  RobustMutex(const RobustMutex&) = delete;
  RobustMutex& operator=(const RobustMutex&) = delete;

  // RobustMutex::lock(deadline): blocks until acquired or the deadline.
  LockOutcome lock(const Deadline& deadline = Deadline::never()) noexcept {
    int rc;
    if (deadline.is_never()) {
      rc = pthread_mutex_lock(&native_);
    } else {
      timespec abs = deadline.as_timespec();
      rc = pthread_mutex_clocklock(&native_, CLOCK_MONOTONIC, &abs);
    }
    return outcome(rc);
  }

  // RobustMutex::try_lock(): never blocks; timed_out means "held by another".
  LockOutcome try_lock() noexcept { return outcome(pthread_mutex_trylock(&native_)); }

  void unlock() noexcept { pthread_mutex_unlock(&native_); }

 private:
  LockOutcome outcome(int rc) noexcept {
    switch (rc) {
      case 0: return LockOutcome::acquired;
      case EOWNERDEAD:
        // We hold it now; consistent() makes it usable again for everyone.
        // The caller repairs the protected state before unlocking.
        pthread_mutex_consistent(&native_);
        return LockOutcome::owner_died;
      case ETIMEDOUT:
      case EBUSY: return LockOutcome::timed_out;
      default: return LockOutcome::error;
    }
  }

  pthread_mutex_t native_;
};

}  // namespace mp::detail
