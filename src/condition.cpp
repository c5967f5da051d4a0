// src/condition.cpp — the protocol behind mp::Condition (INV1, INV2 in
// condition.hpp).
//
// Why no notify is lost: a waiter reads `sequence` (the value it will sleep
// on) while it still holds the lock, and notify() bumps `sequence` while
// holding the lock; so a notify() that comes after the waiter released the
// lock changes the word, and the kernel's "word still what I read?" check in
// futex_wait fails or the wake finds it asleep.
//
// Why notify(n) wakes at most n: a waiter returns "notified" only by taking a
// grant, and notify(n) creates at most n grants. It wakes every sleeper
// (FUTEX_WAKE all) so that a woken waiter killed before taking its grant
// cannot strand the grant: another entitled waiter (INV2) takes it. Woken
// waiters that find no grant go back to sleep without touching the lock.
#include "mp/condition.hpp"

#include <algorithm>
#include <climits>
#include <string>

#include "mp/detail/futex.hpp"
#include "mp/detail/shm.hpp"
#include "mp/errors.hpp"

namespace mp {

using detail::ConditionState;

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
  // Under the lock (as every notify()): relaxed is enough, the lock orders it.
  const std::uint32_t entry = c.sequence.load(std::memory_order_relaxed);
  ++c.sleepers;  // INV1: we are in
  std::uint32_t expected = entry;
  for (;;) {
    // `expected` was read under the lock: see "no notify is lost" above.
    const std::uint32_t depth = detail::lock_release_fully(lock);
    detail::WaitResult result;
    for (;;) {
      result = detail::futex_wait(c.sequence, expected, deadline);
      if (result == detail::WaitResult::timed_out) break;
      // Acquire: pairs with the release fetch_add in notify_up_to(), so the
      // grants it made are visible when we see its sequence value.
      const std::uint32_t now = c.sequence.load(std::memory_order_acquire);
      // Relaxed: only a hint whether taking the lock is worth it; the grant
      // is taken under the lock below.
      if (now != entry && c.grants.load(std::memory_order_relaxed) != 0) break;
      // Spurious, or every grant is taken: sleep on. A notify() after the
      // load above changes the word, so sleeping on `now` misses nothing.
      expected = now;
    }
    detail::lock_reacquire(lock, depth);
    // Under the lock again: INV1 and INV2 decide.
    std::uint32_t grants = c.grants.load(std::memory_order_relaxed);
    if (c.sequence.load(std::memory_order_relaxed) != entry && grants != 0) {
      c.grants.store(grants - 1, std::memory_order_relaxed);  // under the lock; INV1: we leave notified
      return true;
    }
    if (result == detail::WaitResult::timed_out || deadline.expired()) {
      --c.sleepers;  // INV1: we leave not notified (sleepers >= 1: we are counted there)
      return false;
    }
    expected = c.sequence.load(std::memory_order_relaxed);  // under the lock, for the next sleep
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
  const std::uint32_t moved = std::min(n, c.sleepers);
  if (moved == 0) return;  // nobody waits: no system call
  c.sleepers -= moved;     // INV1: they move to grants
  // Relaxed: under the lock; the release below publishes it to lock-free readers.
  c.grants.store(c.grants.load(std::memory_order_relaxed) + moved, std::memory_order_relaxed);
  // Release: pairs with the acquire load in wait_until(): a waiter that sees
  // this sequence value sees the grants above.
  c.sequence.fetch_add(1, std::memory_order_release);
  detail::futex_wake(c.sequence);
}

}  // namespace mp
