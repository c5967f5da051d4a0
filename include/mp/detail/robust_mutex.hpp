// mp/detail/robust_mutex.hpp — a process-shared mutex that survives its holder's death.
//
// A pthread mutex with PTHREAD_PROCESS_SHARED and PTHREAD_MUTEX_ROBUST, placed
// in shared memory. The kernel keeps a per-thread list of the robust mutexes
// a thread holds; when the thread dies (even by SIGKILL, even in the middle of
// lock() or unlock(): glibc publishes the operation in list_op_pending first)
// it marks each one FUTEX_OWNER_DIED and wakes a waiter, whose lock call then
// returns EOWNERDEAD. We mark the mutex consistent at once and report
// owner_died to the caller, which must repair whatever the dead holder left
// half-done (a queue drops a half-written record; a user Lock sets
// previous_owner_died()). Waits are timed on CLOCK_MONOTONIC
// (pthread_mutex_clocklock), with absolute deadlines.
//
// Ownership: the lock word of a robust mutex holds the kernel thread id of its
// holder (robust futex ABI), which the kernel clears when the holder dies.
// held_by_caller() compares it with current_tid(): exact for "this process +
// this thread", including in a fork()ed child (new thread id, so a child never
// holds what its parent's thread held).
//
// Kinds: `normal` blocks forever when its holder locks it again (what the
// queue uses; it never re-locks); `errorcheck` returns EDEADLK instead, which
// mp::Lock turns into a ValueError. The fast paths of both cost the same.
//
// Why glibc's mutex and not a robust lock of our own (issue 10, measured
// 2026-11-30 on the 2-vCPU EPYC guest, CPU time per acquire+release): mp::Lock
// 8.7 ns, the bare robust pthread mutex 8.6-9.8 ns, a plain process-shared
// one 6.3 ns, so at most ~3 ns is there to win, and mp::Lock already meets
// its 15 ns goal. An own lock would have to share the thread's one robust
// list, which glibc registers (set_robust_list) and owns: its entries would
// need glibc's layout (the kernel finds each futex word at one fixed offset
// from the list node, the `__list` of pthread_mutex_t) and glibc's
// list_op_pending protocol, i.e. a copy of glibc internals. Not worth it for
// ~3 ns. The contended case (2 processes incrementing) is decided by how a
// waiter is woken, not by this path; a spin before blocking was tried and
// could not be measured on a loaded machine, so it is not in.
//
// Lifetime: the mutex lives in a MAP_SHARED region; it is never destroyed
// (other processes may use it until the mapping goes away).
#pragma once

#include <linux/futex.h>
#include <pthread.h>

#include <atomic>
#include <cerrno>
#include <cstddef>

#include "mp/detail/clock.hpp"
#include "mp/detail/thread_identity.hpp"

namespace mp::detail {

enum class LockOutcome {
  acquired,    // got it
  owner_died,  // got it, the previous holder died holding it: repair state
  timed_out,   // deadline passed (or busy, for try_lock)
  error,       // unexpected; lock_native() gives the error number
};

enum class MutexKind { normal, errorcheck };

// The lock word is the robust futex: glibc's layout, fixed by the kernel ABI.
static_assert(offsetof(pthread_mutex_t, __data.__lock) == 0);
static_assert(sizeof(pthread_mutex_t::__data.__lock) == sizeof(int));

class RobustMutex {
 public:
  // RobustMutex::RobustMutex(kind): initialise in place, in shared memory.
  RobustMutex() noexcept : RobustMutex(MutexKind::normal) {}
  explicit RobustMutex(MutexKind kind) noexcept {
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    pthread_mutexattr_settype(
        &attr, kind == MutexKind::errorcheck ? PTHREAD_MUTEX_ERRORCHECK : PTHREAD_MUTEX_NORMAL);
    pthread_mutex_init(&native_, &attr);
    pthread_mutexattr_destroy(&attr);
  }
  RobustMutex(const RobustMutex&) = delete;
  RobustMutex& operator=(const RobustMutex&) = delete;

  // RobustMutex::lock(deadline): blocks until acquired or the deadline.
  LockOutcome lock(const Deadline& deadline = Deadline::never()) noexcept {
    return classify(lock_native(deadline));
  }

  // RobustMutex::try_lock(): never blocks; timed_out means "held by another".
  [[nodiscard]] LockOutcome try_lock() noexcept { return classify(try_lock_native()); }

  // RobustMutex::lock_native(deadline): as lock(), but returns the pthread
  // error number: 0, EOWNERDEAD (held now, already made consistent),
  // ETIMEDOUT, EDEADLK (errorcheck kind, the caller holds it), or another.
  [[nodiscard]] int lock_native(const Deadline& deadline = Deadline::never()) noexcept {
    int rc;
    if (deadline.is_never()) {
      rc = pthread_mutex_lock(&native_);
    } else {
#if defined(__SANITIZE_THREAD__)
      // ThreadSanitizer (GCC 12's libtsan) does not intercept
      // pthread_mutex_clocklock, so it would not see the acquisition and then
      // report the unlock. Under TSan only, wait with the intercepted
      // pthread_mutex_timedlock on the realtime clock instead (the remaining
      // time is the same; only a wall-clock jump could stretch it).
      timespec now{};
      clock_gettime(CLOCK_REALTIME, &now);
      const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.remaining()).count();
      long long ns = static_cast<long long>(now.tv_nsec) + left % 1'000'000'000;
      timespec abs{now.tv_sec + static_cast<time_t>(left / 1'000'000'000 + ns / 1'000'000'000),
                   static_cast<long>(ns % 1'000'000'000)};
      rc = pthread_mutex_timedlock(&native_, &abs);
#else
      timespec abs = deadline.as_timespec();
      rc = pthread_mutex_clocklock(&native_, CLOCK_MONOTONIC, &abs);
#endif
    }
    return make_consistent(rc);
  }

  // RobustMutex::try_lock_native(): 0, EOWNERDEAD, EBUSY or another error.
  [[nodiscard]] int try_lock_native() noexcept { return make_consistent(pthread_mutex_trylock(&native_)); }

  // RobustMutex::unlock(): true if released; false if the calling thread did
  // not hold it (EPERM: robust mutexes always check their owner).
  bool unlock() noexcept { return pthread_mutex_unlock(&native_) == 0; }

  // RobustMutex::held_by_caller(): does this process + thread hold it now?
  // Exact for the caller (only the caller writes its own id into the word,
  // and only the kernel, at the caller's death, clears it); a relaxed load is
  // enough because the answer is about the caller's own earlier writes.
  [[nodiscard]] bool held_by_caller() const noexcept { return owner_tid() == current_tid(); }

  // RobustMutex::owner_tid(): the holder's kernel thread id, 0 when free or
  // when the holder died (a snapshot; only exact when the holder is the caller).
  [[nodiscard]] pid_t owner_tid() const noexcept { return lock_word() & FUTEX_TID_MASK; }

  // RobustMutex::owner_died_pending(): the kernel marked the word
  // FUTEX_OWNER_DIED and no one has taken the mutex since (a snapshot).
  [[nodiscard]] bool owner_died_pending() const noexcept { return (lock_word() & FUTEX_OWNER_DIED) != 0; }

 private:
  [[nodiscard]] int lock_word() const noexcept {
    // Relaxed: a snapshot of a word that glibc and the kernel update atomically.
    return std::atomic_ref<int>(const_cast<int&>(native_.__data.__lock)).load(std::memory_order_relaxed);
  }

  int make_consistent(int rc) noexcept {
    // We hold it now; consistent() makes it usable again for everyone. The
    // caller repairs the protected state before unlocking.
    if (rc == EOWNERDEAD) pthread_mutex_consistent(&native_);
    return rc;
  }

  static LockOutcome classify(int rc) noexcept {
    switch (rc) {
      case 0: return LockOutcome::acquired;
      case EOWNERDEAD: return LockOutcome::owner_died;
      case ETIMEDOUT:
      case EBUSY: return LockOutcome::timed_out;
      default: return LockOutcome::error;
    }
  }

  pthread_mutex_t native_;
};

}  // namespace mp::detail
