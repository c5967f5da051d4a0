// mp/detail/lock_state.hpp — the shared-memory object behind mp::Lock and
// mp::RLock, and the operations Lock, RLock, Condition and the shared values
// perform on it.
//
// One LockState lives in its own shared region, a memfd (mp/detail/shm.hpp),
// or inside a Value's / Array's region. It is an ABI between processes (STYLE rule 5).
//
// Invariants:
//   INV1  `depth` is read and written only by the holder of `mutex` (so the
//         mutex orders every access); it is 0 whenever the mutex is free.
//   INV2  a plain lock's depth is always 0; a recursive lock's depth is the
//         number of acquires not yet released by its holder (>= 1 while held).
//   INV3  `previous_owner_died` is written only by a holder, right after its
//         acquire: 1 if that acquire took over from a dead holder, else 0.
// A holder that dies breaks nothing: the next acquire gets EOWNERDEAD and
// rewrites depth (INV1, INV2) and previous_owner_died (INV3) before use.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <type_traits>

#include "mp/detail/acquirable.hpp"
#include "mp/detail/clock.hpp"
#include "mp/detail/export.hpp"
#include "mp/detail/robust_mutex.hpp"

namespace mp {
class Lock;
class RLock;
}  // namespace mp

namespace mp::detail {

enum class LockKind : std::uint32_t {
  plain = 0x504c,      // mp::Lock: not re-entrant, errorcheck mutex
  recursive = 0x5243,  // mp::RLock: re-entrant, depth counted here
};

struct LockState {
  static constexpr std::uint32_t kMagic = 0x4b4c504d;  // "MPLK"
  static constexpr std::uint32_t kVersion = 1;

  explicit LockState(LockKind k) noexcept
      : kind(k), mutex(k == LockKind::plain ? MutexKind::errorcheck : MutexKind::normal) {}

  const std::uint32_t magic = kMagic;
  const std::uint32_t version = kVersion;
  const LockKind kind;
  std::atomic<std::uint32_t> previous_owner_died{0};  // INV3
  std::uint32_t depth = 0;                            // INV1, INV2
  std::uint32_t reserved = 0;
  RobustMutex mutex;
};

static_assert(std::is_standard_layout_v<LockState>, "LockState is shared between processes");
static_assert(sizeof(LockState) == 24 + sizeof(pthread_mutex_t), "LockState layout changed: bump kVersion");
static_assert(alignof(LockState) == alignof(pthread_mutex_t));
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);

// lock_acquire(state, wait, deadline): true once held. Throws mp::ValueError
// when a plain lock's holder blocks on it without a timeout (it would wait for
// itself forever); with a timeout that wait runs out and gives false, as in Python.
MP_API bool lock_acquire(LockState& state, AcquireWait wait, const Deadline& deadline);

// lock_acquire_finish(state, wait, deadline, rc): the rest of lock_acquire()
// once the mutex call returned `rc`.
MP_API bool lock_acquire_finish(LockState& state, AcquireWait wait, const Deadline& deadline, int rc);

// lock_release(state): releases one level. mp::ValueError if the calling
// process + thread does not hold it.
MP_API void lock_release(LockState& state);

// throw_not_held(state): the mp::ValueError for releasing a lock not held.
[[noreturn]] MP_API void throw_not_held(const LockState& state);

// lock_held_by_caller(state): does this process + thread hold it?
[[nodiscard]] inline bool lock_held_by_caller(const LockState& state) noexcept {
  return state.mutex.held_by_caller();
}

// lock_release_fully(state): for Condition::wait: releases every level the
// caller holds and returns how many (1 for a plain lock). Precondition: held.
MP_API std::uint32_t lock_release_fully(LockState& state) noexcept;

// lock_reacquire(state, depth): blocks until held again, with `depth` levels.
MP_API void lock_reacquire(LockState& state, std::uint32_t depth);

// make_lock_state(kind): a LockState in its own shared region.
MP_API std::shared_ptr<LockState> make_lock_state(LockKind kind);

// LockAccess: how Condition, Value, Array (and tests) reach a Lock's or an
// RLock's state without making it public API.
struct MP_API LockAccess {
  static const std::shared_ptr<LockState>& state(const Lock& lock) noexcept;
  static const std::shared_ptr<LockState>& state(const RLock& lock) noexcept;
  static Lock make_lock(std::shared_ptr<LockState> state) noexcept;
  static RLock make_rlock(std::shared_ptr<LockState> state) noexcept;
};

}  // namespace mp::detail
