// src/ring.cpp — the byte ring behind mp::Queue (see include/mp/detail/ring.hpp
// for the design notes and the invariants INV1..INV7 referred to below).
#include "mp/detail/ring.hpp"

#include <algorithm>
#include <bit>
#include <climits>
#include <cstring>
#include <new>
#include <utility>

#include "mp/detail/futex.hpp"
#include "mp/detail/shm.hpp"

namespace mp::detail {
namespace {

// Spins before a waiter goes to sleep (each a `pause`, some tens of ns): long
// enough to cover a peer's put or get in progress, short enough not to steal
// a shared core for more than a few microseconds.
constexpr int kSpinIterations = 200;

// A streamed item's reader checks this often whether its producer died.
constexpr auto kStreamLivenessPoll = std::chrono::milliseconds(10);

// A lock is held only for a memcpy unless the side's streaming hint is set;
// a timed or non-blocking call waits at least this long for such a holder.
constexpr auto kShortHold = std::chrono::milliseconds(5);

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

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// wait_for(seq, sleepers, ready, deadline): the sleeping half of INV7. Spins
// a little, then raises the `sleepers` flag and sleeps on `seq` until ready()
// holds or the deadline passes. Returns ready()'s last value.
template <class Ready>
bool wait_for(std::atomic<std::uint32_t>& seq, std::atomic<std::uint32_t>& sleepers, Ready ready,
              const Deadline& deadline) noexcept {
  for (int i = 0; i < kSpinIterations; ++i) {
    if (ready()) return true;
    cpu_relax();
  }
  for (;;) {
    // INV7: an acq_rel RMW on `sleepers`; a waker's exchange on it either
    // comes first (we read from it, so we see the state it published) or
    // reads our 1 and wakes us. Raised again before every sleep, since a
    // waker lowers it.
    sleepers.exchange(1, std::memory_order_acq_rel);
    // Read the sequence word before re-checking: a bump after this read makes
    // futex_wait return at once.
    const std::uint32_t observed = seq.load(std::memory_order_acquire);  // pairs with the waker's fetch_add
    if (ready()) return true;
    if (deadline.expired()) return false;
    (void)futex_wait(seq, observed, deadline);
  }
  // The flag is left raised: at worst one later waker makes one needless
  // FUTEX_WAKE (and lowers it).
}

// wake(seq, sleepers): the waking half of INV7, after the caller's state
// change. One FUTEX_WAKE per raising of the flag, not one per item: while a
// woken consumer is still being scheduled, further puts make no system call.
void wake(std::atomic<std::uint32_t>& seq, std::atomic<std::uint32_t>& sleepers) noexcept {
  // INV7: an RMW (not a plain load) so that it is ordered with the sleeper's
  // exchange on the same word; release publishes our state change to a
  // sleeper whose exchange comes after ours. (An RMW rather than a seq_cst
  // fence, which ThreadSanitizer does not model.)
  if (sleepers.exchange(0, std::memory_order_acq_rel) != 0) {
    seq.fetch_add(1, std::memory_order_release);  // pairs with the acquire load in wait_for()
    futex_wake(seq, INT_MAX);
  }
}

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

}  // namespace

// ---- construction ------------------------------------------------------------

Ring::Ring(std::shared_ptr<std::byte> mapping, std::size_t mapped_bytes)
    : mapping_(std::move(mapping)),
      mapped_bytes_(mapped_bytes),
      header_(reinterpret_cast<RingHeader*>(mapping_.get())),
      data_(mapping_.get() + sizeof(RingHeader)) {}

Ring Ring::create(std::uint64_t maxsize, std::uint32_t capacity) {
  capacity = std::clamp(capacity, kMinRingCapacity, kMaxRingCapacity);
  capacity = std::bit_ceil(capacity);
  const std::size_t total = sizeof(RingHeader) + capacity;
  auto mapping = map_shared_bytes(total, "queue");
  auto* header = ::new (static_cast<void*>(mapping.get())) RingHeader{};
  header->magic = kRingMagic;
  header->version = kRingVersion;
  header->capacity = capacity;
  header->stream_threshold = capacity / 8;
  header->maxsize = maxsize;
  header->next_stream_id = 1;
  return Ring(std::move(mapping), total);
}

// ---- small helpers -----------------------------------------------------------

std::uint32_t Ring::free_bytes(std::uint64_t write_word, std::uint64_t read_word) const noexcept {
  // A stale read_word (the producers' cache) may lag so far that the
  // difference exceeds the capacity: that means "no room known", not wrap-around.
  const std::uint32_t used = position_of(write_word) - position_of(read_word);
  return used >= header_->capacity ? 0 : header_->capacity - used;
}

void Ring::copy_in(std::uint32_t position, const std::byte* source, std::size_t n) noexcept {
  if (n == 0) return;
  const std::uint32_t mask = header_->capacity - 1;
  const std::size_t offset = position & mask;
  const std::size_t first = std::min<std::size_t>(n, header_->capacity - offset);
  std::memcpy(data_ + offset, source, first);
  if (first < n) std::memcpy(data_, source + first, n - first);
}

void Ring::copy_out(std::uint32_t position, std::byte* destination, std::size_t n) const noexcept {
  if (n == 0) return;
  const std::uint32_t mask = header_->capacity - 1;
  const std::size_t offset = position & mask;
  const std::size_t first = std::min<std::size_t>(n, header_->capacity - offset);
  std::memcpy(destination, data_ + offset, first);
  if (first < n) std::memcpy(destination + first, data_, n - first);
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
  RecordHeader record{static_cast<std::uint32_t>(a.size() + b.size()), kind, stream_id};
  copy_in(tail, reinterpret_cast<const std::byte*>(&record), sizeof record);
  copy_in(tail + static_cast<std::uint32_t>(sizeof record), a.data(), a.size());
  copy_in(tail + static_cast<std::uint32_t>(sizeof record + a.size()), b.data(), b.size());
}

void Ring::wake_getters() noexcept { wake(header_->not_empty_seq, header_->getters_waiting); }
void Ring::wake_putters() noexcept { wake(header_->not_full_seq, header_->putters_waiting); }

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
    const std::uint64_t r = h.read_word.load(std::memory_order_acquire);   // pairs with get's commit
    if (free_bytes(w, r) >= record_bytes(0)) {                             // INV5
      write_record(position_of(w), RecordKind::stream_abort, h.open_stream_id, {});
      // pairs with the acquire loads of write_word in get(): publishes the ABORT
      h.write_word.store(pack(count_of(w), position_of(w) + record_bytes(0)), std::memory_order_release);
    }
    h.open_stream_id = 0;
    wake_getters();
  }
  h.producer_streaming.store(0, std::memory_order_relaxed);  // hint only
}

RingStatus Ring::put(std::span<const std::byte> payload, const Deadline& deadline, bool nonblocking) {
  if (record_bytes(payload.size()) > header_->stream_threshold || payload.size() > UINT32_MAX)
    return put_stream(payload, deadline, nonblocking);
  return put_item(payload, deadline, nonblocking);
}

RingStatus Ring::put_item(std::span<const std::byte> payload, const Deadline& deadline, bool nonblocking) {
  RingHeader& h = *header_;
  const std::uint32_t record = record_bytes(payload.size());
  const auto has_room = [&](std::uint64_t w, std::uint64_t r) {
    return free_bytes(w, r) >= record && (h.maxsize == 0 || count_of(w) - count_of(r) < h.maxsize);
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
    std::uint64_t r = h.cached_read_word;
    if (!has_room(w, r)) {
      // pairs with the release store in get(): the bytes before head were read and may be reused
      r = h.read_word.load(std::memory_order_acquire);
      h.cached_read_word = r;
    }
    if (has_room(w, r)) {
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
                      h.read_word.load(std::memory_order_acquire)) ||
             is_shut_down();
    };
    if (!wait_for(h.not_full_seq, h.putters_waiting, ready, deadline)) return RingStatus::would_block;
  }
}

RingStatus Ring::put_stream(std::span<const std::byte> payload, const Deadline& deadline, bool nonblocking) {
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

  // Open the stream once there is room for one more item and for BEGIN plus
  // the ABORT reserve (INV5).
  const std::uint32_t begin_record = record_bytes(sizeof(std::uint64_t));
  const auto can_open = [&] {
    const std::uint64_t w = h.write_word.load(std::memory_order_relaxed);  // ours
    const std::uint64_t r = h.read_word.load(std::memory_order_acquire);   // pairs with get's commit
    return free_bytes(w, r) >= begin_record + kAbortReserve &&
           (h.maxsize == 0 || count_of(w) - count_of(r) < h.maxsize);
  };
  while (!can_open()) {
    if (is_shut_down()) return RingStatus::shut_down;
    if (nonblocking) return RingStatus::would_block;
    const auto ready = [&] { return can_open() || is_shut_down(); };
    if (!wait_for(h.not_full_seq, h.putters_waiting, ready, deadline)) return RingStatus::would_block;
  }
  if (is_shut_down()) return RingStatus::shut_down;

  const std::uint64_t stream_id = h.next_stream_id++;
  if (h.next_stream_id == 0) h.next_stream_id = 1;
  h.open_stream_id = stream_id;  // INV5 holds from here: can_open() kept the reserve
  {
    const std::uint64_t total = payload.size();
    const std::uint64_t w = h.write_word.load(std::memory_order_relaxed);  // ours
    write_record(position_of(w), RecordKind::stream_begin, stream_id,
                 std::as_bytes(std::span<const std::uint64_t, 1>(&total, 1)));
    // pairs with the acquire loads in get(): publishes BEGIN (not counted: INV4)
    h.write_word.store(pack(count_of(w), position_of(w) + begin_record), std::memory_order_release);
    wake_getters();
  }

  const std::size_t chunk_max = h.stream_threshold - sizeof(RecordHeader);
  std::size_t sent = 0;
  while (sent < payload.size()) {
    const std::size_t remaining = payload.size() - sent;
    const std::size_t smallest_worth_it = std::min(remaining, chunk_max / 4);
    const std::uint64_t w = h.write_word.load(std::memory_order_relaxed);  // ours
    const std::uint64_t r = h.read_word.load(std::memory_order_acquire);   // pairs with get's commit
    const std::uint32_t free = free_bytes(w, r);
    // Bytes we may use for this chunk's payload, keeping the ABORT reserve (INV5).
    const std::size_t usable = free >= kAbortReserve + sizeof(RecordHeader) + 8
                                   ? (free - kAbortReserve - sizeof(RecordHeader)) & ~7u
                                   : 0;
    const std::size_t want = std::min({remaining, chunk_max, usable});
    if (want < smallest_worth_it) {
      if (is_shut_down()) {
        abort_open_stream();  // consumers drop what they read of it
        return RingStatus::shut_down;
      }
      const std::uint32_t needed = record_bytes(smallest_worth_it) + kAbortReserve;
      const auto ready = [&] {
        // acquire: pairs with get's commit
        return free_bytes(h.write_word.load(std::memory_order_relaxed),
                          h.read_word.load(std::memory_order_acquire)) >= needed ||
               is_shut_down();
      };
      (void)wait_for(h.not_full_seq, h.putters_waiting, ready, Deadline::never());
      continue;
    }
    const bool last = want == remaining;
    write_record(position_of(w), last ? RecordKind::stream_last : RecordKind::stream_chunk, stream_id,
                 payload.subspan(sent, want));
    // pairs with the acquire loads in get(): publishes the chunk; LAST counts the item (INV4)
    h.write_word.store(pack(count_of(w) + (last ? 1 : 0), position_of(w) + record_bytes(want)),
                       std::memory_order_release);
    wake_getters();
    sent += want;
  }
  h.open_stream_id = 0;
  return RingStatus::ok;
}

// ---- consumer side -----------------------------------------------------------

// Ring::producer_gone_without_finishing(): asked by a stream's reader that
// found nothing new. The streaming producer holds producer_mutex to the end,
// so if we can take it, the producer is gone: a dead one is repaired here
// (its ABORT becomes visible); a stream that is neither open nor followed by
// any record can never finish.
bool Ring::producer_gone_without_finishing(std::uint64_t stream_id) noexcept {
  RingHeader& h = *header_;
  const LockOutcome outcome = h.producer_mutex.try_lock();
  if (outcome == LockOutcome::timed_out || outcome == LockOutcome::error) return false;
  SideLock lock(h.producer_mutex);
  if (outcome == LockOutcome::owner_died) repair_producer();
  const std::uint64_t w = h.write_word.load(std::memory_order_acquire);  // pairs with put's commit
  const std::uint64_t r = h.read_word.load(std::memory_order_relaxed);   // ours: we hold consumer_mutex
  if (position_of(w) != position_of(r)) return false;                    // something to read (LAST or ABORT)
  return h.open_stream_id != stream_id;
}

// Ring::read_stream(): we hold consumer_mutex and the record at head is BEGIN.
// Copies the chunks out as they are published, committing each (so the
// producer can reuse the room), until LAST (ok) or ABORT (would_block: the
// caller looks for the next item).
RingStatus Ring::read_stream(const RecordHeader& begin, std::uint64_t& r, GetTarget& target) {
  RingHeader& h = *header_;
  if (begin.payload_bytes != sizeof(std::uint64_t)) return RingStatus::corrupted;
  std::uint64_t total = 0;
  copy_out(position_of(r) + static_cast<std::uint32_t>(sizeof(RecordHeader)),
           reinterpret_cast<std::byte*>(&total), sizeof total);
  const std::uint64_t stream_id = begin.stream_id;
  h.consumer_streaming.store(1, std::memory_order_relaxed);  // hint: we hold the lock for long now
  struct ClearHint {
    std::atomic<std::uint32_t>& hint;
    ~ClearHint() { hint.store(0, std::memory_order_relaxed); }
  } clear_hint{h.consumer_streaming};

  r = pack(count_of(r), position_of(r) + record_bytes(sizeof total));
  h.read_word.store(r, std::memory_order_release);  // pairs with the producer's acquire: BEGIN's room is free
  wake_putters();
  std::vector<std::byte>& buffer = *target.buffer;
  buffer.clear();
  target.got_fixed = false;
  // From here a throw (bad_alloc) leaves the rest of the stream as orphans,
  // which the next consumer frees (INV6): this item is lost, as if taken.
  buffer.reserve(total);

  for (;;) {
    const std::uint64_t w = h.write_word.load(std::memory_order_acquire);  // pairs with put's commit (INV1)
    if (position_of(w) == position_of(r)) {
      const auto ready = [&] {
        // acquire: pairs with put's commit
        return position_of(h.write_word.load(std::memory_order_acquire)) != position_of(r);
      };
      if (wait_for(h.not_empty_seq, h.getters_waiting, ready, Deadline::after(kStreamLivenessPoll))) continue;
      if (producer_gone_without_finishing(stream_id)) {
        buffer.clear();
        return RingStatus::would_block;
      }
      continue;
    }
    RecordHeader record{};
    copy_out(position_of(r), reinterpret_cast<std::byte*>(&record), sizeof record);
    const std::uint32_t used = position_of(w) - position_of(r);
    if (record_bytes(record.payload_bytes) > used) return RingStatus::corrupted;
    const bool ours = record.stream_id == stream_id;
    if (ours && record.kind == RecordKind::stream_abort) {
      r = pack(count_of(r), position_of(r) + record_bytes(record.payload_bytes));
      h.read_word.store(r, std::memory_order_release);  // pairs with the producer's acquire: room is free
      wake_putters();
      buffer.clear();
      return RingStatus::would_block;
    }
    if (!ours || (record.kind != RecordKind::stream_chunk && record.kind != RecordKind::stream_last)) {
      // INV3 says this cannot happen; give the stream up and let the caller
      // treat this record as any other.
      buffer.clear();
      return RingStatus::would_block;
    }
    const bool last = record.kind == RecordKind::stream_last;
    if (buffer.size() + record.payload_bytes > total) return RingStatus::corrupted;
    append_out(position_of(r) + static_cast<std::uint32_t>(sizeof(RecordHeader)), record.payload_bytes,
               buffer);
    // pairs with the producer's acquire load of read_word: the room is free;
    // LAST also counts the item as got (INV4)
    r = pack(count_of(r) + (last ? 1 : 0), position_of(r) + record_bytes(record.payload_bytes));
    h.read_word.store(r, std::memory_order_release);
    wake_putters();
    if (last) return buffer.size() == total ? RingStatus::ok : RingStatus::corrupted;
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
      if (!wait_for(h.not_empty_seq, h.getters_waiting, ready, deadline)) return RingStatus::would_block;
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
          // INV2: one store frees the record and counts it; pairs with the
          // producer's acquire load of read_word
          h.read_word.store(pack(count_of(r) + 1, position_of(r) + record_size), std::memory_order_release);
          lock.unlock();
          wake_putters();
          return RingStatus::ok;
        }
        case RecordKind::stream_begin: {
          // INV4: with nothing counted, the stream at head is still being
          // written; a non-blocking get does not wait for it.
          if (nonblocking && count_of(w) == count_of(r)) return RingStatus::would_block;
          const RingStatus status = read_stream(record, r, target);
          if (status != RingStatus::would_block) return status;
          continue;  // aborted: look for the next item
        }
        case RecordKind::stream_chunk:
        case RecordKind::stream_last:
        case RecordKind::stream_abort: {
          // INV6: an orphan of a reader that died; free it.
          const bool last = record.kind == RecordKind::stream_last;
          r = pack(count_of(r) + (last ? 1 : 0), position_of(r) + record_size);
          h.read_word.store(r, std::memory_order_release);  // pairs with the producer's acquire: room is free
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
  // Wake every sleeper unconditionally: each re-checks is_shut_down().
  h.not_empty_seq.fetch_add(1, std::memory_order_seq_cst);  // pairs with the acquire in wait_for()
  h.not_full_seq.fetch_add(1, std::memory_order_seq_cst);   // pairs with the acquire in wait_for()
  futex_wake(h.not_empty_seq, INT_MAX);
  futex_wake(h.not_full_seq, INT_MAX);
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
        wake(h.join_seq, h.joiners_waiting);
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
  return wait_for(h.join_seq, h.joiners_waiting, all_done, deadline);
}

}  // namespace mp::detail
