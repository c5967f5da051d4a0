// mp/detail/ring.hpp — the shared byte ring under mp::Queue, JoinableQueue and SimpleQueue.
//
// Design notes (copied into the README)
// -------------------------------------
// A queue is ONE anonymous MAP_SHARED region: a RingHeader (limits, two robust
// mutexes, the commit words, futex sequence words) followed by a power-of-two
// byte ring of records `[payload_bytes | kind | stream id | payload]`.
//
// * Two sides. Producers serialise on `producer_mutex` and own `tail`;
//   consumers serialise on `consumer_mutex` and own `head`. A producer only
//   reads the consumers' commit word (to learn about free space, cached under
//   its lock so a 1:1 pair does not bounce that cache line on every item) and
//   vice versa, so one producer and one consumer never contend on a lock.
// * One store commits. The tail and the number of items ever put live in one
//   64-bit word (`write_word` = puts << 32 | tail); the head and the number of
//   items ever got in another (`read_word`). A put writes the record's bytes,
//   then publishes it with a single release store of `write_word`; a get copies
//   the record out, then frees it with a single release store of `read_word`.
//   A process killed anywhere before that store has changed nothing anyone can
//   see; killed after it, it has finished. So a SIGKILL never leaves a half
//   record or a wrong count behind (INV1, INV2): the only repair ever needed is
//   for a half-streamed large message (INV5, INV6).
// * Large items are streamed. A record larger than `stream_threshold` (an
//   eighth of the ring) is sent as BEGIN, CHUNK..., LAST records while the
//   producer keeps `producer_mutex` (the "stream right"); the consumer that
//   takes BEGIN keeps `consumer_mutex` and copies the chunks out as they are
//   published, so a 256 MiB item flows through a 2 MiB ring and the memory at
//   rest stays at the ring's size. The item counts as put when LAST is
//   published (INV4).
// * No system call on the fast path. Sleepers raise a flag before they
//   re-check and FUTEX_WAIT on a sequence word; a waker lowers the flag and
//   bumps the word and calls FUTEX_WAKE only when the flag was raised (INV7):
//   one wake per sleep, however many items are put meanwhile. Before
//   sleeping a waiter spins briefly (kSpinIterations, with `pause`): on the
//   1:1 benchmark the peer usually answers within a microsecond, which a
//   futex round trip (two system calls and a context switch on each side)
//   would cost many times over. Wakers wake all sleepers: a woken process may
//   be killed before it acts, and waking one would then strand the others.
// * Encoding and decoding happen outside both locks; the critical sections
//   are the memcpy of the record and the commit store. Values whose encoding
//   is their object bytes (detail::is_bitwise_v) are copied straight between
//   the value and the ring, with no heap allocation.
//
// Invariants (referred to as INVn where they are kept)
//   INV1  Every byte in [head, tail) belongs to a complete record: a record's
//         bytes are written before the write_word store that moves tail past it.
//   INV2  puts - gets (the counts in write_word / read_word) is the number of
//         complete items in the ring; each count moves in the same store as its
//         position, so no crash can make them disagree.
//   INV3  The records of one stream are contiguous (BEGIN, CHUNK*, LAST or
//         ABORT): the producer holds producer_mutex from BEGIN to LAST.
//   INV4  A streamed item counts in puts only when its LAST record is
//         published and in gets only when its LAST record is freed; so when
//         puts - gets > 0 the item at head is complete.
//   INV5  While open_stream_id != 0 the ring keeps kAbortReserve bytes free, so
//         whoever repairs a dead streaming producer can always publish ABORT
//         without waiting.
//   INV6  A CHUNK, LAST or ABORT record found at head by a consumer that is not
//         reading that stream is an orphan (its reader died) and is freed by
//         that consumer; freeing an orphan LAST counts the item as got (it was
//         taken by the dead reader, exactly as an item returned to a consumer
//         that then died). Several ABORTs for one stream are therefore harmless.
//   INV7  A sleeper raises its side's sleepers flag (an acq_rel exchange to 1)
//         before it reads the sequence word and re-checks its condition; a
//         waker changes the state, then lowers the flag with an acq_rel
//         exchange to 0 and, if it was raised, bumps the sequence word and
//         wakes everyone. The two RMWs on one word are ordered: either the
//         sleeper's comes second and reads from the waker's (so it sees the
//         change), or the waker's comes second, sees the 1 and bumps the word
//         the sleeper sleeps on. A sleeper killed asleep leaves the flag raised:
//         that costs one needless FUTEX_WAKE, once.
//
// Memory ordering: record bytes travel with release/acquire on write_word
// (producer -> consumer) and read_word (consumer -> producer, "these bytes may
// be overwritten"). Plain fields in the header are only touched under the
// mutex of their side. INV7 is kept with RMWs on the sleepers flags.
//
// Safety: a Ring handle may be used from any thread of any process that has
// the mapping. Visibility: everything a process wrote before put(x) returned is
// visible to the process whose get() returns x. Lifetime: the region is an
// anonymous shared mapping inherited by fork; the last unmap frees it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <type_traits>
#include <vector>

#include "mp/detail/clock.hpp"
#include "mp/detail/export.hpp"
#include "mp/detail/robust_mutex.hpp"

namespace mp::detail {

inline constexpr std::uint32_t kRingMagic = 0x6d705251;  // "mpRQ"
inline constexpr std::uint32_t kRingVersion = 1;
inline constexpr std::uint32_t kDefaultRingCapacity = 2u << 20;  // 2 MiB of ring at rest
inline constexpr std::uint32_t kMinRingCapacity = 4096;
inline constexpr std::uint32_t kMaxRingCapacity = 1u << 30;

// Kinds of record (RecordHeader::kind). The numbers are part of the ABI.
enum class RecordKind : std::uint32_t {
  item = 0x51490001,          // one complete item
  stream_begin = 0x51490002,  // payload: the total size (u64) of the streamed item
  stream_chunk = 0x51490003,  // a piece of the streamed item
  stream_last = 0x51490004,   // the last piece; publishing it counts the item (INV4)
  stream_abort = 0x51490005,  // the producer died or gave up: drop what was read
};

// The header in front of every record in the ring (ABI).
struct RecordHeader {
  std::uint32_t payload_bytes;  // bytes that follow this header (before 8-byte padding)
  RecordKind kind;
  std::uint64_t stream_id;  // 0 for item records
};
static_assert(std::is_standard_layout_v<RecordHeader> && std::is_trivially_copyable_v<RecordHeader>);
static_assert(sizeof(RecordHeader) == 16);

inline constexpr std::uint32_t kAbortReserve = 2 * sizeof(RecordHeader);

// The shared header at the start of a queue's region (ABI between processes).
struct alignas(64) RingHeader {
  // --- immutable after construction ---
  std::uint32_t magic;
  std::uint32_t version;
  std::uint32_t capacity;          // bytes of ring, a power of two
  std::uint32_t stream_threshold;  // records bigger than this are streamed
  std::uint64_t maxsize;           // items; 0 = no limit

  // --- producer side: plain fields under producer_mutex ---
  alignas(64) RobustMutex producer_mutex;
  std::atomic<std::uint64_t> write_word;  // puts << 32 | tail; stored only under producer_mutex
  std::uint64_t cached_read_word;         // a possibly stale copy of read_word (only ever behind)
  std::uint64_t open_stream_id;           // != 0 while a stream is being written (INV5)
  std::uint64_t next_stream_id;
  std::atomic<std::uint32_t> producer_streaming;  // hint for non-blocking puts: the lock is held long
  std::atomic<std::uint32_t> producer_repairs;    // how many times a dead producer was cleaned up

  // --- consumer side: plain fields under consumer_mutex ---
  alignas(64) RobustMutex consumer_mutex;
  std::atomic<std::uint64_t> read_word;           // gets << 32 | head; stored only under consumer_mutex
  std::atomic<std::uint32_t> consumer_streaming;  // hint for non-blocking gets: the lock is held long
  std::atomic<std::uint32_t> consumer_repairs;    // how many times a consumer lock was taken from the dead

  // --- wait words (INV7) ---
  alignas(64) std::atomic<std::uint32_t> not_empty_seq;  // bumped after a publish when getters sleep
  std::atomic<std::uint32_t> getters_waiting;            // sleepers flag (INV7): 1 while a getter may sleep
  alignas(64) std::atomic<std::uint32_t> not_full_seq;   // bumped after a free when putters sleep
  std::atomic<std::uint32_t> putters_waiting;            // sleepers flag (INV7): 1 while a putter may sleep

  // --- state and JoinableQueue ---
  alignas(64) std::atomic<std::uint32_t> state;  // kShutdownBit
  std::atomic<std::uint32_t> tasks_done;         // task_done() calls; unfinished = puts - tasks_done
  std::atomic<std::uint32_t> join_seq;           // bumped when unfinished reaches 0 and joiners sleep
  std::atomic<std::uint32_t> joiners_waiting;    // sleepers flag (INV7) for join()
};
static_assert(std::is_standard_layout_v<RingHeader>);
static_assert(sizeof(RingHeader) % 64 == 0 && sizeof(RingHeader) <= 512);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);
static_assert(sizeof(std::atomic<std::uint64_t>) == 8 && sizeof(std::atomic<std::uint32_t>) == 4);

inline constexpr std::uint32_t kShutdownBit = 1;

enum class RingStatus {
  ok,
  would_block,  // nothing now (non-blocking) or the deadline passed: Full / Empty at the edge
  shut_down,    // Queue::shutdown() was called (and, for a get, nothing is left)
  lock_error,   // the robust mutex reported an unexpected error (ENOTRECOVERABLE, ...)
  corrupted,    // a record header that cannot be: memory was overwritten by someone
};

// Where a get puts the bytes: straight into a fixed-size object when the
// record has exactly that size, else into *buffer.
struct GetTarget {
  std::byte* fixed = nullptr;
  std::size_t fixed_size = 0;
  std::vector<std::byte>* buffer = nullptr;  // required
  bool got_fixed = false;                    // out: the bytes went to `fixed`
};

// A process-local handle on a ring region. Copies share the region.
class MP_API Ring {
 public:
  // Ring::create(maxsize, capacity): a new region; capacity is rounded up to a
  // power of two within [kMinRingCapacity, kMaxRingCapacity]. Throws mp::Error
  // if the kernel refuses the mapping.
  static Ring create(std::uint64_t maxsize, std::uint32_t capacity = kDefaultRingCapacity);

  // Ring::put(payload, deadline, nonblocking): appends one item. Blocks (until
  // `deadline`) on room: fewer than maxsize items and enough free bytes. An item
  // larger than stream_threshold is streamed; once its first chunk is out the
  // put finishes regardless of the deadline (or is aborted by shutdown()).
  RingStatus put(std::span<const std::byte> payload, const Deadline& deadline, bool nonblocking);

  // Ring::get(target, deadline, nonblocking): removes the oldest item.
  RingStatus get(GetTarget& target, const Deadline& deadline, bool nonblocking);

  [[nodiscard]] std::uint32_t size() const noexcept;        // puts - gets (INV2)
  [[nodiscard]] std::uint32_t total_gets() const noexcept;  // items ever taken (mod 2^32)
  [[nodiscard]] std::uint64_t maxsize() const noexcept { return header_->maxsize; }
  [[nodiscard]] std::uint32_t capacity() const noexcept { return header_->capacity; }
  [[nodiscard]] std::uint32_t stream_threshold() const noexcept { return header_->stream_threshold; }
  [[nodiscard]] bool is_shut_down() const noexcept;
  [[nodiscard]] std::size_t mapped_bytes() const noexcept { return mapped_bytes_; }

  // Ring::shutdown(): sets the shutdown bit and wakes every sleeper.
  void shutdown() noexcept;

  // Ring::task_done(): false if it would exceed the number of items put.
  [[nodiscard]] bool task_done() noexcept;
  // Ring::join(deadline): true once every item put has been task_done()'d.
  bool join(const Deadline& deadline) noexcept;
  [[nodiscard]] std::uint32_t unfinished_tasks() const noexcept;

  // Diagnostics for tests: how often a dead holder's lock was taken over.
  [[nodiscard]] std::uint32_t producer_repairs() const noexcept;
  [[nodiscard]] std::uint32_t consumer_repairs() const noexcept;
  [[nodiscard]] RingHeader* header() const noexcept { return header_; }

 private:
  Ring(std::shared_ptr<std::byte> mapping, std::size_t mapped_bytes);

  RingStatus put_item(std::span<const std::byte> payload, const Deadline& deadline, bool nonblocking);
  RingStatus put_stream(std::span<const std::byte> payload, const Deadline& deadline, bool nonblocking);
  RingStatus read_stream(const RecordHeader& begin, std::uint64_t& read_word, GetTarget& target);
  LockOutcome lock_side(RobustMutex& mutex, const std::atomic<std::uint32_t>& streaming_hint,
                        const Deadline& deadline, bool nonblocking) noexcept;
  void repair_producer() noexcept;
  void abort_open_stream() noexcept;
  bool producer_gone_without_finishing(std::uint64_t stream_id) noexcept;
  std::uint32_t free_bytes(std::uint64_t write_word, std::uint64_t read_word) const noexcept;
  void write_record(std::uint32_t tail, RecordKind kind, std::uint64_t stream_id,
                    std::span<const std::byte> a, std::span<const std::byte> b = {}) noexcept;
  void copy_in(std::uint32_t position, const std::byte* source, std::size_t n) noexcept;
  void copy_out(std::uint32_t position, std::byte* destination, std::size_t n) const noexcept;
  void append_out(std::uint32_t position, std::size_t n, std::vector<std::byte>& buffer) const;
  void wake_getters() noexcept;
  void wake_putters() noexcept;

  std::shared_ptr<std::byte> mapping_;
  std::size_t mapped_bytes_ = 0;
  RingHeader* header_ = nullptr;
  std::byte* data_ = nullptr;
};

}  // namespace mp::detail
