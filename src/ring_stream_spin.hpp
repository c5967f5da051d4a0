// src/ring_stream_spin.hpp — the spin both sides of a stream use while the
// other is mid-item (private to src/: ring_stream_put.cpp, ring_stream_read.cpp).
#pragma once

#include <algorithm>
#include <chrono>

#include "mp/detail/clock.hpp"
#include "mp/detail/event_count.hpp"
#include "mp/detail/oversubscription.hpp"

namespace mp::detail::ring_internal {

// Inside a stream each side knows that the other is mid-item: a reader that
// finds nothing new knows its producer is copying the next chunk (a few
// microseconds for 64 KiB), and a producer waiting for room, or for its
// reader to drain the hot area, knows a reader is copying the chunks before
// it. Sleeping there costs a halted vCPU's wake-up (~25 us) on each side,
// per chunk, so both spin on the condition first, whatever an event count
// learned from the waits between items (EventCount's budget is shared with
// them): for as long as the peer makes progress (`progress()` changes at
// least every kStreamSpin), kStreamSpinTotal at most. The spin follows mp's
// spin policy otherwise: none while the CPUs are oversubscribed (the peer
// may need ours), and it stops when it finds it was descheduled. A peer that
// stops (killed, SIGSTOPped) costs one kStreamSpin, then the ordinary wait.
inline constexpr auto kStreamSpin = std::chrono::microseconds(100);
inline constexpr auto kStreamSpinTotal = std::chrono::milliseconds(1);
inline constexpr auto kStreamDescheduled = std::chrono::nanoseconds(EventCount::kDescheduledNs);

// stream_spin(ready, progress, deadline): true as soon as ready() holds;
// false once the peer made no progress for kStreamSpin, after
// kStreamSpinTotal, at the deadline, or when a spin is not worth it.
template <class Ready, class Progress>
inline bool stream_spin(Ready&& ready, Progress&& progress, const Deadline& deadline) noexcept {
  if (ready()) return true;
  if (cpus_oversubscribed()) return false;
  const auto start = MonotonicClock::now();
  const auto end = std::min(start + kStreamSpinTotal, deadline.when());
  auto stall_end = start + kStreamSpin;
  auto seen = progress();
  auto last = start;
  for (;;) {
    for (int i = 0; i < 16; ++i) {
      if (ready()) return true;
      cpu_relax();
    }
    const auto now = MonotonicClock::now();
    if (now - last > kStreamDescheduled) return ready();
    if (const auto p = progress(); p != seen) {
      seen = p;
      stall_end = now + kStreamSpin;
    }
    if (now >= end || now >= stall_end) return ready();
    last = now;
  }
}

}  // namespace mp::detail::ring_internal
