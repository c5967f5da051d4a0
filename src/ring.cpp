// src/ring.cpp — the byte ring behind mp::Queue: construction, plain items,
// shutdown and JoinableQueue (see include/mp/detail/ring.hpp for the design
// notes and the invariants INV1..INV7 referred to below). Streaming lives in
// ring_stream.cpp, byte-level helpers in ring_bytes.cpp.
#include "mp/detail/ring.hpp"

#include <algorithm>
#include <bit>
#include <climits>
#include <cstring>
#include <new>
#include <utility>

#include "mp/detail/futex.hpp"
#include "mp/detail/shm.hpp"
#include "ring_internal.hpp"

namespace mp::detail {

using namespace ring_internal;  // NOLINT(google-build-using-namespace): this file's own helpers

// ---- construction ------------------------------------------------------------

Ring::Ring(SharedRegion region)
    : region_(std::move(region)),
      header_(reinterpret_cast<RingHeader*>(region_.data())),
      data_(region_.data() + kRingDataOffset) {}

Ring Ring::create(std::uint64_t maxsize, std::uint32_t capacity) {
  static_assert(sizeof(RingHeader) <= kRingDataOffset);
  capacity = std::clamp(capacity, kMinRingCapacity, kMaxRingCapacity);
  capacity = std::bit_ceil(capacity);
  // The file has its full size at once but no pages: they come as the backlog
  // touches them and go as commit_read() punches them (INV8), so processes
  // forked earlier see every byte without remapping.
  SharedRegion region = SharedRegion::create(kRingDataOffset + capacity, "queue");
  auto* header = ::new (static_cast<void*>(region.data())) RingHeader{};
  header->magic = kRingMagic;
  header->version = kRingVersion;
  header->capacity = capacity;
  header->stream_threshold = capacity / 8;
  header->maxsize = maxsize;
  header->reclaim_granule = capacity >= kPunchMinCapacity ? kReclaimGranule : 0;
  header->next_stream_id = 1;
  return Ring(std::move(region));
}

Ring Ring::adopt(SharedRegion region) {
  const auto* header = reinterpret_cast<const RingHeader*>(region.data());
  if (region.size() < kRingDataOffset || header->magic != kRingMagic || header->version != kRingVersion ||
      header->capacity > region.size() - kRingDataOffset)
    throw CodecError("decode<mp::Queue>: the shared region does not hold a queue of this version of mp");
  return Ring(std::move(region));
}

// INV7: after a publish / a free.
void Ring::wake_getters() noexcept { header_->not_empty.notify_all(); }
void Ring::wake_putters() noexcept { header_->not_full.notify_all(); }

bool Ring::is_shut_down() const noexcept {
  return (header_->state.load(std::memory_order_acquire) & kShutdownBit) != 0;  // pairs with shutdown()
}

std::uint32_t Ring::size() const noexcept {
  // Read gets first: gets only grows and never passes puts, so a later puts is
  // at least this gets (INV2).
  const std::uint64_t r = header_->read_word.load(std::memory_order_acquire);   // pairs with get's commit
  const std::uint64_t w = header_->write_word.load(std::memory_order_acquire);  // pairs with put's commit
  return count_of(w) - count_of(r);
}

std::uint32_t Ring::total_gets() const noexcept {
  return count_of(header_->read_word.load(std::memory_order_acquire));  // pairs with get's commit
}

std::uint32_t Ring::producer_repairs() const noexcept {
  return header_->producer_repairs.load(std::memory_order_relaxed);  // a statistic, no ordering
}
std::uint32_t Ring::consumer_repairs() const noexcept {
  return header_->consumer_repairs.load(std::memory_order_relaxed);  // a statistic, no ordering
}

// Ring::lock_side(): a side's lock is held only for a memcpy unless its
// streaming hint is set, so non-blocking and timed calls still wait a few
// milliseconds for a short holder (never reporting Full/Empty just because a
// peer was mid-memcpy), but not for a whole stream.
LockOutcome Ring::lock_side(RobustMutex& mutex, const std::atomic<std::uint32_t>& streaming_hint,
                            const Deadline& deadline, bool nonblocking) noexcept {
  LockOutcome outcome = mutex.try_lock();
  if (outcome != LockOutcome::timed_out) return outcome;
  // relaxed: only a hint about how long to wait; the mutex gives the ordering.
  const bool long_hold = streaming_hint.load(std::memory_order_relaxed) != 0;
  if (!nonblocking && deadline.is_never()) return mutex.lock(Deadline::never());
  if (long_hold) return nonblocking ? LockOutcome::timed_out : mutex.lock(deadline);
  const Deadline short_hold = Deadline::after(kShortHold);
  if (nonblocking) return mutex.lock(short_hold);
  return mutex.lock(deadline.when() > short_hold.when() ? deadline : short_hold);
}

// ---- plain items -------------------------------------------------------------

RingStatus Ring::put(std::span<const std::byte> payload, const Deadline& deadline, bool nonblocking) {
  if (record_bytes(payload.size()) > header_->stream_threshold || payload.size() > UINT32_MAX)
    return put_stream(payload, deadline, nonblocking);
  return put_item(payload, deadline, nonblocking);
}

RingStatus Ring::put_item(std::span<const std::byte> payload, const Deadline& deadline, bool nonblocking) {
  RingHeader& h = *header_;
  const std::uint32_t record = record_bytes(payload.size());
  const auto has_room = [&](std::uint64_t w, std::uint32_t reclaimed, std::uint32_t gets) {
    return free_bytes(w, reclaimed) >= record && (h.maxsize == 0 || count_of(w) - gets < h.maxsize);
  };
  for (;;) {
    if (is_shut_down()) return RingStatus::shut_down;
    const LockOutcome outcome = lock_side(h.producer_mutex, h.producer_streaming, deadline, nonblocking);
    if (outcome == LockOutcome::timed_out) return RingStatus::would_block;
    if (outcome == LockOutcome::error) return RingStatus::lock_error;
    SideLock lock(h.producer_mutex);
    if (outcome == LockOutcome::owner_died) repair_producer();
    if (is_shut_down()) return RingStatus::shut_down;

    const std::uint64_t w = h.write_word.load(std::memory_order_relaxed);  // only stored under our lock
    if (!has_room(w, h.cached_reclaimed, h.cached_gets)) {
      // pairs with the release stores in commit_read(): the bytes below
      // `reclaimed` were read and may be reused (INV8); the count is the gets'
      h.cached_reclaimed = h.reclaimed.load(std::memory_order_acquire);
      h.cached_gets = count_of(h.read_word.load(std::memory_order_acquire));
    }
    if (has_room(w, h.cached_reclaimed, h.cached_gets)) {
      write_record(position_of(w), RecordKind::item, 0, payload);
      // INV1, INV2: one store publishes the record and counts it; pairs with the
      // acquire loads of write_word in get()
      h.write_word.store(pack(count_of(w) + 1, position_of(w) + record), std::memory_order_release);
      lock.unlock();
      wake_getters();
      return RingStatus::ok;
    }
    lock.unlock();
    if (nonblocking) return RingStatus::would_block;
    const auto ready = [&] {
      // acquire: pairs with the commits in get() and put()
      return has_room(h.write_word.load(std::memory_order_acquire),
                      h.reclaimed.load(std::memory_order_acquire),
                      count_of(h.read_word.load(std::memory_order_acquire))) ||
             is_shut_down();
    };
    if (!h.not_full.await(ready, deadline)) return RingStatus::would_block;
  }
}

RingStatus Ring::get(GetTarget& target, const Deadline& deadline, bool nonblocking) {
  RingHeader& h = *header_;
  const auto published = [&] {
    // acquire on both: pairs with the commits in put() and get()
    return position_of(h.write_word.load(std::memory_order_acquire)) !=
           position_of(h.read_word.load(std::memory_order_acquire));
  };
  for (;;) {
    if (!published()) {
      if (is_shut_down()) {
        if (!published()) return RingStatus::shut_down;
        continue;
      }
      if (nonblocking) return RingStatus::would_block;
      const auto ready = [&] { return published() || is_shut_down(); };
      if (!h.not_empty.await(ready, deadline)) return RingStatus::would_block;
      continue;
    }
    const LockOutcome outcome = lock_side(h.consumer_mutex, h.consumer_streaming, deadline, nonblocking);
    if (outcome == LockOutcome::timed_out) return RingStatus::would_block;
    if (outcome == LockOutcome::error) return RingStatus::lock_error;
    SideLock lock(h.consumer_mutex);
    // A dead consumer left nothing to repair: its last commit is whole (INV2)
    // and the rest of a stream it was reading is orphaned (INV6).
    if (outcome == LockOutcome::owner_died) {
      h.consumer_repairs.fetch_add(1, std::memory_order_relaxed);  // a statistic
      h.consumer_streaming.store(0, std::memory_order_relaxed);    // hint only: its reader is gone
    }

    std::uint64_t r = h.read_word.load(std::memory_order_relaxed);  // only stored under our lock
    for (;;) {
      const std::uint64_t w = h.write_word.load(std::memory_order_acquire);  // pairs with put's commit (INV1)
      if (position_of(w) == position_of(r)) break;                           // another consumer was first
      RecordHeader record{};
      copy_out(position_of(r), reinterpret_cast<std::byte*>(&record), sizeof record);
      const std::uint32_t used = position_of(w) - position_of(r);
      const std::uint32_t record_size = record_bytes(record.payload_bytes);
      if (record.payload_bytes > h.capacity || record_size > used) return RingStatus::corrupted;
      const std::uint32_t payload_at = position_of(r) + static_cast<std::uint32_t>(sizeof(RecordHeader));
      switch (record.kind) {
        case RecordKind::item: {
          if (target.fixed != nullptr && record.payload_bytes == target.fixed_size) {
            copy_out(payload_at, target.fixed, record.payload_bytes);
            target.got_fixed = true;
          } else {
            target.buffer->clear();  // keeps its capacity; insert() does not zero-fill first
            append_out(payload_at, record.payload_bytes, *target.buffer);
            target.got_fixed = false;
          }
          // INV2: one store frees the record and counts it
          commit_read(pack(count_of(r) + 1, position_of(r) + record_size));
          lock.unlock();
          wake_putters();
          return RingStatus::ok;
        }
        case RecordKind::stream_begin: {
          // INV4: with nothing counted, the stream at head is still being
          // written (a non-blocking get does not wait for it) or was aborted
          // (its ABORT is published before stream_state stops naming it: it
          // is dropped without waiting). acquire: pairs with the producer's
          // stores of stream_state (INV9).
          if (nonblocking && count_of(w) == count_of(r) &&
              (h.stream_state.load(std::memory_order_acquire) & kStreamIdMask) == record.stream_id)
            return RingStatus::would_block;
          switch (read_stream(record, r, target,
                              nonblocking ? Deadline::after(std::chrono::seconds(0)) : deadline)) {
            case StreamEnd::complete: return RingStatus::ok;
            case StreamEnd::aborted: continue;  // look for the next item
            case StreamEnd::timed_out: return RingStatus::would_block;
            case StreamEnd::shut_down: return RingStatus::shut_down;
            case StreamEnd::corrupted: return RingStatus::corrupted;
          }
          return RingStatus::corrupted;
        }
        case RecordKind::stream_chunk:
        case RecordKind::stream_last:
        case RecordKind::stream_abort: {
          // INV6: an orphan of a reader that died; free it.
          const bool last = record.kind == RecordKind::stream_last;
          r = pack(count_of(r) + (last ? 1 : 0), position_of(r) + record_size);
          commit_read(r);
          wake_putters();
          continue;
        }
        default: return RingStatus::corrupted;
      }
    }
  }
}

// ---- shutdown and JoinableQueue ----------------------------------------------

void Ring::shutdown() noexcept {
  RingHeader& h = *header_;
  h.state.fetch_or(kShutdownBit, std::memory_order_seq_cst);  // pairs with the acquire in is_shut_down()
  h.not_empty.notify_all();                                   // INV7: every ready() re-checks is_shut_down()
  h.not_full.notify_all();
}

bool Ring::task_done() noexcept {
  RingHeader& h = *header_;
  std::uint32_t done = h.tasks_done.load(std::memory_order_relaxed);  // the CAS below validates it
  for (;;) {
    // acquire: pairs with put's commit, so the count we compare with is real
    const std::uint32_t puts = count_of(h.write_word.load(std::memory_order_acquire));
    if (puts == done) return false;  // no unfinished task
    // acq_rel: pairs with other task_done() calls and with the acquire in join()
    if (h.tasks_done.compare_exchange_weak(done, done + 1, std::memory_order_acq_rel,
                                           std::memory_order_relaxed)) {
      if (count_of(h.write_word.load(std::memory_order_acquire)) == done + 1)  // pairs with put's commit
        h.all_done.notify_all();                                               // INV7
      return true;
    }
  }
}

std::uint32_t Ring::unfinished_tasks() const noexcept {
  const std::uint32_t done =
      header_->tasks_done.load(std::memory_order_acquire);  // pairs with task_done()'s CAS
  return count_of(header_->write_word.load(std::memory_order_acquire)) - done;  // pairs with put's commit
}

bool Ring::join(const Deadline& deadline) noexcept {
  RingHeader& h = *header_;
  const auto all_done = [&] { return unfinished_tasks() == 0; };
  return h.all_done.await(all_done, deadline);
}

}  // namespace mp::detail
