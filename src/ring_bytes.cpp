// src/ring_bytes.cpp — byte-level helpers of the ring that stay out of line: the
// full commit_read() with its punching (INV8) and the copy into a buffer. The
// small ones the fast paths use are inline in ring_internal.hpp.
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

// Ring::commit_read(r[, untouched_from]): under consumer_mutex; frees the
// records before r's position and counts r's gets (one store: INV2), then
// gives back the cold granules the consumers have passed (INV8): punch
// first, then publish the new `reclaimed`, so producers write there only once
// the punch is done. A consumer killed between the two leaves `reclaimed`
// behind: the next commit punches the same bytes again (harmless) and moves
// it on. `untouched_from` (a SKIP's end, INV10): positions from there to
// r's were not written since they were last punched, so the punch stops at
// its granule.
// (The one-argument commit_read(r) is inline in ring_internal.hpp.)

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

}  // namespace mp::detail
