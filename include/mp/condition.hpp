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
// mp::ValueError (Python: RuntimeError). As with any condition variable,
// check your predicate in a loop, or use wait_for().
//
// Protocol (src/condition.cpp): waiters are grouped, under the user's lock,
// into cohorts: those that started waiting between two notifies that woke
// someone. notify(n) grants up to n wake-ups to the oldest cohorts first
// (Python's FIFO order), then notifies the event count every mp wait goes
// through (detail/event_count.hpp); a woken waiter takes the lock and
// returns "notified" only by taking a grant of its own cohort. So a grant is
// only ever taken by a waiter that was waiting when it was made, and notify(n)
// wakes at most n. notify() with nobody waiting makes no system call. A waiter
// killed while waiting stays counted in its cohort: one later notify may then
// wake one fewer live waiter than asked (its grant goes to the dead one), and
// never more; nobody is ever stranded or deadlocked.
//
// Safety: a handle may be copied and used from any thread of any process that
// has it; all copies name one condition and one lock.
// It is shared by inheritance only: fork, or as an argument of a Process
// under any start method (mp/detail/handle_codec.hpp); never as a value (a
// Queue item, a Pipe message, a Pool argument).
// Visibility: as the lock's: what a thread wrote while holding the lock is
// visible to the next thread that holds it, in particular to a woken waiter.
// Lifetime: the condition's counters live in their own shared region (a
// memfd), the lock in its own; children forked afterwards inherit both,
// children started by forkserver or spawn with the handle as an argument map
// both; the kernel frees them with the last handle.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <type_traits>

#include "mp/detail/acquirable.hpp"
#include "mp/detail/clock.hpp"
#include "mp/detail/event_count.hpp"
#include "mp/detail/export.hpp"
#include "mp/detail/handle_codec.hpp"
#include "mp/detail/lock_state.hpp"
#include "mp/lock.hpp"
#include "mp/rlock.hpp"

namespace mp {

namespace detail {

// A cohort: the waiters that began waiting while it was the newest cohort
// with no grants. Every field is read and written only under the user's lock.
struct ConditionCohort {
  std::uint32_t id;       // increasing along the table (INV1)
  std::uint32_t waiting;  // members inside wait(), counting any killed there
  std::uint32_t granted;  // grants made to this cohort and not yet taken (INV2)
};

// INV1  cohorts[0..cohort_count) are ordered by id, oldest first; an entry
//       with waiting == 0 is removed at once.
// INV2  0 <= granted <= waiting for each cohort; a waiter returns notified
//       only by taking one of its own cohort's grants (granted -= 1,
//       waiting -= 1), so each grant wakes at most one waiter.
// INV3  notify() grants oldest first, so every cohort but the newest two is
//       fully granted (granted == waiting); a new waiter joins the newest
//       cohort while it has no grants, else opens a new one. Fully granted
//       cohorts may merge (their members are all notified alike): a waiter
//       finds its cohort as the first entry whose id >= its own.
// INV4  every notify() that grants is followed by waiters.notify_all().
struct ConditionState {
  static constexpr std::uint32_t kMagic = 0x4e43504d;  // "MPCN"
  static constexpr std::uint32_t kVersion = 2;
  static constexpr std::uint32_t kMaxCohorts = 32;

  const std::uint32_t magic = kMagic;
  const std::uint32_t version = kVersion;
  std::uint32_t cohort_count = 0;    // INV1; under the lock
  std::uint32_t next_cohort_id = 0;  // under the lock
  EventCount waiters;                // INV4
  ConditionCohort cohorts[kMaxCohorts] = {};
};

static_assert(std::is_standard_layout_v<ConditionState>, "ConditionState is shared between processes");
static_assert(sizeof(ConditionState) == 32 + 12 * ConditionState::kMaxCohorts,
              "ConditionState layout changed: bump kVersion");

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

  // Condition::wait(): releases the lock fully, sleeps (event count) until
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

  template <class T, class Enable>
  friend struct mp::codec;
  Condition(detail::AdoptTag, std::shared_ptr<detail::LockState> lock,
            std::shared_ptr<detail::ConditionState> state) noexcept
      : lock_(std::move(lock)), state_(std::move(state)) {}

  std::shared_ptr<detail::LockState> lock_;
  std::shared_ptr<detail::ConditionState> state_;
};

// codec<Condition>: its lock, then its counters; only as a Process argument
// (handle_codec.hpp). A Lock passed beside it maps the same lock.
template <>
struct codec<Condition> {
  static constexpr bool shared_by_inheritance = true;
  static void encode(Writer& writer, const Condition& condition) {
    detail::put_shared_object(writer, condition.lock_, "mp::Condition");
    detail::put_shared_object(writer, condition.state_, "mp::Condition");
  }
  static Condition make(Reader& reader) {
    auto lock = detail::take_shared_object<detail::LockState>(reader, "mp::Condition");
    auto state = detail::take_shared_object<detail::ConditionState>(reader, "mp::Condition");
    return Condition(detail::AdoptTag{}, std::move(lock), std::move(state));
  }
  static void decode(Reader& reader, Condition& condition) { condition = make(reader); }
  static void signature(std::string& out) { out += "handle<Condition>"; }
};

}  // namespace mp
