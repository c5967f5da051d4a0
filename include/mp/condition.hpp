// mp/condition.hpp — mp::Condition, Python's multiprocessing.Condition: wait
// for a change announced by another process or thread, under a shared lock.
//
//   mp::Condition ready;                        // over a new mp::RLock
//   mp::Value<int> stock;
//   {
//     std::unique_lock hold(ready);
//     ready.wait_for([&] { return stock.value() > 0; }, std::chrono::seconds(1));
//   }
//   { std::lock_guard hold(ready); stock.value() = 1; ready.notify(); }  // elsewhere
//
// A Condition is used while holding its lock (its own acquire()/release() and
// the Lockable members lock it). wait() releases the lock completely (an RLock
// entered several times too), sleeps until notified, and takes it back at the
// same depth before returning; wait(timeout) returns false if the timeout ran
// out first. notify(n) wakes at most n of the threads waiting at that moment;
// notify_all() all of them. wait()/notify() without holding the lock throw
// mp::ValueError (Python: RuntimeError). As everywhere, a waiter may also
// return without a notify in rare cases (see below): check your predicate in a
// loop, or use wait_for().
//
// Protocol (src/condition.cpp): counters kept under the user's lock and one
// futex sequence word. A waiter counts itself in `sleepers` and notes the
// sequence; notify(n) moves up to n sleepers to `grants`, bumps the sequence and
// wakes the sleepers; a woken waiter that saw the sequence move since it began
// takes a grant under the lock and returns, the others sleep again. notify()
// with nobody waiting makes no system call. A waiter killed while waiting leaves
// one count behind: a later notify may then wake one fewer live waiter than
// asked, or a later waiter may return early (a "spurious" wake-up, which the
// Condition contract allows); nobody is ever stranded or deadlocked.
//
// Safety: a handle may be copied and used from any thread of any process that
// has it; all copies name one condition and one lock.
// Visibility: as the lock's: what a thread wrote while holding the lock is
// visible to the next thread that holds it, in particular to a woken waiter.
// Lifetime: the condition's counters live in their own anonymous MAP_SHARED
// region, the lock in its own; both are inherited by children forked
// afterwards and freed by the kernel with the last handle.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <type_traits>

#include "mp/detail/acquirable.hpp"
#include "mp/detail/clock.hpp"
#include "mp/detail/export.hpp"
#include "mp/detail/lock_state.hpp"
#include "mp/lock.hpp"
#include "mp/rlock.hpp"

namespace mp {

namespace detail {

// INV1  sleepers + grants = the number of threads inside wait() (counting any
//       killed there): each enters with sleepers += 1 and leaves either by
//       taking a grant or, timed out with no grant, by sleepers -= 1. All three
//       happen under the user's lock, as do notify()'s moves.
// INV2  a waiter may take a grant only if `sequence` changed since it began
//       (a notify() came after it started waiting); every grant was made for a
//       waiter present at that notify(), so some waiter is always entitled to it.
struct ConditionState {
  static constexpr std::uint32_t kMagic = 0x4e43504d;  // "MPCN"
  static constexpr std::uint32_t kVersion = 1;

  const std::uint32_t magic = kMagic;
  const std::uint32_t version = kVersion;
  std::atomic<std::uint32_t> sequence{0};  // the futex word: +1 per notify that grants
  std::uint32_t sleepers = 0;              // INV1; under the lock
  std::atomic<std::uint32_t> grants{0};    // INV1, INV2; written under the lock, read outside as a hint
  std::uint32_t reserved = 0;
};

static_assert(std::is_standard_layout_v<ConditionState>, "ConditionState is shared between processes");
static_assert(sizeof(ConditionState) == 24, "ConditionState layout changed: bump kVersion");
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);

}  // namespace detail

class MP_API Condition : public detail::Acquirable<Condition> {
 public:
  // Condition::Condition(): over a new mp::RLock (Python's default).
  Condition();
  // Condition::Condition(lock): over the given lock; its other handles stay
  // usable and name the same lock.
  explicit Condition(const Lock& lock);
  explicit Condition(const RLock& lock);

  // Condition::acquire...(), lock(), try_lock...(): take the underlying lock
  // (from detail::Acquirable; as Lock / RLock).
  // Condition::release() (also unlock()): mp::ValueError if not held.
  void release() { detail::lock_release(*lock_); }

  // Condition::wait(): releases the lock fully, sleeps (futex) until
  // notified, re-acquires it. mp::ValueError if the caller does not hold it.
  void wait() { (void)wait_until(detail::Deadline::never()); }

  // Condition::wait(timeout): as wait(); false if the timeout ran out first
  // (the lock is held again either way).
  template <class Rep, class Period>
  bool wait(std::chrono::duration<Rep, Period> timeout) {
    return wait_until(detail::Deadline::after(timeout));
  }

  // Condition::wait_for(predicate, timeout): waits until predicate() is true
  // or the timeout runs out; returns predicate()'s last value. Lock held.
  template <class Predicate, class Rep, class Period>
  bool wait_for(Predicate predicate, std::chrono::duration<Rep, Period> timeout) {
    const auto deadline = detail::Deadline::after(timeout);
    bool result = predicate();
    while (!result && !deadline.expired()) {
      (void)wait_until(deadline);
      result = predicate();
    }
    return result;
  }

  // Condition::wait_for(predicate): waits as long as it takes; returns true.
  template <class Predicate>
  bool wait_for(Predicate predicate) {
    while (!predicate()) wait();
    return true;
  }

  // Condition::notify(n): wakes at most n of the current waiters. Lock held;
  // mp::ValueError if not held or n < 0. No system call when nobody waits.
  void notify(int n = 1);

  // Condition::notify_all(): wakes every current waiter. Lock held.
  void notify_all();

 private:
  friend class detail::Acquirable<Condition>;
  bool acquire_with(detail::AcquireWait wait, const detail::Deadline& deadline) {
    return detail::lock_acquire(*lock_, wait, deadline);
  }
  bool wait_until(const detail::Deadline& deadline);
  void notify_up_to(std::uint32_t n, const char* caller);

  std::shared_ptr<detail::LockState> lock_;
  std::shared_ptr<detail::ConditionState> state_;
};

}  // namespace mp
