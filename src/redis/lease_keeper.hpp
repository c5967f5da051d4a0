// src/redis/lease_keeper.hpp — keeps one lease alive from a background thread (private).
//
// A JoinableQueue consumer's liveness key (hb:<cid>) and a held Lock's key are
// both leases: a key with a PX expiry that a thread renews every lease/3 over
// its own connection. LeaseKeeper is that thread; what "renew" means is the
// owner's Renew function, which gets the link, the current holder identity and
// a deadline, and returns:
//   * the holder identity now leased (the same, or a new one: a queue consumer
//     whose lease was lost re-registers under a new cid), or
//   * std::nullopt when the lease is lost for good (a lock): the keeper stops.
// Renew throws LinkFailure (or any error) when it could not tell: try again
// next tick; the lease may run out meanwhile, which the owner's next server-side
// check reports.
//
// Stopping never waits for the server: stop() wakes the thread through an
// eventfd that also interrupts the link's poll(2), so a destructor whose
// server is frozen or gone returns at once (issue 9, defect 12). Every renewal
// waits at most one period (lease/3), connect included.
//
// Safety: holder(), surely_held(), lost() from any thread (mutex_ guards the
// state). Lifetime: stop() (or the destructor) joins the thread; in a forked
// child the thread does not exist: abandon_after_fork() closes the child's
// copies of the fds and the object is kept forever, never destroyed.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "link.hpp"
#include "retry.hpp"

namespace mp::redis::impl {

class LeaseKeeper {
 public:
  using Renew = std::function<std::optional<std::string>(Link&, const std::string& holder, Deadline)>;

  // LeaseKeeper(endpoint, lease, holder, leased_at, renew): starts the thread; leased_at is
  // when the lease was last set (sent). mp::Error if the eventfd cannot be made.
  LeaseKeeper(const Endpoint& endpoint, std::chrono::milliseconds lease, std::string holder,
              Clock::time_point leased_at, Renew renew);
  LeaseKeeper(const LeaseKeeper&) = delete;
  LeaseKeeper& operator=(const LeaseKeeper&) = delete;
  ~LeaseKeeper();

  // LeaseKeeper::stop(): ends the renewals without waiting for the server; true if the lease
  // was lost meanwhile. Idempotent.
  bool stop() noexcept;
  // LeaseKeeper::holder(): the identity the lease is held under now.
  [[nodiscard]] std::string holder();
  // LeaseKeeper::surely_held(holder): holder's lease was renewed less than half a lease ago,
  // so whatever it guards cannot have been reaped yet (the key lives a full lease after renewal).
  [[nodiscard]] bool surely_held(const std::string& holder);
  // LeaseKeeper::abandon_after_fork(): in a child; closes this process's fds only.
  void abandon_after_fork() noexcept;

 private:
  void loop();

  Link link_;  // used by the thread only
  std::chrono::milliseconds lease_;
  Renew renew_;
  int wake_fd_ = -1;  // eventfd: written by stop(), interrupts the link's waits
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;             // guarded by mutex_
  bool lost_ = false;             // guarded by mutex_
  std::string holder_;            // guarded by mutex_
  Clock::time_point renewed_at_;  // guarded by mutex_: when the last successful renewal was sent
  std::thread thread_;
};

}  // namespace mp::redis::impl
