// mp/redis/lock.hpp — mp::redis::Lock: a lease-based lock on one Redis primary.
//
//   mp::redis::Lock lock("redis://10.0.0.5:6379", "ledger");
//   {
//     std::lock_guard hold(lock);                     // Lockable, like mp::Lock
//     storage.write(record, lock.fencing_token());   // the resource rejects older tokens
//   }
//
// Lockable and TimedLockable (lock/unlock/try_lock/try_lock_for/try_lock_until)
// plus Python's acquire()/acquire(block)/acquire(timeout)/release(). The holder
// is a process (all threads of the process share the holding). While held, a
// background thread renews the lease every lease/3; if the holder dies the lock
// is free once its lease (default 10 s) runs out. release() after the lease was
// lost (the process was stopped or cut off longer than the lease) throws
// mp::LockLost: another process may have held the lock meanwhile. Correctness
// across such pauses needs fencing: fencing_token() grows with every acquire
// (INCR on the server); pass it to the resource you protect and have it refuse
// smaller ones. The token survives restarts of a server run with an AOF.
//
// Errors: ValueError for a malformed url, release() by a process that does
// not hold it, or acquire() without timeout by the thread holding it (it is not
// re-entrant: that would wait for itself forever, as mp::Lock refuses too); LockLost as above;
// ConnectionError when the server is lost and not regained within the call's timeout (10 s for calls without
// one).
//
// Safety: a handle may be copied and used from any thread of any process.
// Visibility: Redis orders everything: what the previous holder wrote to the
// server before release() is visible to the next holder's reads of the server.
// Lifetime: the lock lives in the server as "mpl:{name}:*"; a handle dropped
// while held releases it; a process forked while holding does not hold it.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string_view>

#include "mp/redis/core.hpp"

namespace mp::redis {

class Lock {
 public:
  // Lock(url, name, lease = 10s, options = {}): no server round trip yet;
  // ValueError for a malformed url or an empty name. The url may carry a login
  // (see mp/redis.hpp); a refused one is AuthenticationError at the first call.
  template <class Rep = long long, class Period = std::ratio<1>>
  Lock(std::string_view url, std::string_view name,
       std::chrono::duration<Rep, Period> lease = std::chrono::seconds(10), Options options = {})
      : core_(std::make_shared<detail::LockCore>(
            url, name, std::chrono::duration_cast<std::chrono::milliseconds>(lease), options)) {}

  // Lock::acquire(): blocks until held. acquire(block): false at once if taken
  // and !block. acquire(timeout): false if not held within timeout.
  void acquire() { (void)core_->acquire(mp::detail::Deadline::never()); }
  bool acquire(bool block) {
    return core_->acquire(block ? mp::detail::Deadline::never()
                                : mp::detail::Deadline::after(std::chrono::seconds(0)));
  }
  template <class Rep, class Period>
  bool acquire(std::chrono::duration<Rep, Period> timeout) {
    return core_->acquire(mp::detail::Deadline::after(timeout));
  }
  // Lock::release(): ValueError if not held here; LockLost if the lease had run out.
  void release() { core_->release(); }

  void lock() { acquire(); }
  void unlock() { release(); }
  [[nodiscard]] bool try_lock() { return acquire(false); }
  template <class Rep, class Period>
  [[nodiscard]] bool try_lock_for(std::chrono::duration<Rep, Period> timeout) {
    return acquire(timeout);
  }
  template <class Clock, class Duration>
  [[nodiscard]] bool try_lock_until(std::chrono::time_point<Clock, Duration> when) {
    return acquire(when - Clock::now());
  }

  // Lock::fencing_token(): the token of this process's latest acquire (0 before any).
  [[nodiscard]] std::uint64_t fencing_token() const { return core_->fencing_token(); }

 private:
  std::shared_ptr<detail::LockCore> core_;
};

}  // namespace mp::redis
