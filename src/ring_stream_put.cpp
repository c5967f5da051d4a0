// src/ring_stream_put.cpp — the producer side of large items streamed
// through the ring in chunks (BEGIN, CHUNK..., LAST or ABORT), and the repair
// of a dead streaming producer (see include/mp/detail/ring.hpp, INV3..INV6,
// INV9, INV10 (b)). The reader's side is in ring_stream_read.cpp.
#include <algorithm>
#include <cstring>

#include "mp/detail/ring.hpp"
#include "ring_internal.hpp"
#include "ring_stream_spin.hpp"

namespace mp::detail {

using namespace ring_internal;  // NOLINT(google-build-using-namespace): this file's own helpers

// ---- producer side -----------------------------------------------------------

// Ring::repair_producer(): called with producer_mutex just taken from a dead
// holder. Non-stream puts need nothing (INV1, INV2); an open stream is ended
// with ABORT. Crashing in here only repeats the ABORT next time, which INV6
// makes harmless.
void Ring::repair_producer() noexcept {
  header_->producer_repairs.fetch_add(1, std::memory_order_relaxed);  // a statistic
  abort_open_stream();
}

// Ring::abort_open_stream(): under producer_mutex; ends the open stream (if
// any) with ABORT, for which INV5 kept room.
void Ring::abort_open_stream() noexcept {
  RingHeader& h = *header_;
  if (h.open_stream_id != 0) {
    const std::uint64_t w = h.write_word.load(std::memory_order_relaxed);  // we hold producer_mutex
    if (free_bytes_now(w) >= record_bytes(0)) {                            // INV5
      write_record(position_of(w), RecordKind::stream_abort, h.open_stream_id, {});
      // pairs with the acquire loads of write_word in get(): publishes the ABORT
      h.write_word.store(pack(count_of(w), position_of(w) + record_bytes(0)), std::memory_order_release);
    }
    h.open_stream_id = 0;
    h.stream_state.store(0, std::memory_order_release);  // pairs with the reader's CAS: no stream is open
    wake_getters();
  }
  h.producer_streaming.store(0, std::memory_order_relaxed);  // hint only
}

// Ring::put_stream(): BEGIN, then CHUNKs as room comes, then LAST, all under
// producer_mutex (INV3). Deadlines: a non-blocking put opens the stream only
// if all of it fits now; a put whose deadline passes (or that sees shutdown)
// while it waits for room half-way through ends the stream with ABORT
// (readers drop what they read of it, exactly as for a dead producer) and
// reports would_block (shut_down): the item was not put. A stream whose
// reader abandoned it (INV9) is aborted and sent again while time remains.
RingStatus Ring::put_stream(std::span<const std::byte> lead, std::span<const std::byte> body,
                            const Deadline& deadline, bool nonblocking) {
  RingHeader& h = *header_;
  if (is_shut_down()) return RingStatus::shut_down;
  if (const RingStatus locked = lock_producers(deadline, nonblocking); locked != RingStatus::ok)
    return locked;
  SideLock lock(h.producer_mutex);
  h.producer_streaming.store(1, std::memory_order_relaxed);  // hint: we hold the lock for long now
  struct ClearHint {
    std::atomic<std::uint32_t>& hint;
    ~ClearHint() { hint.store(0, std::memory_order_relaxed); }
  } clear_hint{h.producer_streaming};
  for (;;) {
    const RingStatus status = stream_once(lead, body, deadline, nonblocking);
    if (status != kResend) return status;
    // Abandoned by its reader (INV9): already aborted; send it again.
    if (is_shut_down()) return RingStatus::shut_down;
    if (nonblocking || deadline.expired()) return RingStatus::would_block;
  }
}

// Ring::stream_once(): one attempt at the stream, under producer_mutex. The
// item's bytes are `lead` then `body` (a codec's length prefix and the bytes
// of a vector or string: each chunk is copied straight from them).
RingStatus Ring::stream_once(std::span<const std::byte> lead, std::span<const std::byte> body,
                             const Deadline& deadline, bool nonblocking) {
  RingHeader& h = *header_;
  const std::size_t size = lead.size() + body.size();
  const std::uint32_t begin_record = record_bytes(sizeof(std::uint64_t));
  const std::size_t chunk_max = h.stream_chunk - sizeof(RecordHeader);
  // Ring bytes the whole stream takes at most (BEGIN, every chunk with its
  // header and padding, the ABORT reserve): what a non-blocking put needs now.
  const std::uint64_t chunks = (size + chunk_max - 1) / chunk_max;
  const std::uint64_t whole_stream =
      begin_record + size + chunks * (sizeof(RecordHeader) + 7) + kAbortReserve;
  // Open the stream once there is room for one more item and for BEGIN plus
  // the ABORT reserve (INV5); for a non-blocking put, room for all of it.
  const std::uint64_t needed_to_open = nonblocking ? whole_stream : begin_record + kAbortReserve;
  const auto can_open = [&] {
    const std::uint64_t w = h.write_word.load(std::memory_order_relaxed);  // ours
    const std::uint64_t r =
        h.read_word.load(std::memory_order_acquire);  // pairs with get's commit: the count
    return free_bytes_now(w) >= needed_to_open && (h.maxsize == 0 || count_of(w) - count_of(r) < h.maxsize);
  };
  while (!can_open()) {
    if (is_shut_down()) return RingStatus::shut_down;
    if (nonblocking) return RingStatus::would_block;
    const auto ready = [&] { return can_open() || is_shut_down(); };
    if (!h.not_full.await(ready, deadline)) return RingStatus::would_block;
  }
  if (is_shut_down()) return RingStatus::shut_down;
  // BEGIN goes where a small record would (a rewind if it leaves the hot
  // area on an empty ring); can_open() made sure it fits at the tail at least.
  std::uint64_t begin_w = h.write_word.load(std::memory_order_relaxed);  // ours
  const std::uint32_t begin_at = claim(begin_w, begin_record + kAbortReserve, deadline, nonblocking);
  if (begin_at == kNoRoom) return RingStatus::would_block;  // cannot be: can_open() saw room at the tail

  const std::uint64_t stream_id = h.next_stream_id++;
  if (h.next_stream_id > kStreamIdMask) h.next_stream_id = 1;
  h.open_stream_id = stream_id;  // INV5 holds from here: can_open() kept the reserve
  // INV9: the stream's fate word names it before any reader can see BEGIN
  // (release; the write_word store below publishes it with BEGIN).
  h.stream_state.store(stream_id, std::memory_order_release);
  {
    const std::uint64_t total = size;
    write_record(begin_at, RecordKind::stream_begin, stream_id,
                 std::as_bytes(std::span<const std::uint64_t, 1>(&total, 1)));
    // pairs with the acquire loads in get(): publishes BEGIN (not counted: INV4)
    h.write_word.store(pack(count_of(begin_w), begin_at + begin_record), std::memory_order_release);
    wake_getters();
  }
  // The consumers' progress, for the spins below. acquire: pairs with their commits.
  const auto head_position = [&] { return position_of(h.read_word.load(std::memory_order_acquire)); };
  const auto abandoned = [&] {
    // acquire: pairs with the reader's CAS that abandons the stream (INV9)
    return h.stream_state.load(std::memory_order_acquire) == (stream_id | kStreamAbandoned);
  };

  std::size_t sent = 0;
  while (sent < size) {
    if (abandoned()) {
      abort_open_stream();
      return kResend;
    }
    const std::size_t remaining = size - sent;
    const std::size_t smallest_worth_it = std::min(remaining, chunk_max / 4);
    const std::uint64_t w = h.write_word.load(std::memory_order_relaxed);  // ours
    // Bytes a chunk's payload may use out of `free` bytes, keeping the ABORT reserve (INV5).
    const auto usable_of = [](std::uint64_t free) -> std::size_t {
      return free >= kAbortReserve + sizeof(RecordHeader) + 8
                 ? (free - kAbortReserve - sizeof(RecordHeader)) & ~7u
                 : 0;
    };
    std::uint32_t at = position_of(w);  // where the chunk goes
    bool skip_first = false;            // a SKIP at the tail, then the chunk at the next lap (INV10 (b))
    std::size_t want = std::min({remaining, chunk_max, usable_of(free_bytes_now(w))});
    // A non-blocking put goes straight on at the tail: it made sure all of
    // the stream fits there, and smaller chunks or a skip would spend room.
    if (h.hot_bytes != 0 && !nonblocking) {
      const std::uint32_t offset = at & (h.capacity - 1);
      // What is left of the hot area, keeping room for a SKIP after the chunk.
      const std::size_t hot_left =
          offset < h.hot_bytes ? usable_of(std::uint64_t{h.hot_bytes} - offset - kSkipRecord + kAbortReserve)
                               : 0;
      if (hot_left >= smallest_worth_it) {
        want = std::min(want, hot_left);
      } else if (can_skip_at(at)) {
        // Past the hot area: skip to the next lap if our reader has drained
        // the ring and waits without a deadline (INV10 (b)); at the end of
        // the hot area wait for it to drain while it makes progress first.
        // Drained means a reader took our BEGIN (so it is reading this
        // stream) and every chunk since. The acquire on read_word pairs with
        // that reader's commit, which its store of the hint (read_stream())
        // precedes: so the hint read after it is that reader's (or later:
        // 0 once it is done, which it cannot be before our LAST or ABORT).
        const auto drained_for_skip = [&] {
          return position_of(h.read_word.load(std::memory_order_acquire)) == at &&
                 h.consumer_streaming.load(std::memory_order_acquire) == 2;
        };
        // Wait for the drain while the consumers make progress, spinning
        // first, unless the hint says a reader with a deadline (1) is on: we
        // could not skip for it. With no reader on now (0) the one to come
        // may read without one (the previous item's reader is often still
        // decoding it); waiting for it beats growing into fresh pages.
        // Where to wait is drain_worth_waiting_for()'s rule, as for plain
        // records: without the waits in the cold part a stream sent there by
        // one slow start of its reader stays there (measured: 1 MiB items at
        // ~1 GB/s, the producer faulting in every page, against 10-20 GB/s hot).
        const auto timed_reader = [&] { return h.consumer_streaming.load(std::memory_order_relaxed) == 1; };
        const bool look_back = drain_worth_waiting_for(at, record_bytes(std::min(remaining, chunk_max)));
        if (!drained_for_skip() && look_back && !timed_reader() &&
            !stream_spin([&] { return drained_for_skip() || timed_reader(); }, head_position, deadline))
          (void)wait_for_drain(at, deadline);
        if (drained_for_skip()) {
          const std::uint32_t next = lap_end(at, h.capacity);
          const std::size_t after_skip =
              std::min({remaining, chunk_max,
                        usable_of(free_bytes(
                            next, h.reclaimed.load(std::memory_order_acquire))),  // pairs with commit_read
                        usable_of(std::uint64_t{h.hot_bytes} - kSkipRecord + kAbortReserve)});
          if (after_skip >= smallest_worth_it) {
            skip_first = true;
            want = after_skip;
          }
        }
      }
    }
    if (want < smallest_worth_it) {
      if (!is_shut_down() && !nonblocking) {
        const std::uint32_t needed = record_bytes(smallest_worth_it) + kAbortReserve;
        const auto ready = [&] {
          return free_bytes_now(h.write_word.load(std::memory_order_relaxed)) >= needed || is_shut_down() ||
                 abandoned();
        };
        // A reader copying a stream (ours, or the one before it) frees
        // room chunk by chunk: spin for it first.
        if (h.consumer_streaming.load(std::memory_order_relaxed) != 0 &&  // a hint
            stream_spin(ready, head_position, deadline))
          continue;
        if (h.not_full.await(ready, deadline)) continue;
      }
      // Shut down, out of time, or (non-blocking) out of room after all: the
      // item is not put; readers drop what they read of it.
      abort_open_stream();
      return is_shut_down() ? RingStatus::shut_down : RingStatus::would_block;
    }
    const bool last = want == remaining;
    if (last) {
      // INV9: from here the reader waits for LAST instead of abandoning; if
      // it abandoned first, send again. acq_rel: pairs with the reader's CAS.
      std::uint64_t expected = stream_id;
      if (!h.stream_state.compare_exchange_strong(expected, stream_id | kStreamFinishing,
                                                  std::memory_order_acq_rel, std::memory_order_acquire)) {
        abort_open_stream();
        return kResend;
      }
    }
    if (skip_first) {
      write_record(at, RecordKind::skip, stream_id, {});
      at = lap_end(at, h.capacity);
    }
    // The chunk is bytes [sent, sent + want) of lead then body.
    const std::size_t from_lead = sent < lead.size() ? std::min(want, lead.size() - sent) : 0;
    const std::size_t body_from = sent + from_lead - std::min(sent + from_lead, lead.size());
    write_record(at, last ? RecordKind::stream_last : RecordKind::stream_chunk, stream_id,
                 lead.subspan(std::min(sent, lead.size()), from_lead),
                 body.subspan(body_from, want - from_lead));
    // pairs with the acquire loads in get(): publishes the SKIP (if any) and
    // the chunk; LAST counts the item (INV4)
    h.write_word.store(pack(count_of(w) + (last ? 1 : 0), at + record_bytes(want)),
                       std::memory_order_release);
    wake_getters();
    sent += want;
  }
  h.open_stream_id = 0;
  h.stream_state.store(0, std::memory_order_release);  // pairs with the reader's CAS: no stream is open
  return RingStatus::ok;
}

}  // namespace mp::detail
