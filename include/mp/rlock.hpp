// mp/rlock.hpp — mp::RLock, Python's multiprocessing.RLock: a re-entrant
// robust lock shared by processes and threads.
//
//   mp::RLock lock;
//   {
//     std::lock_guard outer(lock);
//     std::lock_guard inner(lock);  // the same thread may take it again
//   }                               // free once both guards are gone
//   lock.release();                 // throws mp::ValueError: not held
//
// The holder ("this process + thread": its kernel thread id) may acquire it
// again; it is free once released as many times as acquired. Releasing it
// without holding it throws mp::ValueError. A child forked by a holding thread
// does not hold it (the child is another process: it blocks like anyone else).
// A holder that dies, at any depth, frees it: the next acquire succeeds at
// once, with depth 1, and previous_owner_died() is true.
//
// Safety: an RLock handle may be copied and used from any thread of any
// process that has it; all copies name one lock. It is shared by inheritance
// only (fork, or a Process argument under any start method), as mp::Lock.
// Visibility: everything a thread wrote before its last release() is visible
// to the thread whose acquire() returns next.
// Lifetime: as mp::Lock: its own shared region (a memfd), inherited by children
// forked afterwards or started with it as an argument, freed by the kernel
// with the last handle.
#pragma once

#include <memory>

#include "mp/detail/acquirable.hpp"
#include "mp/detail/export.hpp"
#include "mp/detail/handle_codec.hpp"
#include "mp/detail/lock_state.hpp"

namespace mp {

class MP_API RLock : public detail::Acquirable<RLock> {
 public:
  // RLock::RLock(): a new, free re-entrant lock in its own shared region.
  RLock();

  // RLock::acquire...(), lock(), try_lock...(): from detail::Acquirable. The
  // holder gets it again at once (depth + 1); anyone else blocks on the robust
  // mutex until it is free or the deadline.

  // RLock::release() (also unlock()): one level. mp::ValueError if this
  // process + thread does not hold it.
  void release() { detail::lock_release(*state_); }

  // RLock::previous_owner_died(): true if the acquire that made the current
  // (or latest) holder took the lock over from a holder that had died.
  [[nodiscard]] bool previous_owner_died() const noexcept {
    // Relaxed: written by the holder right after its first acquire (INV3).
    return state_->previous_owner_died.load(std::memory_order_relaxed) != 0;
  }

 private:
  friend class detail::Acquirable<RLock>;
  friend struct detail::LockAccess;

  bool acquire_with(detail::AcquireWait wait, const detail::Deadline& deadline) {
    return detail::lock_acquire(*state_, wait, deadline);
  }
  explicit RLock(std::shared_ptr<detail::LockState> state) noexcept : state_(std::move(state)) {}

  std::shared_ptr<detail::LockState> state_;
};

// codec<RLock>: an RLock travels only as a Process argument (handle_codec.hpp).
template <>
struct codec<RLock> {
  static constexpr bool shared_by_inheritance = true;
  static void encode(Writer& writer, const RLock& lock) {
    detail::put_shared_object(writer, detail::LockAccess::state(lock), "mp::RLock");
  }
  static RLock make(Reader& reader) {
    return detail::LockAccess::make_rlock(detail::take_shared_object<detail::LockState>(reader, "mp::RLock"));
  }
  static void decode(Reader& reader, RLock& lock) { lock = make(reader); }
  static void signature(std::string& out) { out += "handle<RLock>"; }
};

}  // namespace mp
