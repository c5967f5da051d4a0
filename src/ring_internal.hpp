// src/ring_internal.hpp — what the ring's source files share (private to src/):
// position/count packing, record sizes and the side lock guard. See include/mp/detail/ring.hpp for
// INV1..INV10.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>

#include "mp/detail/clock.hpp"
#include "mp/detail/ring.hpp"
#include "mp/detail/robust_mutex.hpp"

namespace mp::detail::ring_internal {

// A streamed item's reader checks this often whether its producer died.
inline constexpr auto kStreamLivenessPoll = std::chrono::milliseconds(10);

// A lock is held only for a memcpy unless the side's streaming hint is set;
// a timed or non-blocking call waits at least this long for such a holder.
inline constexpr auto kShortHold = std::chrono::milliseconds(5);

constexpr std::uint32_t position_of(std::uint64_t word) noexcept { return static_cast<std::uint32_t>(word); }
constexpr std::uint32_t count_of(std::uint64_t word) noexcept {
  return static_cast<std::uint32_t>(word >> 32);
}
constexpr std::uint64_t pack(std::uint32_t count, std::uint32_t position) noexcept {
  return (static_cast<std::uint64_t>(count) << 32) | position;
}
constexpr std::uint32_t record_bytes(std::size_t payload) noexcept {
  return static_cast<std::uint32_t>((sizeof(RecordHeader) + payload + 7) & ~std::size_t{7});
}

// Ring::claim()'s "no room now". Positions are multiples of 8, so this is none.
inline constexpr std::uint32_t kNoRoom = UINT32_MAX;

// A SKIP record (INV10) is a bare header.
inline constexpr std::uint32_t kSkipRecord = sizeof(RecordHeader);

// lap_end(position, capacity): the next multiple of the capacity above
// position (mod 2^32), where a SKIP at position sends the reader.
constexpr std::uint32_t lap_end(std::uint32_t position, std::uint32_t capacity) noexcept {
  return (position | (capacity - 1)) + 1;
}

// A producer at the end of the hot area waits for the consumers to drain the
// ring while they make progress; this long without progress, or this long in
// all, it grows into the cold part instead (they are stopped, absent, or slow
// enough that waiting would hold the put up: an unbounded queue's put must
// not wait for its consumers).
inline constexpr auto kDrainStall = std::chrono::microseconds(200);
inline constexpr auto kDrainBudget = std::chrono::milliseconds(1);

// A rewind by a producer takes consumer_mutex, which with an empty ring and
// no open stream is held only for a commit: wait this long at most.
inline constexpr auto kRewindLockWait = std::chrono::microseconds(200);

// Unlocks a side's mutex when the scope ends, on every path (exceptions too).
class SideLock {
 public:
  explicit SideLock(RobustMutex& mutex) noexcept : mutex_(&mutex) {}
  SideLock(const SideLock&) = delete;
  SideLock& operator=(const SideLock&) = delete;
  ~SideLock() { unlock(); }
  void unlock() noexcept {
    if (mutex_ != nullptr) std::exchange(mutex_, nullptr)->unlock();
  }

 private:
  RobustMutex* mutex_;
};

// copy_bytes(destination, source, n): memcpy, with the sizes of small items
// and record headers (at most 16 bytes) done inline instead of through a
// call into the C library: a put or get of a `long` copies 8 and 16 bytes.
inline void copy_bytes(std::byte* destination, const std::byte* source, std::size_t n) noexcept {
  if (n > 16) {
    std::memcpy(destination, source, n);
  } else if (n >= 8) {  // two (possibly overlapping) 8-byte moves
    std::uint64_t first = 0, last = 0;
    std::memcpy(&first, source, 8);
    std::memcpy(&last, source + n - 8, 8);
    std::memcpy(destination, &first, 8);
    std::memcpy(destination + n - 8, &last, 8);
  } else {
    for (std::size_t i = 0; i < n; ++i) destination[i] = source[i];
  }
}

}  // namespace mp::detail::ring_internal

namespace mp::detail {

// Ring::copy_in / copy_out: bytes to or from ring positions, across the wrap.
// Inline here so that the ring's fast paths copy small records without calls.
inline void Ring::copy_in(std::uint32_t position, const std::byte* source, std::size_t n) noexcept {
  const std::size_t offset = position & (header_->capacity - 1);
  if (n <= header_->capacity - offset) {
    ring_internal::copy_bytes(data_ + offset, source, n);
    return;
  }
  const std::size_t first = header_->capacity - offset;  // < n: the copy wraps
  std::memcpy(data_ + offset, source, first);
  std::memcpy(data_, source + first, n - first);
}

inline void Ring::copy_out(std::uint32_t position, std::byte* destination, std::size_t n) const noexcept {
  const std::size_t offset = position & (header_->capacity - 1);
  if (n <= header_->capacity - offset) {
    ring_internal::copy_bytes(destination, data_ + offset, n);
    return;
  }
  const std::size_t first = header_->capacity - offset;  // < n: the copy wraps
  std::memcpy(destination, data_ + offset, first);
  std::memcpy(destination + first, data_, n - first);
}

}  // namespace mp::detail
