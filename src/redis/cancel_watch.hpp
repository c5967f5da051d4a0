// src/redis/cancel_watch.hpp — what a worker host hears of cancelled tasks (private).
//
// RemoteResult::cancel() runs mp2p_cancel (functions.cpp): a task still waiting on the server
// is removed there; any other is marked in the hash mpq:{N}:cancelled (id -> 1) and its id
// published on mpq:{N}:cancel. A host's CancelWatch subscribes to that channel, and after every
// (re)subscription reads the whole hash, so a host that was away (or started later) still
// learns every mark: subscribing first and reading second misses nothing in between.
//
// Errors: none escape. While the server is away, poll() returns nothing and tries to subscribe
// again at most once a second (the task queue's own calls report an outage).
// Safety: one thread (the host's loop). Lifetime: the host's; closes its connections.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "link.hpp"

namespace mp::redis::impl {

class CancelWatch {
 public:
  // CancelWatch(endpoint, prefix): for the pool whose keys start with prefix ("mpq:{N}:").
  // Keeps a pointer to endpoint.
  CancelWatch(const Endpoint& endpoint, std::string prefix)
      : prefix_(std::move(prefix)), subscriber_(endpoint), commands_(endpoint) {}

  // CancelWatch::poll(): the ids marked cancelled since the last poll (after a (re)subscription:
  // every id marked on the server). Waits for nothing but a (re)subscription (at most 1 s).
  std::vector<std::string> poll();
  // CancelWatch::stopping(ids): this host holds these tasks and is stopping them: their marks say
  // so ("stopping" instead of "1"), for whoever watches the server (best effort).
  void stopping(const std::vector<std::string>& ids);
  // CancelWatch::forget(ids): these tasks were dropped or stopped by this host and acknowledged:
  // their marks are removed from the server (best effort: the hash expires a day after the last
  // cancel anyway).
  void forget(const std::vector<std::string>& ids);

 private:
  std::vector<std::string> subscribe();

  std::string prefix_;
  Link subscriber_;  // SUBSCRIBEd to prefix_ + "cancel"
  Link commands_;    // HKEYS / HDEL
  std::chrono::steady_clock::time_point next_try_{};
};

}  // namespace mp::redis::impl
