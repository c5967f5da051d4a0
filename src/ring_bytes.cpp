// src/ring_bytes.cpp — byte-level helpers of the ring: free room, copies in
// and out across the wrap, record writing.
#include "mp/detail/ring.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <bit>
#include <climits>
#include <cstddef>
#include <cstring>
#include <new>
#include <utility>

#include "mp/detail/futex.hpp"
#include "mp/detail/shm.hpp"
#include "ring_internal.hpp"

namespace mp::detail {

using namespace ring_internal;  // NOLINT(google-build-using-namespace): this file's own helpers

std::uint32_t Ring::free_bytes(std::uint64_t write_word, std::uint32_t reclaimed) const noexcept {
  // A stale `reclaimed` (the producers' cache) may lag so far that the
  // difference exceeds the capacity: that means "no room known", not wrap-around.
  const std::uint32_t used = position_of(write_word) - reclaimed;
  return used >= header_->capacity ? 0 : header_->capacity - used;
}

std::uint32_t Ring::free_bytes_now(std::uint64_t write_word) const noexcept {
  // pairs with the release store in commit_read(): the bytes below it were read and may be reused (INV8)
  return free_bytes(write_word, header_->reclaimed.load(std::memory_order_acquire));
}

bool Ring::is_hot(std::uint32_t position) const noexcept {
  return (position & (header_->capacity - 1)) < header_->hot_bytes;
}

// Ring::fits_hot(position, record): a record at `position` stays inside the
// hot area and leaves room there for a SKIP after it (so a rewind from the
// end of the hot area never touches a cold page).
bool Ring::fits_hot(std::uint32_t position, std::uint32_t record) const noexcept {
  const std::uint32_t offset = position & (header_->capacity - 1);
  return offset < header_->hot_bytes && header_->hot_bytes - offset >= std::uint64_t{record} + kSkipRecord;
}

// Ring::can_skip_at(position): a SKIP header fits before the lap ends.
bool Ring::can_skip_at(std::uint32_t position) const noexcept {
  return header_->hot_bytes != 0 && header_->capacity - (position & (header_->capacity - 1)) >= kSkipRecord;
}

// Ring::room_at(position, record): under producer_mutex; `record` bytes at
// `position` (the tail, or the start of a lap after a rewind) are free. The
// producers' cached `reclaimed` is refreshed only when it says no.
bool Ring::room_at(std::uint32_t position, std::uint32_t record) noexcept {
  RingHeader& h = *header_;
  const std::uint64_t at = position;  // free_bytes() looks at the position only
  if (free_bytes(at, h.cached_reclaimed) >= record) return true;
  // pairs with the release stores in commit_read(): the bytes below
  // `reclaimed` were read and may be reused (INV8)
  h.cached_reclaimed = h.reclaimed.load(std::memory_order_acquire);
  return free_bytes(at, h.cached_reclaimed) >= record;
}

// Ring::commit_read(r[, untouched_from]): under consumer_mutex; frees the
// records before r's position and counts r's gets (one store: INV2), then
// gives back the cold granules the consumers have passed (INV8): punch
// first, then publish the new `reclaimed`, so producers write there only once
// the punch is done. A consumer killed between the two leaves `reclaimed`
// behind: the next commit punches the same bytes again (harmless) and moves
// it on. `untouched_from` (a SKIP's end, INV10): positions from there to
// r's were not written since they were last punched, so the punch stops at
// its granule.
void Ring::commit_read(std::uint64_t r) noexcept { commit_read(r, position_of(r)); }

void Ring::commit_read(std::uint64_t r, std::uint32_t untouched_from) noexcept {
  RingHeader& h = *header_;
  h.read_word.store(r, std::memory_order_release);  // pairs with the producers' acquire of read_word (counts)
  const std::uint32_t head = position_of(r);
  const std::uint32_t from = h.reclaimed.load(std::memory_order_relaxed);  // only stored under our lock
  std::uint32_t upto = head;
  if (h.reclaim_granule != 0) {
    const std::uint32_t granule_start = ~(h.reclaim_granule - 1);
    // In the hot area (never punched) reclaimed follows head exactly; in the
    // cold part it waits at the start of head's granule until that is passed.
    upto = is_hot(head) ? head : head & granule_start;
    if (upto == from) return;
    const std::uint32_t punch_from = from & granule_start;
    std::uint32_t punch_to = head & granule_start;
    const std::uint32_t touched_to = (untouched_from + h.reclaim_granule - 1) & granule_start;
    if (touched_to - punch_from < punch_to - punch_from) punch_to = touched_to;  // distances, mod 2^32
    punch(punch_from, punch_to);
  } else if (upto == from) {
    return;
  }
  h.reclaimed.store(upto,
                    std::memory_order_release);  // pairs with the acquire in free_bytes_now(): room is free
}

// Ring::punch(from, to): gives the cold pages of positions [from, to) back
// (granule-aligned, so the file ranges are page-aligned); the hot area keeps
// its pages.
void Ring::punch(std::uint32_t from, std::uint32_t to) noexcept {
  RingHeader& h = *header_;
  std::uint32_t position = from;
  std::uint32_t left = to - from;
  while (left != 0) {
    const std::uint32_t offset = position & (h.capacity - 1);
    const std::uint32_t piece = std::min(left, h.capacity - offset);
    const std::uint32_t cold_from = std::max(offset, h.hot_bytes);
    if (cold_from < offset + piece) {
      // Failure (an old kernel without punch support) only keeps the pages.
      (void)::fallocate(region_.fd(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                        static_cast<off_t>(kRingDataOffset + cold_from),
                        static_cast<off_t>(offset + piece - cold_from));
    }
    position += piece;
    left -= piece;
  }
}

std::size_t Ring::resident_bytes() const noexcept {
  struct stat st {};
  if (::fstat(region_.fd(), &st) != 0) return 0;
  return static_cast<std::size_t>(st.st_blocks) * 512;
}

void Ring::append_out(std::uint32_t position, std::size_t n, std::vector<std::byte>& buffer) const {
  const std::uint32_t mask = header_->capacity - 1;
  const std::size_t offset = position & mask;
  const std::size_t first = std::min<std::size_t>(n, header_->capacity - offset);
  buffer.insert(buffer.end(), data_ + offset, data_ + offset + first);
  if (first < n) buffer.insert(buffer.end(), data_, data_ + (n - first));
}

void Ring::write_record(std::uint32_t tail, RecordKind kind, std::uint64_t stream_id,
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
  copy_in(tail, reinterpret_cast<const std::byte*>(words), sizeof(RecordHeader));
  copy_in(tail + static_cast<std::uint32_t>(sizeof(RecordHeader)), a.data(), a.size());
  copy_in(tail + static_cast<std::uint32_t>(sizeof(RecordHeader) + a.size()), b.data(), b.size());
}

}  // namespace mp::detail
