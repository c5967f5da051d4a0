// mp/detail/acquirable.hpp — Python's acquire() family and the standard
// Lockable / TimedLockable members, written once for every mp primitive that
// can be acquired (Lock, RLock, Semaphore, BoundedSemaphore, Condition).
//
// A primitive derives from Acquirable<Self> and provides two members (private,
// with Acquirable<Self> as a friend):
//   bool acquire_with(AcquireWait wait, const Deadline& deadline);  // true: acquired
//   void release();
// Every timeout is turned into an absolute CLOCK_MONOTONIC Deadline once, here,
// so retries below never stretch a wait.
//
// Safety: as the primitive's own. Visibility and Lifetime: as the primitive's.
#pragma once

#include <chrono>

#include "mp/detail/clock.hpp"

namespace mp::detail {

enum class AcquireWait {
  no,              // try once, never block
  until_deadline,  // block until acquired or the deadline (which may be never())
};

// deadline_at(t): an absolute deadline from a time point of any clock. A
// steady_clock point is used as-is; another clock's point becomes "that much
// time from now" (its clock may jump; the wait itself never does).
template <class Clock, class Duration>
Deadline deadline_at(const std::chrono::time_point<Clock, Duration>& t) noexcept {
  if constexpr (std::is_same_v<Clock, MonotonicClock>) {
    if (t >= MonotonicClock::time_point::max()) return Deadline::never();
    return Deadline::at(std::chrono::time_point_cast<MonotonicClock::duration>(t));
  } else {
    return Deadline::after(t - Clock::now());
  }
}

template <class Self>
class Acquirable {
 public:
  // acquire(): blocks until acquired.
  void acquire() { (void)self().acquire_with(AcquireWait::until_deadline, Deadline::never()); }

  // acquire(block): block == false tries once and returns at once.
  bool acquire(bool block) {
    return self().acquire_with(block ? AcquireWait::until_deadline : AcquireWait::no, Deadline::never());
  }

  // acquire(timeout): false when the timeout ran out first (a negative
  // timeout tries once, as in Python).
  template <class Rep, class Period>
  [[nodiscard]] bool acquire(std::chrono::duration<Rep, Period> timeout) {
    return self().acquire_with(AcquireWait::until_deadline, Deadline::after(timeout));
  }

  // The standard Lockable / TimedLockable names, so std::lock_guard,
  // std::unique_lock and std::scoped_lock work.
  void lock() { acquire(); }
  void unlock() { self().release(); }
  [[nodiscard]] bool try_lock() { return acquire(false); }
  template <class Rep, class Period>
  [[nodiscard]] bool try_lock_for(std::chrono::duration<Rep, Period> timeout) {
    return acquire(timeout);
  }
  template <class Clock, class Duration>
  [[nodiscard]] bool try_lock_until(const std::chrono::time_point<Clock, Duration>& when) {
    return self().acquire_with(AcquireWait::until_deadline, deadline_at(when));
  }

 protected:
  Acquirable() = default;
  ~Acquirable() = default;
  Acquirable(const Acquirable&) = default;
  Acquirable& operator=(const Acquirable&) = default;

 private:
  Self& self() noexcept { return static_cast<Self&>(*this); }
};

}  // namespace mp::detail
