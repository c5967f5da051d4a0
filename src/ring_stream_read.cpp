// src/ring_stream_read.cpp — the reader's side of large items streamed
// through the ring in chunks (see include/mp/detail/ring.hpp, INV3..INV6,
// INV9, INV10 (b)); the producer's side is in ring_stream_put.cpp.
#include <algorithm>
#include <array>
#include <cstring>

#include "mp/detail/ring.hpp"
#include "ring_internal.hpp"
#include "ring_stream_spin.hpp"

namespace mp::detail {

using namespace ring_internal;  // NOLINT(google-build-using-namespace): this file's own helpers

namespace {

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
