// src/redis/session.hpp — retrying one public call across a lost server; per-process state (private).
//
// Retry: a public call runs its attempt; a LinkFailure starts (or continues) an
// outage. The call reconnects every 100 ms until the server answers again or
// the outage budget runs out: min(the call's own deadline, server_timeout after
// the outage began), but at least 500 ms so that a stale pooled connection
// (the server restarted since it was used) gets a real reconnect. Then
// mp::ConnectionError names the server, the call and the last reason.
//
// PerProcess<State>: the state a handle keeps for the process using it
// (sockets, consumer identity, background threads). A child forked after the
// handle was made must not use the parent's sockets or threads, so the first
// call in a new process abandons the inherited state (closes what it safely
// can, leaks the rest on purpose: the threads behind it do not exist in the
// child) and builds a fresh one.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "link.hpp"
#include "mp/errors.hpp"

namespace mp::redis::impl {

using Clock = mp::detail::MonotonicClock;

class Retry {
 public:
  // what and object name the call in the error ("put()", "queue \"jobs\""); both must outlive the Retry.
  Retry(const Endpoint& endpoint, std::chrono::milliseconds server_timeout, Deadline user, const char* what,
        const std::string& object)
      : endpoint_(endpoint), server_timeout_(server_timeout), user_(user), what_(what), object_(object) {}

  // Retry::operator()(attempt): runs attempt() until it returns without a
  // LinkFailure; ConnectionError once the outage budget is spent.
  template <class Attempt>
  auto operator()(Attempt&& attempt) -> decltype(attempt()) {
    for (;;) {
      try {
        auto result = attempt();
        outage_end_.reset();
        return result;
      } catch (const LinkFailure& failure) {
        on_failure(failure.what());
      }
    }
  }

  // Retry::reply_deadline(blocking): how long an attempt that blocks on the
  // server for `blocking` may wait for its reply before the link counts as lost.
  [[nodiscard]] Deadline reply_deadline(Clock::duration blocking = Clock::duration::zero()) const {
    auto now = Clock::now();
    if (user_.is_never()) return Deadline::at(now + blocking + server_timeout_);
    auto limit = std::max(user_.when(), now + blocking) + std::chrono::seconds(1);
    return Deadline::at(std::min(limit, now + blocking + server_timeout_));
  }
  [[nodiscard]] int failures() const noexcept { return failures_; }

 private:
  void on_failure(const std::string& reason) {
    ++failures_;
    auto now = Clock::now();
    if (!outage_end_) {
      auto end = now + server_timeout_;
      if (!user_.is_never())
        end = std::min(end, std::max(user_.when(), now + std::chrono::milliseconds(500)));
      outage_end_ = end;
    }
    if (now >= *outage_end_) {
      throw mp::ConnectionError("mp::redis: " + std::string(what_) + " (" + object_ + "): Redis server " +
                                endpoint_.url + " (" + endpoint_.host + ":" + std::to_string(endpoint_.port) +
                                ") is unreachable: " + reason + "; not regained within the call's timeout");
    }
    auto pause = std::min<Clock::duration>(std::chrono::milliseconds(100), *outage_end_ - now);
    std::this_thread::sleep_for(pause);
  }

  const Endpoint& endpoint_;
  std::chrono::milliseconds server_timeout_;
  Deadline user_;
  const char* what_;
  const std::string& object_;
  std::optional<Clock::time_point> outage_end_;
  int failures_ = 0;
};

// Objects abandoned in a forked child: kept reachable (so leak checkers stay
// quiet) and never destroyed (their threads live only in the parent).
void keep_forever(std::shared_ptr<void> object);

template <class State>
class PerProcess {
 public:
  explicit PerProcess(std::shared_ptr<State> state) : state_(std::move(state)), pid_(::getpid()) {}
  PerProcess(const PerProcess&) = delete;
  PerProcess& operator=(const PerProcess&) = delete;
  ~PerProcess() {
    if (pid_.load(std::memory_order_relaxed) != ::getpid() && state_) abandon();
  }

  // PerProcess::get(make): this process's state; builds one with make() in a new process.
  template <class Make>
  State& get(Make&& make) {
    pid_t me = ::getpid();
    // pairs with the release store below: a thread that sees its own pid sees the state built for it
    if (pid_.load(std::memory_order_acquire) == me) return *state_;
    std::lock_guard lock(mutex_);
    if (pid_.load(std::memory_order_relaxed) != me) {
      if (state_) abandon();
      state_ = make();
      pid_.store(me, std::memory_order_release);  // pairs with the acquire load above
    }
    return *state_;
  }
  // PerProcess::owned(): the state, if it was built by this process.
  [[nodiscard]] State* owned() noexcept {
    return pid_.load(std::memory_order_acquire) == ::getpid() ? state_.get() : nullptr;
  }

 private:
  void abandon() {
    state_->abandon_after_fork();
    keep_forever(std::move(state_));
  }

  std::mutex mutex_;
  std::shared_ptr<State> state_;
  std::atomic<pid_t> pid_;
};

}  // namespace mp::redis::impl
