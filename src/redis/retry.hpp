// src/redis/retry.hpp — one public call's attempts across a lost server (private to libmp_redis).
//
// A public call runs its attempt; a LinkFailure starts (or continues) an
// outage, and the call reconnects every 100 ms until the server answers again
// or the outage budget is spent; then mp::ConnectionError names the server,
// the call and the last reason.
//
// Budget (issue 9, defect 6): the silence counts from when the server last
// owed us nothing, that is when the failed attempt was sent (or, for a
// blocking command, when its reply was due), not from when the failure was
// noticed. So:
//   * a call without a timeout gives up Options::server_timeout (10 s) after
//     the server fell silent, first failed attempt included;
//   * a call with a timeout ends by its timeout plus kGrace (0.5 s): every
//     reply wait ends by max(timeout, reply due + kGrace), and an outage ends
//     at the timeout, or kGrace after the silence began if that is later, so a
//     stale pooled connection (the server restarted since it was used) still
//     gets one real reconnect even for put_nowait.
// Errors other than LinkFailure (refused credentials, wrong reply types,
// ShutDown...) pass through at once: they are answers, not outages.
#pragma once

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <thread>

#include "link.hpp"
#include "mp/errors.hpp"

namespace mp::redis::impl {

using Clock = mp::detail::MonotonicClock;

class Retry {
 public:
  static constexpr std::chrono::milliseconds kGrace{500};

  // what and object name the call in the error ("put()", "queue \"jobs\""); both must outlive the Retry.
  Retry(const Endpoint& endpoint, std::chrono::milliseconds server_timeout, Deadline user, const char* what,
        const std::string& object)
      : endpoint_(endpoint), server_timeout_(server_timeout), user_(user), what_(what), object_(object) {}

  // Retry::operator()(attempt): runs attempt() until it returns without a
  // LinkFailure; ConnectionError once the outage budget is spent.
  template <class Attempt>
  auto operator()(Attempt&& attempt) -> decltype(attempt()) {
    for (;;) {
      attempt_started_ = Clock::now();
      attempt_due_ = attempt_started_;
      try {
        auto result = attempt();
        silent_since_.reset();
        return result;
      } catch (const LinkFailure& failure) {
        on_failure(failure.what());
      }
    }
  }

  // Retry::reply_deadline(blocking): how long an attempt that blocks on the
  // server for `blocking` may wait for its reply before the link counts as lost.
  [[nodiscard]] Deadline reply_deadline(Clock::duration blocking = Clock::duration::zero()) {
    auto now = Clock::now();
    auto due = now + blocking;
    attempt_due_ = std::max(attempt_due_, due);
    auto limit = due + server_timeout_;
    if (!user_.is_never()) limit = std::min(limit, std::max(user_.when(), due + kGrace));
    if (silent_since_) limit = std::min(limit, std::max(outage_end(), due + kGrace));
    return Deadline::at(limit);
  }
  [[nodiscard]] int failures() const noexcept { return failures_; }

 private:
  [[nodiscard]] Clock::time_point outage_end() const {
    auto end = *silent_since_ + server_timeout_;
    if (!user_.is_never()) end = std::min(end, std::max(user_.when(), *silent_since_ + kGrace));
    return end;
  }

  void on_failure(const std::string& reason) {
    ++failures_;
    auto now = Clock::now();
    if (!silent_since_) silent_since_ = std::min(now, attempt_due_);
    auto end = outage_end();
    if (now >= end) {
      throw mp::ConnectionError("mp::redis: " + std::string(what_) + " (" + object_ + "): Redis server " +
                                endpoint_.where() + " is unreachable: " + reason +
                                "; not regained within the call's timeout");
    }
    std::this_thread::sleep_for(std::min<Clock::duration>(std::chrono::milliseconds(100), end - now));
  }

  const Endpoint& endpoint_;
  std::chrono::milliseconds server_timeout_;
  Deadline user_;
  const char* what_;
  const std::string& object_;
  Clock::time_point attempt_started_{};
  Clock::time_point attempt_due_{};                // when the current attempt's last reply was due
  std::optional<Clock::time_point> silent_since_;  // set while in an outage
  int failures_ = 0;
};

}  // namespace mp::redis::impl
