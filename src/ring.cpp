// src/ring.cpp — the byte ring behind mp::Queue: construction, plain items,
// shutdown and JoinableQueue (see include/mp/detail/ring.hpp for the design
// notes and the invariants INV1..INV7 referred to below). Streaming lives in
// ring_stream_put.cpp and ring_stream_read.cpp, byte-level helpers in ring_bytes.cpp.
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

Ring Ring::create(std::uint64_t maxsize, std::uint32_t capacity, RingPacing pacing) {
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
  header->chase = pacing == RingPacing::stream && (maxsize == 0 || maxsize >= kChaseMinMaxsize) ? 1 : 0;
  header->reclaim_granule = capacity >= kPunchMinCapacity ? kReclaimGranule : 0;
  header->stream_chunk = header->stream_threshold;
  if (header->reclaim_granule != 0) {
    // A hot area (INV10); items too big for a few of them in it are streamed
    // through it in chunks.
    header->hot_bytes = kHotBytes;
    header->stream_threshold = kHotStreamThreshold;
    header->stream_chunk = kHotStreamChunk;
  }
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

// INV7: after a publish / a free. The _after_unlock forms are for a caller
// that released its side's robust mutex between its commit and this call:
// that unlock's atomic exchange of the lock word is the waker's full barrier
// (EventCount::notify_all_after_rmw()).
void Ring::wake_getters() noexcept { header_->not_empty.notify_all(); }
void Ring::wake_putters() noexcept { header_->not_full.notify_all(); }
void Ring::wake_getters_after_unlock() noexcept { header_->not_empty.notify_all_after_rmw(); }
void Ring::wake_putters_after_unlock() noexcept { header_->not_full.notify_all_after_rmw(); }

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

// Ring::lock_side_held(): lock_side() once try_lock() found the lock held.
// A side's lock is held only for a memcpy unless its streaming hint is set,
// so non-blocking and timed calls still wait a few milliseconds for a short
// holder (never reporting Full/Empty just because a peer was mid-memcpy),
// but not for a whole stream.
LockOutcome Ring::lock_side_held(RobustMutex& mutex, const std::atomic<std::uint32_t>& streaming_hint,
                                 const Deadline& deadline, bool nonblocking) noexcept {
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
  // streams(): the record would exceed stream_threshold (which also keeps
  // every plain record's size far below UINT32_MAX).
  if (streams(payload.size())) return put_stream({}, payload, deadline, nonblocking);
  return put_item({}, payload, deadline, nonblocking);
}

RingStatus Ring::put(std::span<const std::byte> lead, std::span<const std::byte> body,
                     const Deadline& deadline, bool nonblocking) {
  if (streams(lead.size() + body.size())) return put_stream(lead, body, deadline, nonblocking);
  return put_item(lead, body, deadline, nonblocking);
}

// Ring::put_item(lead, body, ...): one item record whose payload is lead
// then body, copied into the ring under producer_mutex (INV1, INV2).
RingStatus Ring::put_item(std::span<const std::byte> lead, std::span<const std::byte> body,
                          const Deadline& deadline, bool nonblocking) {
  RingHeader& h = *header_;
  const std::uint32_t record = item_record_bytes(lead.size() + body.size());
  const auto below_maxsize = [&](std::uint64_t w, std::uint32_t gets) {
    return h.maxsize == 0 || count_of(w) - gets < h.maxsize;
  };
  for (;;) {
    if (is_shut_down()) return RingStatus::shut_down;
    if (const RingStatus locked = lock_producers(deadline, nonblocking); locked != RingStatus::ok)
      return locked;
    SideLock lock(h.producer_mutex);
    if (is_shut_down()) return RingStatus::shut_down;

    std::uint64_t w = h.write_word.load(std::memory_order_relaxed);  // only stored under our lock
    if (!below_maxsize(w, h.cached_gets))
      // pairs with get's commit: the count of items got
      h.cached_gets = count_of(h.read_word.load(std::memory_order_acquire));
    const std::uint32_t at =
        below_maxsize(w, h.cached_gets) ? claim(w, record, deadline, nonblocking) : kNoRoom;
    if (at != kNoRoom) {
      write_record(at, RecordKind::item, 0, lead, body);
      // INV1, INV2: one store publishes the record and counts it; pairs with the
      // acquire loads of write_word in get()
      h.write_word.store(pack(count_of(w) + 1, at + record), std::memory_order_release);
      lock.unlock();
      wake_getters_after_unlock();
      return RingStatus::ok;
    }
    lock.unlock();
    if (is_shut_down()) return RingStatus::shut_down;
    if (nonblocking) return RingStatus::would_block;
    const auto ready = [&] {
      // acquire: pairs with the commits in get() and put()
      const std::uint64_t now_w = h.write_word.load(std::memory_order_acquire);
      return (free_bytes(now_w, h.reclaimed.load(std::memory_order_acquire)) >= record &&
              below_maxsize(now_w, count_of(h.read_word.load(std::memory_order_acquire)))) ||
             is_shut_down();
    };
    if (!h.not_full.await(ready, deadline)) return RingStatus::would_block;
  }
}

// ---- the hot area: where a record goes, rewinds (INV10) ----------------------

// Ring::claim(w, record, deadline, nonblocking): under producer_mutex; where
// a record of `record` bytes goes: at the tail, or at the start of the next
// lap after a rewind (then `w` is the rewound write word). kNoRoom if it does
// not fit now. A record that does not fit in what is left of the hot area
// looks for the way back to it: a rewind if the ring is empty, and for a
// blocking put, first a wait for the consumers to drain it while they make
// progress. Else the record goes on at the tail, into the cold part.
//
// The way back is looked for at the end of the hot area and, in the cold
// part, where a record reaches into a granule not written before (once per
// MiB); the drain is waited for where drain_worth_waiting_for() says.
// Without the look in the cold part, a producer faster than its consumer
// would never find the ring empty again once one stall of the consumer sent
// it past the hot area: every page of the rest of the run then costs a
// fault, a zeroing and a punch (measured: 4 KiB items 3.6-3.9 GB/s once
// cold, ~8 GB/s in the hot area). Looking on every put instead would read
// the consumers' read_word line on every item.
// (The common case, a record that fits where it is, is inline in
// ring_internal.hpp; this is the rest.)
std::uint32_t Ring::claim_past_hot(std::uint64_t& w, std::uint32_t record, const Deadline& deadline,
                                   bool nonblocking) noexcept {
  const std::uint32_t tail = position_of(w);
  if (can_skip_at(tail) && (is_hot(tail) || enters_new_granule(tail, record))) {
    if (rewind_if_empty(w)) return position_of(w);
    if (!nonblocking && drain_worth_waiting_for(tail, record) && wait_for_drain(tail, deadline) &&
        rewind_if_empty(w))
      return position_of(w);
  }
  return room_at(tail, record) ? tail : kNoRoom;
}

// Ring::drain_worth_waiting_for(position, record): under producer_mutex; a
// producer whose next record (`record` bytes at `position`) does not fit in
// the hot area may wait for the consumers to drain the ring, so that it can
// rewind: at the end of the hot area, and in the cold part where the record
// reaches into a new granule while the consumers are at work
// (consumers_moved()), so that a producer that fills the queue before anyone
// gets does not wait at every granule. claim_past_hot() for plain records,
// stream_once() per chunk.
bool Ring::drain_worth_waiting_for(std::uint32_t position, std::uint32_t record) noexcept {
  return is_hot(position) || (enters_new_granule(position, record) && consumers_moved());
}

// Ring::consumers_moved(): under producer_mutex; have the consumers taken
// anything since the producers last asked?
bool Ring::consumers_moved() noexcept {
  RingHeader& h = *header_;
  // acquire: pairs with get's commit (a hint: wait_for_drain() reads again)
  const std::uint32_t head = position_of(h.read_word.load(std::memory_order_acquire));
  const bool moved = head != h.head_seen;
  h.head_seen = head;
  return moved;
}

// Ring::wait_for_drain(tail, deadline): under producer_mutex; true once the
// consumers have taken everything up to `tail`; false if they stop making
// progress for kDrainStall, or have not finished within kDrainBudget (or the
// deadline passes, or shutdown): the caller then grows into the cold part
// instead of waiting for them.
bool Ring::wait_for_drain(std::uint32_t tail, const Deadline& deadline) noexcept {
  RingHeader& h = *header_;
  const Deadline budget = Deadline::after(kDrainBudget);
  const Deadline& limit = deadline.when() < budget.when() ? deadline : budget;
  // acquire: pairs with get's commit (the records before head were read)
  std::uint32_t head = position_of(h.read_word.load(std::memory_order_acquire));
  while (head != tail) {
    const Deadline stall = Deadline::after(kDrainStall);
    const Deadline& until = limit.when() < stall.when() ? limit : stall;
    const auto moved = [&] {
      // acquire: pairs with get's commit, which is followed by not_full.notify_all() (INV7)
      return position_of(h.read_word.load(std::memory_order_acquire)) != head || is_shut_down();
    };
    if (!h.not_full.await(moved, until) || is_shut_down()) return false;
    head = position_of(h.read_word.load(std::memory_order_acquire));  // pairs with get's commit
  }
  return true;
}

// Ring::rewind_if_empty(w): under producer_mutex, with no stream open; if the
// ring is empty, takes consumer_mutex (waiting only for a commit in
// progress) and rewinds. True if it did.
bool Ring::rewind_if_empty(std::uint64_t& w) noexcept {
  RingHeader& h = *header_;
  // acquire: pairs with get's commit. Only a hint here; re-read under the lock.
  if (position_of(h.read_word.load(std::memory_order_acquire)) != position_of(w)) return false;
  const LockOutcome outcome = h.consumer_mutex.lock(Deadline::after(kRewindLockWait));
  if (outcome == LockOutcome::timed_out || outcome == LockOutcome::error) return false;
  SideLock lock(h.consumer_mutex);
  if (outcome == LockOutcome::owner_died) {
    // As in get(): a dead consumer left nothing to repair (INV2, INV6).
    h.consumer_repairs.fetch_add(1, std::memory_order_relaxed);  // a statistic
    h.consumer_streaming.store(0, std::memory_order_relaxed);    // hint only: its reader is gone
  }
  const std::uint64_t r = h.read_word.load(std::memory_order_relaxed);  // only stored under the lock we hold
  if (position_of(r) != position_of(w)) return false;
  rewind(w, r);
  return true;
}

// Ring::rewind(w, r): with both locks held and the ring empty (tail == head)
// at a position where a SKIP fits: moves tail and head to the next lap's
// start (INV10 (a)). Two stores, each leaving a valid ring: first the SKIP is
// published (a process killed here leaves it for the next consumer, who
// passes it as we are about to), then passed.
void Ring::rewind(std::uint64_t& w, std::uint64_t r) noexcept {
  RingHeader& h = *header_;
  const std::uint32_t tail = position_of(w);
  const std::uint32_t next = lap_end(tail, h.capacity);
  write_record(tail, RecordKind::skip, 0, {});
  w = pack(count_of(w), next);
  // INV1: pairs with the acquire loads of write_word in get(): publishes the SKIP
  h.write_word.store(w, std::memory_order_release);
  h.known_write_word.store(w, std::memory_order_relaxed);    // INV11: we hold consumer_mutex
  commit_read(pack(count_of(r), next), tail + kSkipRecord);  // passes it (INV8: punches what was used)
  h.cached_reclaimed = next;  // commit_read() just published it: nothing before `next` is in use
  wake_putters();             // INV7: there is more room now
}

// Ring::rewind_after_drain(r): under consumer_mutex, just after committing
// r; if that emptied the ring in its cold part, rewinds it (taking
// producer_mutex only if it is free: a producer holding it is putting, and
// rewinds itself), so a drained queue keeps only the hot area's pages.
void Ring::rewind_after_drain(std::uint64_t r) noexcept {
  RingHeader& h = *header_;
  const std::uint32_t head = position_of(r);
  if (h.hot_bytes == 0 || is_hot(head) || !can_skip_at(head)) return;
  // INV11: records below known_write_word are published, so a known position
  // past head means "not empty" without a look at the producers' line (which
  // the producer writes on every put). Relaxed: stored under our lock.
  if (position_of(h.known_write_word.load(std::memory_order_relaxed)) != head) return;
  // acquire: pairs with put's commit. A hint; re-read under the lock.
  if (position_of(h.write_word.load(std::memory_order_acquire)) != head) return;
  const LockOutcome outcome = h.producer_mutex.try_lock();
  if (outcome == LockOutcome::timed_out || outcome == LockOutcome::error) return;
  SideLock lock(h.producer_mutex);
  if (outcome == LockOutcome::owner_died) repair_producer();       // may publish an ABORT: then not empty
  std::uint64_t w = h.write_word.load(std::memory_order_relaxed);  // only stored under the lock we hold
  if (position_of(w) != head || h.open_stream_id != 0) return;
  rewind(w, r);
}

RingStatus Ring::get(GetTarget& target, const Deadline& deadline, bool nonblocking) {
  RingHeader& h = *header_;
  // published(first_look): is an item there? From the consumers' copy of
  // write_word while it is ahead of head (INV11), else from write_word. The
  // first look of a get() also keeps the chase rule (consumer_chasing) in a
  // ring made for it (RingHeader::chase).
  const auto published = [&](bool first_look) {
    // acquire: pairs with the commits in get()
    const std::uint64_t r = h.read_word.load(std::memory_order_acquire);
    const std::uint32_t head = position_of(r);
    // relaxed: a hint (INV11); the lock below orders what we then read
    if (position_of(h.known_write_word.load(std::memory_order_relaxed)) - head - 1 < h.capacity) return true;
    if (!first_look || h.chase == 0) {
      // acquire: pairs with put's commit
      return position_of(h.write_word.load(std::memory_order_acquire)) != head;
    }
    const bool chasing = h.consumer_chasing.load(std::memory_order_relaxed) != 0;  // a hint
    if (chasing)
      for (int i = 0; i < kChaseBackoffPauses; ++i) cpu_relax();
    // acquire: pairs with put's commit
    const std::uint64_t w = h.write_word.load(std::memory_order_acquire);
    const bool found = position_of(w) != head;
    const bool ahead = count_of(w) - count_of(r) > 1;  // more than one item: they are streaming
    if (ahead != chasing) h.consumer_chasing.store(ahead ? 1 : 0, std::memory_order_relaxed);  // only changes
    return found;
  };
  for (bool first_look = true;; first_look = false) {
    if (!published(first_look)) {
      if (is_shut_down()) {
        if (!published(false)) return RingStatus::shut_down;
        continue;
      }
      if (nonblocking) return RingStatus::would_block;
      const auto ready = [&] { return published(false) || is_shut_down(); };
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
      // INV11: records below what a consumer last read of write_word need no
      // new look at the producers' line. Relaxed: stored under our lock, and
      // the lock orders the record bytes its reader acquired.
      std::uint64_t w = h.known_write_word.load(std::memory_order_relaxed);
      if (position_of(w) - position_of(r) - 1 >= h.capacity) {   // caught up (or stale): look again
        w = h.write_word.load(std::memory_order_acquire);        // pairs with put's commit (INV1)
        h.known_write_word.store(w, std::memory_order_relaxed);  // INV11; read under our lock
      }
      if (position_of(w) == position_of(r)) break;  // another consumer was first
      RecordHeader record{};
      const std::uint32_t used = position_of(w) - position_of(r);
      const std::uint32_t record_size = read_header(position_of(r), used, record);
      if (record_size == 0) return RingStatus::corrupted;
      const std::uint32_t payload_at = position_of(r) + header_bytes(record.kind);
      switch (record.kind) {
        case RecordKind::item: {
          const std::uint32_t lead = target.prefixed ? sizeof(std::uint64_t) : 0;
          std::uint64_t prefix = target.prefix;
          if (target.prefixed && record.payload_bytes >= lead)
            copy_out(payload_at, reinterpret_cast<std::byte*>(&prefix), sizeof prefix);
          if (target.fixed != nullptr && record.payload_bytes == lead + target.fixed_size &&
              prefix == target.prefix) {
            copy_out(payload_at + lead, target.fixed, target.fixed_size);
            target.got_fixed = true;
          } else {
            target.buffer->clear();  // keeps its capacity; insert() does not zero-fill first
            append_out(payload_at, record.payload_bytes, *target.buffer);
            target.got_fixed = false;
          }
          // INV2: one store frees the record and counts it
          r = pack(count_of(r) + 1, position_of(r) + record_size);
          commit_read(r);
          rewind_after_drain(r);
          lock.unlock();
          wake_putters_after_unlock();
          return RingStatus::ok;
        }
        case RecordKind::stream_begin: {
          // INV4: with nothing counted, the stream at head is still being
          // written (a non-blocking get does not wait for it) or was aborted
          // (its ABORT is published before stream_state stops naming it: it
          // is dropped without waiting). acquire: pairs with the producer's
          // stores of stream_state (INV9).
          // (The count of a fresh write_word: INV11's copy may be older.)
          if (nonblocking && count_of(h.write_word.load(std::memory_order_acquire)) == count_of(r) &&
              (h.stream_state.load(std::memory_order_acquire) & kStreamIdMask) == record.stream_id)
            return RingStatus::would_block;
          // read_stream() copies a stream straight into target.fixed when
          // its payload is the target's lead (a prefixed target's 8 bytes)
          // and fixed_size bytes, else into the buffer.
          const StreamEnd end = read_stream(
              record, r, target, nonblocking ? Deadline::after(std::chrono::seconds(0)) : deadline);
          switch (end) {
            case StreamEnd::complete:
              rewind_after_drain(h.read_word.load(std::memory_order_relaxed));  // ours: we hold the lock
              return RingStatus::ok;
            case StreamEnd::aborted: continue;  // look for the next item
            case StreamEnd::timed_out: return RingStatus::would_block;
            case StreamEnd::shut_down: return RingStatus::shut_down;
            case StreamEnd::corrupted: return RingStatus::corrupted;
          }
          return RingStatus::corrupted;
        }
        case RecordKind::skip: {
          // INV10: left by a rewind whose writer died, or by a stream whose
          // reader died; nothing more in this lap.
          const std::uint32_t next = lap_end(position_of(r), h.capacity);
          if (record.payload_bytes != 0 || next - position_of(r) > used) return RingStatus::corrupted;
          r = pack(count_of(r), next);
          commit_read(r, payload_at);
          wake_putters();
          continue;
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

// Ring::task_done(): the count of puts is needed twice (is there an
// unfinished task? did this one finish the last?). A consumer answers both
// from the consumers' copy of write_word (INV11: a value write_word had, so
// a lower bound of puts) while that copy is ahead of the count, and reads
// the producers' write_word only otherwise: consumers that are behind then
// call task_done() without pulling the producers' cache line away from them
// on every item.
bool Ring::task_done() noexcept {
  RingHeader& h = *header_;
  // ahead(a, b): count a is past count b (counts are mod 2^32; fewer than
  // 2^31 tasks are ever unfinished).
  const auto ahead = [](std::uint32_t a, std::uint32_t b) { return static_cast<std::int32_t>(a - b) > 0; };
  std::uint32_t done = h.tasks_done.load(std::memory_order_relaxed);  // the CAS below validates it
  for (;;) {
    // relaxed: only the count matters, and any value write_word had is <= puts now
    std::uint32_t known_puts = count_of(h.known_write_word.load(std::memory_order_relaxed));
    if (!ahead(known_puts, done)) {
      // acquire: pairs with put's commit, so the count we compare with is real
      known_puts = count_of(h.write_word.load(std::memory_order_acquire));
      if (known_puts == done) return false;  // no unfinished task
    }
    // acq_rel: pairs with other task_done() calls and with the acquire in join()
    if (h.tasks_done.compare_exchange_weak(done, done + 1, std::memory_order_acq_rel,
                                           std::memory_order_relaxed)) {
      // relaxed: a lower bound of puts, as above. Ahead of done + 1: more
      // tasks are unfinished, this was not the last.
      if (ahead(count_of(h.known_write_word.load(std::memory_order_relaxed)), done + 1)) return true;
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
