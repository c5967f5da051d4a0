// src/lock.cpp — Lock and RLock over detail::LockState (see lock_state.hpp for
// the invariants INV1..INV3 kept here).
#include <time.h>

#include <cerrno>
#include <climits>
#include <string>

#include "mp/detail/shm.hpp"
#include "mp/detail/system_error.hpp"
#include "mp/errors.hpp"
#include "mp/lock.hpp"
#include "mp/rlock.hpp"

namespace mp::detail {
namespace {

const char* type_name(const LockState& state) noexcept {
  return state.kind == LockKind::plain ? "Lock" : "RLock";
}

// note_acquired(state, owner_died): the caller has just become the holder.
void note_acquired(LockState& state, bool owner_died) noexcept {
  // INV1/INV2: we hold the mutex; a dead holder's depth is void.
  if (state.kind == LockKind::recursive) state.depth = 1;
  // INV3. Relaxed: only holders write it, and the mutex hand-over orders the
  // writes of successive holders; the load first keeps the common case
  // (no death, flag already 0) free of a store.
  if (owner_died || state.previous_owner_died.load(std::memory_order_relaxed) != 0)
    state.previous_owner_died.store(owner_died ? 1 : 0, std::memory_order_relaxed);
}

// sleep_until(deadline): what a holder waiting for itself does with a timeout.
void sleep_until(const Deadline& deadline) noexcept {
  timespec abs = deadline.as_timespec();
  while (::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &abs, nullptr) == EINTR) {
  }
}

}  // namespace

bool lock_acquire(LockState& state, AcquireWait wait, const Deadline& deadline) {
  if (state.kind == LockKind::recursive && state.mutex.held_by_caller()) {
    if (state.depth == UINT32_MAX) throw ValueError("RLock::acquire(): recursion depth overflow");
    ++state.depth;  // INV1: we hold it
    return true;
  }
  int rc = wait == AcquireWait::no ? state.mutex.try_lock_native() : state.mutex.lock_native(deadline);
  return lock_acquire_finish(state, wait, deadline, rc);
}

bool lock_acquire_finish(LockState& state, AcquireWait wait, const Deadline& deadline, int rc) {
  switch (rc) {
    case 0: note_acquired(state, false); return true;
    case EOWNERDEAD: note_acquired(state, true); return true;
    case EBUSY:
    case ETIMEDOUT: return false;
    case EDEADLK:
      // Only the errorcheck (plain) kind says this: the caller holds it.
      if (wait == AcquireWait::no) return false;
      if (deadline.is_never())
        throw ValueError(
            "Lock::acquire(): the calling thread already holds this lock and would wait for itself "
            "forever (mp::Lock is not re-entrant; use mp::RLock)");
      sleep_until(deadline);
      return false;
    default: throw_system_error("pthread_mutex_lock", type_name(state), rc);
  }
}

void throw_not_held(const LockState& state) {
  if (state.kind == LockKind::recursive)
    throw ValueError(
        "RLock::release(): the calling process/thread does not hold this lock "
        "(released more times than acquired, or by another thread or process)");
  throw ValueError(
      "Lock::release(): the calling process/thread does not hold this lock "
      "(it is free, or held by another thread or process)");
}

void lock_release(LockState& state) {
  // Checked first: a non-owner must not call unlock at all.
  if (!state.mutex.held_by_caller()) throw_not_held(state);
  if (state.kind == LockKind::recursive && --state.depth > 0) return;  // INV2: still held
  if (!state.mutex.unlock()) throw_not_held(state);
}

std::uint32_t lock_release_fully(LockState& state) noexcept {
  std::uint32_t depth = state.kind == LockKind::recursive ? state.depth : 1;
  state.depth = 0;  // INV1: 0 whenever free
  state.mutex.unlock();
  return depth;
}

void lock_reacquire(LockState& state, std::uint32_t depth) {
  int rc = state.mutex.lock_native(Deadline::never());
  if (rc != 0 && rc != EOWNERDEAD) throw_system_error("pthread_mutex_lock", type_name(state), rc);
  note_acquired(state, rc == EOWNERDEAD);
  if (state.kind == LockKind::recursive) state.depth = depth;
}

std::shared_ptr<LockState> make_lock_state(LockKind kind) {
  return make_shared_object<LockState>(kind == LockKind::plain ? "Lock" : "RLock", kind);
}

const std::shared_ptr<LockState>& LockAccess::state(const Lock& lock) noexcept { return lock.state_; }
const std::shared_ptr<LockState>& LockAccess::state(const RLock& lock) noexcept { return lock.state_; }
Lock LockAccess::make_lock(std::shared_ptr<LockState> state) noexcept { return Lock(std::move(state)); }
RLock LockAccess::make_rlock(std::shared_ptr<LockState> state) noexcept { return RLock(std::move(state)); }

}  // namespace mp::detail

namespace mp {

Lock::Lock() : state_(detail::make_lock_state(detail::LockKind::plain)) {}

RLock::RLock() : state_(detail::make_lock_state(detail::LockKind::recursive)) {}

}  // namespace mp
