// mp/lock.hpp — mp::Lock, Python's multiprocessing.Lock: a robust mutex
// shared by processes and threads.
//
//   mp::Lock lock;
//   mp::Process p([](mp::Lock lock) { std::lock_guard hold(lock); std::puts("child"); }, lock);
//   p.start();
//   { std::scoped_lock hold(lock); std::puts("parent"); }
//   p.join();
//
// A Lock is held by one thread of one process at a time ("this process +
// thread" is the kernel thread id: see detail/thread_identity.hpp). It is not
// re-entrant (mp::RLock is): a holder that acquires it again without a timeout
// gets mp::ValueError instead of waiting for itself forever. Only the holder
// may release it (mp::ValueError otherwise). If the holder dies while holding
// it, even by SIGKILL, the next acquire succeeds at once and
// previous_owner_died() tells the new holder so it can repair what the dead
// one left half-done.
//
// Safety: a Lock handle may be copied and used from any thread of any process
// that has it; all copies name one lock. A thread may hold it across a fork():
// the child (a different process) does not hold it. A process gets it by
// inheritance: fork, or as an argument of a Process under any start method
// (forkserver and spawn children receive its memfd: mp/detail/handle_codec.hpp);
// it is not a value (a Queue item or Pool argument holding one is refused).
// Visibility: everything a thread wrote before release() is visible to the
// thread whose acquire() returns next (pthread mutex semantics, across processes).
// Lifetime: the lock lives in its own shared region (a memfd, mapped
// MAP_SHARED) made by the constructor; children forked afterwards inherit it,
// children started by forkserver or spawn with it as an argument map it too;
// the kernel frees it when the last process drops its last handle (or exits).
// Nothing is named, nothing is left in /dev/shm.
#pragma once

#include <memory>

#include "mp/detail/acquirable.hpp"
#include "mp/detail/export.hpp"
#include "mp/detail/handle_codec.hpp"
#include "mp/detail/lock_state.hpp"

namespace mp {

class MP_API Lock : public detail::Acquirable<Lock> {
 public:
  // Lock::Lock(): a new, free lock in its own shared region. mp::Error if the
  // kernel refuses the memory.
  Lock();

  // Lock::acquire(), acquire(block), acquire(timeout), lock(), try_lock(),
  // try_lock_for(d), try_lock_until(t): from detail::Acquirable. They block on
  // the robust mutex (futex) until acquired or the deadline; return whether
  // acquired; throw mp::ValueError when the holder itself blocks without timeout.

  // Lock::release() (also unlock()): mp::ValueError if this process + thread
  // does not hold it. Checked before unlocking (the robust mutex would also
  // refuse with EPERM, but a non-owner must not even try: ThreadSanitizer
  // rightly reports that as misuse).
  void release() {
    detail::LockState& state = *state_;
    if (!state.mutex.held_by_caller() || !state.mutex.unlock()) [[unlikely]]
      detail::throw_not_held(state);
  }

  // Lock::previous_owner_died(): true if the acquire that made the current
  // (or latest) holder took the lock over from a holder that had died.
  [[nodiscard]] bool previous_owner_died() const noexcept {
    // Relaxed: written by the holder right after its acquire (INV3); the
    // holder reads its own write, anyone else gets a snapshot.
    return state_->previous_owner_died.load(std::memory_order_relaxed) != 0;
  }

 private:
  friend class detail::Acquirable<Lock>;
  friend struct detail::LockAccess;
  explicit Lock(std::shared_ptr<detail::LockState> state) noexcept : state_(std::move(state)) {}

  bool acquire_with(detail::AcquireWait wait, const detail::Deadline& deadline) {
    if (wait == detail::AcquireWait::until_deadline && deadline.is_never()) {
      // The fast path, inline: a robust pthread_mutex_lock, and a load
      // (relaxed: INV3, only holders write it) to see that the
      // previous_owner_died flag needs no reset.
      detail::LockState& state = *state_;
      const int rc = state.mutex.lock_native();
      if (rc == 0 && state.previous_owner_died.load(std::memory_order_relaxed) == 0) [[likely]]
        return true;
      return detail::lock_acquire_finish(state, wait, deadline, rc);
    }
    return detail::lock_acquire(*state_, wait, deadline);
  }

  std::shared_ptr<detail::LockState> state_;
};

// codec<Lock>: a Lock travels only as a Process argument (handle_codec.hpp).
template <>
struct codec<Lock> {
  static constexpr bool shared_by_inheritance = true;
  static void encode(Writer& writer, const Lock& lock) {
    detail::put_shared_object(writer, detail::LockAccess::state(lock), "mp::Lock");
  }
  static Lock make(Reader& reader) {
    return detail::LockAccess::make_lock(detail::take_shared_object<detail::LockState>(reader, "mp::Lock"));
  }
  static void decode(Reader& reader, Lock& lock) { lock = make(reader); }
  static void signature(std::string& out) { out += "handle<Lock>"; }
};

}  // namespace mp
