// src/ring_internal.hpp — what the ring's source files share (private to src/):
// position/count packing, record sizes and the side lock guard. See include/mp/detail/ring.hpp for
// INV1..INV10.
#pragma once

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
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
// record_bytes(payload): ring bytes of a stream or SKIP record (a whole
// RecordHeader); item_record_bytes(payload): of an item record (kItemHeaderBytes).
constexpr std::uint32_t record_bytes(std::size_t payload) noexcept {
  return static_cast<std::uint32_t>((sizeof(RecordHeader) + payload + 7) & ~std::size_t{7});
}
constexpr std::uint32_t item_record_bytes(std::size_t payload) noexcept {
  return static_cast<std::uint32_t>((kItemHeaderBytes + payload + 7) & ~std::size_t{7});
}
constexpr std::uint32_t header_bytes(RecordKind kind) noexcept {
  return kind == RecordKind::item ? kItemHeaderBytes : static_cast<std::uint32_t>(sizeof(RecordHeader));
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

// The chase rule (ring.cpp, Ring::get): a consumer that has caught up with
// its copy of write_word and found more than one item past it at its last
// look (the producers are ahead: they are streaming) waits this many
// cpu_relax() (~400 ns on the EPYC guest, where one is ~25 ns) before it
// looks again, and finds a batch there. Each look pulls write_word's line,
// and the record line the producer is filling, away from the producer,
// whose next stores then wait for them: a consumer that looked as soon as it
// had caught up did so every item or two (measured, 1P->1C `long` items,
// medians of 10-16 alternating rounds: 28.6-29.9 -> 39.2-42.1 M/s, 2.3-2.5x
// -> 3.3-3.5x Boost; 3P->3C 15 -> 23 M/s). A look that finds one item or
// none ends the rule, so a round trip's reply (one item) is looked for at
// once: the ping-pong round trip is unchanged. Where producers wait for the
// consumers (a small maxsize, the Pool's window of chunks in flight) every
// wait is time lost, so rings there are made without the rule
// (RingHeader::chase, RingPacing, kChaseMinMaxsize).
inline constexpr int kChaseBackoffPauses = 16;

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

// ---- small byte-level helpers, inline so the fast paths make no calls --------

inline std::uint32_t Ring::free_bytes(std::uint64_t write_word, std::uint32_t reclaimed) const noexcept {
  // A stale `reclaimed` (the producers' cache) may lag so far that the
  // difference exceeds the capacity: that means "no room known", not wrap-around.
  const std::uint32_t used = ring_internal::position_of(write_word) - reclaimed;
  return used >= header_->capacity ? 0 : header_->capacity - used;
}

inline std::uint32_t Ring::free_bytes_now(std::uint64_t write_word) const noexcept {
  // pairs with the release store in commit_read(): the bytes below it were read and may be reused (INV8)
  return free_bytes(write_word, header_->reclaimed.load(std::memory_order_acquire));
}

inline bool Ring::is_hot(std::uint32_t position) const noexcept {
  return (position & (header_->capacity - 1)) < header_->hot_bytes;
}

// Ring::fits_hot(position, record): a record at `position` stays inside the
// hot area and leaves room there for a SKIP after it (so a rewind from the
// end of the hot area never touches a cold page).
inline bool Ring::fits_hot(std::uint32_t position, std::uint32_t record) const noexcept {
  const std::uint32_t offset = position & (header_->capacity - 1);
  return offset < header_->hot_bytes &&
         header_->hot_bytes - offset >= std::uint64_t{record} + ring_internal::kSkipRecord;
}

// Ring::lock_side(mutex, hint, deadline, nonblocking): takes a side's lock;
// a free one at once (inline: every put and get), a held one as
// lock_side_held() says.
inline LockOutcome Ring::lock_side(RobustMutex& mutex, const std::atomic<std::uint32_t>& streaming_hint,
                                   const Deadline& deadline, bool nonblocking) noexcept {
  const LockOutcome outcome = mutex.try_lock();
  return outcome != LockOutcome::timed_out ? outcome
                                           : lock_side_held(mutex, streaming_hint, deadline, nonblocking);
}

// Ring::lock_producers(deadline, nonblocking): takes producer_mutex (as
// lock_side() says) and repairs what a dead holder left (repair_producer());
// ok, or the status a put reports: would_block or lock_error. Inline: every put.
inline RingStatus Ring::lock_producers(const Deadline& deadline, bool nonblocking) noexcept {
  RingHeader& h = *header_;
  const LockOutcome outcome = lock_side(h.producer_mutex, h.producer_streaming, deadline, nonblocking);
  if (outcome == LockOutcome::timed_out) return RingStatus::would_block;
  if (outcome == LockOutcome::error) return RingStatus::lock_error;
  if (outcome == LockOutcome::owner_died) repair_producer();
  return RingStatus::ok;
}

// Ring::claim(w, record, deadline, nonblocking): see ring.cpp; the common
// case inline: no hot area, or the record fits in what is left of it.
inline std::uint32_t Ring::claim(std::uint64_t& w, std::uint32_t record, const Deadline& deadline,
                                 bool nonblocking) noexcept {
  const std::uint32_t tail = ring_internal::position_of(w);
  if (header_->hot_bytes == 0 || fits_hot(tail, record))
    return room_at(tail, record) ? tail : ring_internal::kNoRoom;
  return claim_past_hot(w, record, deadline, nonblocking);
}

// Ring::enters_new_granule(tail, record): a record at `tail` reaches into a
// reclaim granule that the record before it (ending at tail - 1) did not.
inline bool Ring::enters_new_granule(std::uint32_t tail, std::uint32_t record) const noexcept {
  return (((tail - 1) ^ (tail + record - 1)) & ~(header_->reclaim_granule - 1)) != 0;
}

// Ring::can_skip_at(position): a SKIP header fits before the lap ends.
inline bool Ring::can_skip_at(std::uint32_t position) const noexcept {
  return header_->hot_bytes != 0 &&
         header_->capacity - (position & (header_->capacity - 1)) >= ring_internal::kSkipRecord;
}

// Ring::room_at(position, record): under producer_mutex; `record` bytes at
// `position` (the tail, or the start of a lap after a rewind) are free. The
// producers' cached `reclaimed` is refreshed only when it says no.
inline bool Ring::room_at(std::uint32_t position, std::uint32_t record) noexcept {
  RingHeader& h = *header_;
  const std::uint64_t at = position;  // free_bytes() looks at the position only
  if (free_bytes(at, h.cached_reclaimed) >= record) return true;
  // pairs with the release stores in commit_read(): the bytes below
  // `reclaimed` were read and may be reused (INV8)
  h.cached_reclaimed = h.reclaimed.load(std::memory_order_acquire);
  return free_bytes(at, h.cached_reclaimed) >= record;
}

inline void Ring::write_record(std::uint32_t tail, RecordKind kind, std::uint64_t stream_id,
                               std::span<const std::byte> a, std::span<const std::byte> b) noexcept {
  // The header as two 8-byte words (RecordHeader's layout on a little-endian
  // host: payload_bytes, kind, stream_id): copy_in then moves each with one
  // 8-byte load of an 8-byte store. Built as a RecordHeader on the stack, its
  // two 4-byte fields were re-read as one 8-byte word, which cannot be
  // forwarded from the two stores (a store-forwarding stall on every put).
  static_assert(std::endian::native == std::endian::little && offsetof(RecordHeader, kind) == 4 &&
                offsetof(RecordHeader, stream_id) == 8);
  const std::uint64_t words[2] = {static_cast<std::uint64_t>(a.size() + b.size()) |
                                      (std::uint64_t{static_cast<std::uint32_t>(kind)} << 32),
                                  stream_id};
  const std::uint32_t header = ring_internal::header_bytes(kind);  // an item record has no stream id
  copy_in(tail, reinterpret_cast<const std::byte*>(words), header);
  copy_in(tail + header, a.data(), a.size());
  copy_in(tail + header + static_cast<std::uint32_t>(a.size()), b.data(), b.size());
}

// Ring::read_header(position, used, record): the header of the record at
// `position`, of which `used` bytes are published: its first 8 bytes, then
// the stream id unless it is an item record (which has none: 0). Returns the
// record's size in the ring, or 0 if it cannot be one (corrupted: longer
// than what is published or than the ring).
inline std::uint32_t Ring::read_header(std::uint32_t position, std::uint32_t used,
                                       RecordHeader& record) const noexcept {
  record.stream_id = 0;
  if (used < kItemHeaderBytes) return 0;
  copy_out(position, reinterpret_cast<std::byte*>(&record), kItemHeaderBytes);
  if (record.payload_bytes > header_->capacity) return 0;
  std::uint32_t size = ring_internal::item_record_bytes(record.payload_bytes);
  if (record.kind != RecordKind::item) {
    if (used < sizeof(RecordHeader)) return 0;
    copy_out(position + kItemHeaderBytes, reinterpret_cast<std::byte*>(&record.stream_id),
             sizeof record.stream_id);
    size = ring_internal::record_bytes(record.payload_bytes);
  }
  return size > used ? 0 : size;
}

// Ring::commit_read(r): as commit_read(r, position_of(r)) (ring_bytes.cpp).
// Inline for the common case of a get in the hot area: head and `reclaimed`
// in the same never-punched granule, so nothing is punched and `reclaimed`
// simply follows head (INV8). Both stores as in the full version.
inline void Ring::commit_read(std::uint64_t r) noexcept {
  RingHeader& h = *header_;
  const std::uint32_t head = ring_internal::position_of(r);
  const std::uint32_t from = h.reclaimed.load(std::memory_order_relaxed);  // only stored under our lock
  if (h.reclaim_granule == 0 || !is_hot(head) || ((from ^ head) & ~(h.reclaim_granule - 1)) != 0) {
    commit_read(r, head);
    return;
  }
  h.read_word.store(r, std::memory_order_release);  // pairs with the producers' acquire of read_word (counts)
  if (head != from)
    h.reclaimed.store(head,
                      std::memory_order_release);  // pairs with the acquire in free_bytes_now(): room is free
}

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
