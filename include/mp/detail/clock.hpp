// mp/detail/clock.hpp — deadlines on CLOCK_MONOTONIC.
//
// Every timed wait in mp turns its Duration into a Deadline once, at the
// start, and passes the absolute deadline down; spurious wake-ups and retries
// therefore never stretch the total wait. std::chrono::steady_clock is
// CLOCK_MONOTONIC on Linux (libstdc++), which is what futex and
// pthread_mutex_clocklock are given.
#pragma once

#include <time.h>

#include <chrono>
#include <optional>

namespace mp::detail {

using MonotonicClock = std::chrono::steady_clock;

class Deadline {
 public:
  // Deadline::never(): a wait without timeout.
  static Deadline never() noexcept { return Deadline{}; }

  // Deadline::after(d): d from now; a negative d is treated as zero (Python
  // treats a negative timeout as "do not wait").
  template <class Rep, class Period>
  static Deadline after(std::chrono::duration<Rep, Period> d) noexcept {
    using Source = std::chrono::duration<Rep, Period>;
    // Saturate before converting: duration_cast of hours::max() (or min()) to
    // nanoseconds overflows, which is undefined and used to give a zero wait.
    if (d <= Source::zero()) return Deadline{MonotonicClock::now()};
    if (d >= std::chrono::duration_cast<Source>(MonotonicClock::duration::max())) return never();
    auto delta = std::chrono::duration_cast<MonotonicClock::duration>(d);
    // Saturate: a huge timeout must not overflow into the past.
    auto now = MonotonicClock::now();
    if (delta > MonotonicClock::time_point::max() - now) return never();
    return Deadline{now + delta};
  }

  static Deadline at(MonotonicClock::time_point t) noexcept { return Deadline{t}; }

  [[nodiscard]] bool is_never() const noexcept { return !when_.has_value(); }
  [[nodiscard]] bool expired() const noexcept { return when_.has_value() && MonotonicClock::now() >= *when_; }
  [[nodiscard]] MonotonicClock::time_point when() const noexcept {
    return when_.value_or(MonotonicClock::time_point::max());
  }

  // Deadline::remaining(): zero once expired; max() for never.
  [[nodiscard]] MonotonicClock::duration remaining() const noexcept {
    if (!when_) return MonotonicClock::duration::max();
    auto left = *when_ - MonotonicClock::now();
    return left < MonotonicClock::duration::zero() ? MonotonicClock::duration::zero() : left;
  }

  // Deadline::as_timespec(): the absolute CLOCK_MONOTONIC time, for futex and
  // pthread_mutex_clocklock. Only meaningful when !is_never().
  [[nodiscard]] timespec as_timespec() const noexcept {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(when().time_since_epoch()).count();
    return timespec{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
  }

  // Deadline::poll_timeout_ms(): for poll(2): -1 for never, else ms rounded up.
  [[nodiscard]] int poll_timeout_ms() const noexcept {
    if (!when_) return -1;
    auto left = std::chrono::ceil<std::chrono::milliseconds>(remaining()).count();
    return left > 0x3fffffff ? 0x3fffffff : static_cast<int>(left);
  }

 private:
  Deadline() noexcept = default;
  explicit Deadline(MonotonicClock::time_point t) noexcept : when_(t) {}
  std::optional<MonotonicClock::time_point> when_;
};

}  // namespace mp::detail
