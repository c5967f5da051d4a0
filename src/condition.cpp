// src/condition.cpp — the protocol behind mp::Condition (cohorts and
// INV1..INV4 in condition.hpp).
//
// Why no notify is lost: a waiter prepares its wait on the event count while
// it still holds the lock, and notify() changes the cohorts while holding the
// lock and then notifies; the lock orders the two, so the event count's
// guarantee (detail/event_count.hpp) applies: the waiter's wait returns.
//
// Why notify(n) wakes at most n: a waiter returns "notified" only by taking a
// grant of its own cohort (INV2), and notify(n) makes at most n grants, each
// to a cohort with at least that many ungranted members, all of whom were
// waiting at that moment. A waiter killed inside wait() stays a member of its
// cohort: its cohort may receive one grant that nobody takes (one wake-up
// fewer), but that grant can never be taken by a later waiter, who is always
// in a newer cohort (issue 9, defect 13: the old single grant counter let two
// later waiters share a dead one's spare grant and wake two for a notify(1)).
// Every sleeper is woken on each notify (the event count wakes all), so a
// woken waiter killed before taking its grant cannot strand it: another
// member of that cohort takes it; the others find no grant and sleep again.
#include "mp/condition.hpp"

#include <algorithm>
#include <climits>
#include <string>

#include "mp/detail/shm.hpp"
#include "mp/errors.hpp"

namespace mp {

using detail::ConditionCohort;
using detail::ConditionState;

namespace {

// All of these run under the user's lock.

// remove_cohort(c, index): INV1: a cohort with no member left goes.
void remove_cohort(ConditionState& c, std::uint32_t index) noexcept {
  std::copy(c.cohorts + index + 1, c.cohorts + c.cohort_count, c.cohorts + index);
  --c.cohort_count;
}

// join_cohort(c): INV3: the newest cohort while it has no grants, else a new
// one. Returns the cohort id the waiter looks for later.
std::uint32_t join_cohort(ConditionState& c) noexcept {
  if (c.cohort_count > 0) {
    ConditionCohort& newest = c.cohorts[c.cohort_count - 1];
    if (newest.granted == 0) {
      ++newest.waiting;
      return newest.id;
    }
  }
  if (c.cohort_count == ConditionState::kMaxCohorts) {
    // Full: the two oldest are fully granted (INV3, kMaxCohorts > 3), so
    // their members are notified alike; merge the older into the newer.
    c.cohorts[1].waiting += c.cohorts[0].waiting;
    c.cohorts[1].granted += c.cohorts[0].granted;
    remove_cohort(c, 0);
  }
  const std::uint32_t id = c.next_cohort_id++;
  c.cohorts[c.cohort_count++] = ConditionCohort{id, 1, 0};
  return id;
}

// find_cohort(c, id): INV3: the first cohort whose id >= id (ids compared
// modulo 2^32); cohort_count if none (only after corruption by a holder
// that died mid-update).
std::uint32_t find_cohort(const ConditionState& c, std::uint32_t id) noexcept {
  for (std::uint32_t i = 0; i < c.cohort_count; ++i)
    if (static_cast<std::int32_t>(c.cohorts[i].id - id) >= 0) return i;
  return c.cohort_count;
}

// leave_cohort(c, index, granted): INV2: a member leaves, taking a grant or not.
void leave_cohort(ConditionState& c, std::uint32_t index, bool granted) noexcept {
  ConditionCohort& cohort = c.cohorts[index];
  if (granted) --cohort.granted;
  if (--cohort.waiting == 0) remove_cohort(c, index);
}

}  // namespace

Condition::Condition() : Condition(RLock()) {}

Condition::Condition(const Lock& lock)
    : lock_(detail::LockAccess::state(lock)),
      state_(detail::make_shared_object<ConditionState>("Condition")) {}

Condition::Condition(const RLock& lock)
    : lock_(detail::LockAccess::state(lock)),
      state_(detail::make_shared_object<ConditionState>("Condition")) {}

bool Condition::wait_until(const detail::Deadline& deadline) {
  auto& lock = *lock_;
  if (!detail::lock_held_by_caller(lock))
    throw ValueError("Condition::wait(): the calling process/thread must hold the condition's lock");
  auto& c = *state_;
  const std::uint32_t cohort = join_cohort(c);
  for (;;) {
    // Prepared under the lock: see "no notify is lost" above.
    const auto key = c.waiters.prepare_wait();
    const std::uint32_t depth = detail::lock_release_fully(lock);
    const detail::WaitResult result = c.waiters.wait(key, deadline);
    detail::lock_reacquire(lock, depth);
    // Under the lock again: INV2 and INV3 decide.
    const std::uint32_t index = find_cohort(c, cohort);
    if (index < c.cohort_count && c.cohorts[index].granted != 0) {
      leave_cohort(c, index, true);  // we leave notified
      return true;
    }
    if (result == detail::WaitResult::timed_out || deadline.expired()) {
      if (index < c.cohort_count) leave_cohort(c, index, false);  // we leave not notified
      return false;
    }
  }
}

void Condition::notify(int n) {
  if (n < 0) throw ValueError("Condition::notify(n): n must be >= 0, got " + std::to_string(n));
  notify_up_to(static_cast<std::uint32_t>(n), "Condition::notify()");
}

void Condition::notify_all() { notify_up_to(UINT32_MAX, "Condition::notify_all()"); }

void Condition::notify_up_to(std::uint32_t n, const char* caller) {
  if (!detail::lock_held_by_caller(*lock_))
    throw ValueError(std::string(caller) + ": the calling process/thread must hold the condition's lock");
  auto& c = *state_;
  std::uint32_t granted = 0;
  // INV3: oldest cohorts first (Python wakes the longest waiting first).
  for (std::uint32_t i = 0; i < c.cohort_count && n > 0; ++i) {
    ConditionCohort& cohort = c.cohorts[i];
    const std::uint32_t give = std::min(n, cohort.waiting - cohort.granted);  // INV2
    cohort.granted += give;
    n -= give;
    granted += give;
  }
  if (granted != 0) c.waiters.notify_all();  // INV4; nobody waits: no system call
}

}  // namespace mp
