// src/ring_stream.cpp — large items streamed through the ring in chunks
// (BEGIN, CHUNK..., LAST or ABORT) and the repair of a dead streaming producer
// (see include/mp/detail/ring.hpp, INV3..INV6).
#include "mp/detail/ring.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <climits>
#include <cstring>
#include <new>
#include <utility>

#include "mp/detail/event_count.hpp"
#include "mp/detail/futex.hpp"
#include "mp/detail/oversubscription.hpp"
#include "mp/detail/shm.hpp"
#include "ring_internal.hpp"

namespace mp::detail {

using namespace ring_internal;  // NOLINT(google-build-using-namespace): this file's own helpers

namespace {

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
constexpr auto kStreamSpin = std::chrono::microseconds(100);
constexpr auto kStreamSpinTotal = std::chrono::milliseconds(1);
constexpr auto kStreamDescheduled = std::chrono::nanoseconds(EventCount::kDescheduledNs);

// stream_spin(ready, progress, deadline): true as soon as ready() holds;
// false once the peer made no progress for kStreamSpin, after
// kStreamSpinTotal, at the deadline, or when a spin is not worth it.
template <class Ready, class Progress>
bool stream_spin(Ready&& ready, Progress&& progress, const Deadline& deadline) noexcept {
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

// target_lead(target), target_prefix(target): a GetTarget that may carry a
// prefix (`prefixed`, `prefix`: a contiguous item's codec count) wants the
// record to begin with those 8 bytes and only what follows in `fixed`.
// Detected, so that this file reads either kind of target.
template <class Target>
std::size_t target_lead(const Target& target) noexcept {
  if constexpr (requires { target.prefixed; }) {
    return target.prefixed ? sizeof(std::uint64_t) : 0;
  } else {
    return 0;
  }
}
template <class Target>
std::uint64_t target_prefix(const Target& target) noexcept {
  if constexpr (requires { target.prefix; }) {
    return target.prefix;
  } else {
    return 0;
  }
}

}  // namespace

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
  const LockOutcome outcome = lock_side(h.producer_mutex, h.producer_streaming, deadline, nonblocking);
  if (outcome == LockOutcome::timed_out) return RingStatus::would_block;
  if (outcome == LockOutcome::error) return RingStatus::lock_error;
  SideLock lock(h.producer_mutex);
  if (outcome == LockOutcome::owner_died) repair_producer();
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
        // Waited for at the end of the hot area and, in the cold part, where
        // a chunk reaches into a new granule (as claim() does for plain
        // records): else a stream sent into the cold part by one slow start
        // of its reader stays there (measured: 1 MiB items at ~1 GB/s, the
        // producer faulting in every page, against 10-20 GB/s hot).
        const auto timed_reader = [&] { return h.consumer_streaming.load(std::memory_order_relaxed) == 1; };
        const bool look_back =
            offset < h.hot_bytes ||
            (enters_new_granule(at, record_bytes(std::min(remaining, chunk_max))) && consumers_moved());
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

// ---- consumer side -----------------------------------------------------------

// Ring::producer_gone_without_finishing(): asked by a stream's reader that
// found nothing new at `at`. The streaming producer holds producer_mutex to
// the end, so if we can take it, the producer is gone: a dead one is repaired
// here (its ABORT becomes visible); a stream that is neither open nor
// followed by any record can never finish.
bool Ring::producer_gone_without_finishing(std::uint64_t stream_id, std::uint32_t at) noexcept {
  RingHeader& h = *header_;
  const LockOutcome outcome = h.producer_mutex.try_lock();
  if (outcome == LockOutcome::timed_out || outcome == LockOutcome::error) return false;
  SideLock lock(h.producer_mutex);
  if (outcome == LockOutcome::owner_died) repair_producer();
  const std::uint64_t w = h.write_word.load(std::memory_order_acquire);  // pairs with put's commit
  if (position_of(w) != at) return false;                                // something to read (LAST or ABORT)
  return h.open_stream_id != stream_id;
}

// Ring::read_stream(): we hold consumer_mutex and the record at r is BEGIN.
// Copies the chunks out as they are published, freeing each (so the producer
// can stream an item of any size through a smaller ring), until LAST
// (complete) or ABORT (aborted: the caller looks for the next item). A reader
// killed here leaves the rest of the stream as orphans (INV6): that item is
// lost, as one taken by a consumer that then died.
// When the deadline passes, or the queue is shut down, with nothing new to
// read, the reader abandons the stream (INV9): its partial copy is dropped
// and the producer, which has not published LAST, aborts the stream and sends
// the item again (or gives up: shut down or out of time). If the producer is
// already publishing LAST, the reader waits for it instead: that is a memcpy.
Ring::StreamEnd Ring::read_stream(const RecordHeader& begin, std::uint64_t& r, GetTarget& target,
                                  const Deadline& deadline) {
  RingHeader& h = *header_;
  if (begin.payload_bytes != sizeof(std::uint64_t)) return StreamEnd::corrupted;
  std::uint64_t total = 0;
  copy_out(position_of(r) + static_cast<std::uint32_t>(sizeof(RecordHeader)),
           reinterpret_cast<std::byte*>(&total), sizeof total);
  const std::uint64_t stream_id = begin.stream_id;
  // Hint: we hold the lock for long now (1), and will not abandon the stream
  // for a deadline (2: its producer may skip to the next lap for us, INV10
  // (b)). Relaxed: our commit of BEGIN below (a release) publishes it.
  h.consumer_streaming.store(deadline.is_never() ? 2 : 1, std::memory_order_relaxed);
  struct ClearHint {
    std::atomic<std::uint32_t>& hint;
    ~ClearHint() { hint.store(0, std::memory_order_relaxed); }
  } clear_hint{h.consumer_streaming};

  r = pack(count_of(r), position_of(r) + record_bytes(sizeof total));
  commit_read(r);  // BEGIN's room is free
  wake_putters();
  std::vector<std::byte>& buffer = *target.buffer;
  buffer.clear();
  target.got_fixed = false;
  // An item of exactly the size of the caller's object (GetTarget::fixed),
  // after the lead the target expects (its prefix, see target_lead()), is
  // copied straight into it, chunk by chunk: no buffer in between. The lead
  // goes to `lead_bytes`; if it is not the expected prefix, what came so far
  // moves to the buffer and the rest follows it there.
  const std::size_t lead = target_lead(target);
  bool direct = target.fixed != nullptr && total == lead + target.fixed_size;
  std::array<std::byte, sizeof(std::uint64_t)> lead_bytes{};
  std::uint64_t received = 0;
  bool spin_may_win = true;  // false after a spin for a chunk failed, until one comes
  const auto leave_direct = [&] {
    direct = false;
    buffer.reserve(total);
    buffer.insert(buffer.end(), lead_bytes.begin(),
                  lead_bytes.begin() + static_cast<std::ptrdiff_t>(std::min<std::uint64_t>(received, lead)));
    if (received > lead) buffer.insert(buffer.end(), target.fixed, target.fixed + (received - lead));
  };
  // From here a throw (bad_alloc) leaves the rest of the stream as orphans,
  // which the next consumer frees (INV6): this item is lost, as if taken.
  if (!direct) buffer.reserve(total);

  for (;;) {
    const std::uint64_t w = h.write_word.load(std::memory_order_acquire);  // pairs with put's commit (INV1)
    h.known_write_word.store(w, std::memory_order_relaxed);                // INV11; we hold consumer_mutex
    if (position_of(w) == position_of(r)) {
      const bool shut_down = is_shut_down();
      if (shut_down || deadline.expired()) {
        // INV9: abandon the stream unless its producer is publishing LAST.
        // acq_rel: pairs with the producer's CAS to kStreamFinishing.
        std::uint64_t expected = stream_id;
        if (h.stream_state.compare_exchange_strong(expected, stream_id | kStreamAbandoned,
                                                   std::memory_order_acq_rel, std::memory_order_acquire)) {
          wake_putters();  // a producer waiting for room learns it at once
          buffer.clear();
          return shut_down ? StreamEnd::shut_down : StreamEnd::timed_out;
        }
        // Finishing, or no longer open (finished or aborted): its LAST or
        // ABORT is being published; wait for it below.
      }
      const auto ready = [&] {
        // acquire: pairs with put's commit
        return position_of(h.write_word.load(std::memory_order_acquire)) != position_of(r) ||
               (!shut_down && is_shut_down());
      };
      // Mid-item (the stream is open, not abandoned): the next chunk is
      // being copied; spin for it before sleeping. Not again after a spin
      // that failed until a chunk came: a reader whose producer stopped
      // (SIGSTOP) wakes every kStreamLivenessPoll and must not spin each time.
      const auto mid_item = [&] {
        // acquire: pairs with the producer's stores of stream_state (INV9)
        return (h.stream_state.load(std::memory_order_acquire) & ~kStreamFinishing) == stream_id;
      };
      if (spin_may_win && !shut_down && mid_item()) {
        if (stream_spin(
                ready, [] { return 0; }, deadline))
          continue;
        spin_may_win = false;
      }
      const Deadline poll = Deadline::after(kStreamLivenessPoll);
      const Deadline& until = deadline.when() < poll.when() ? deadline : poll;
      if (h.not_empty.await(ready, until)) continue;
      if (producer_gone_without_finishing(stream_id, position_of(r))) {
        buffer.clear();
        return StreamEnd::aborted;
      }
      continue;
    }
    RecordHeader record{};
    const std::uint32_t used = position_of(w) - position_of(r);
    const std::uint32_t record_size = read_header(position_of(r), used, record);
    if (record_size == 0) return StreamEnd::corrupted;
    if (record.kind == RecordKind::skip) {
      // INV10 (b): our producer went on at the next lap.
      const std::uint32_t next = lap_end(position_of(r), h.capacity);
      if (record.payload_bytes != 0 || next - position_of(r) > used) return StreamEnd::corrupted;
      const std::uint32_t skip_end = position_of(r) + kSkipRecord;
      r = pack(count_of(r), next);
      commit_read(r, skip_end);
      wake_putters();
      continue;
    }
    const bool ours = record.stream_id == stream_id;
    if (ours && record.kind == RecordKind::stream_abort) {
      r = pack(count_of(r), position_of(r) + record_size);
      commit_read(r);
      wake_putters();
      buffer.clear();
      return StreamEnd::aborted;
    }
    if (!ours || (record.kind != RecordKind::stream_chunk && record.kind != RecordKind::stream_last)) {
      // INV3 says this cannot happen; give the stream up and let the caller
      // treat this record as any other.
      buffer.clear();
      return StreamEnd::aborted;
    }
    const bool last = record.kind == RecordKind::stream_last;
    if (record.payload_bytes > total - received) return StreamEnd::corrupted;
    const std::uint32_t payload_at = position_of(r) + static_cast<std::uint32_t>(sizeof(RecordHeader));
    spin_may_win = true;
    if (direct) {
      std::uint32_t done = 0;  // bytes of this chunk copied
      if (received < lead) {   // the chunk starts in the lead
        done = static_cast<std::uint32_t>(std::min<std::uint64_t>(record.payload_bytes, lead - received));
        for (std::uint32_t i = 0; i < done; ++i)  // at most 8 bytes, once per item
          copy_out(payload_at + i, &lead_bytes[received + i], 1);
      }
      if (done < record.payload_bytes)  // then received + done >= lead
        copy_out(payload_at + done, target.fixed + (received + done - lead), record.payload_bytes - done);
      received += record.payload_bytes;
      if (lead != 0 && received >= lead) {
        std::uint64_t prefix = 0;
        std::memcpy(&prefix, lead_bytes.data(), sizeof prefix);
        if (prefix != target_prefix(target)) leave_direct();
      }
    } else {
      append_out(payload_at, record.payload_bytes, buffer);
      received += record.payload_bytes;
    }
    // The room is free; LAST also counts the item as got (INV4).
    r = pack(count_of(r) + (last ? 1 : 0), position_of(r) + record_size);
    commit_read(r);
    wake_putters();
    if (last) {
      if (received != total) return StreamEnd::corrupted;
      target.got_fixed = direct;
      return StreamEnd::complete;
    }
  }
}

}  // namespace mp::detail
