// mp/detail/ring.hpp — the shared byte ring under mp::Queue, JoinableQueue and SimpleQueue.
//
// Design notes (copied into the README)
// -------------------------------------
// A queue is ONE shared region (a memfd, mp/detail/shm.hpp): a RingHeader
// (limits, two robust mutexes, the commit words, futex sequence words) in the
// first page, followed by a power-of-two byte ring of records
// `[payload_bytes | kind | stream id | payload]` (item records without the
// stream id).
//
// * Memory follows the backlog. The ring is 2 GiB of reserved address space
//   over a sparse memfd that has its full size from the start: a page exists
//   only once a producer writes into it, and consumers punch whole granules
//   (1 MiB) back out of the file as they pass them (INV8). So `maxsize == 0`
//   has no hidden bound short of 2 GiB of waiting bytes (10 million `long`
//   items take 240 MB), every process (forked before or after) sees every
//   page without remapping, and a drained queue holds about 1 MiB. Rings made
//   smaller than 8 MiB (QueueOptions::ring_bytes) keep their pages.
// * A hot area for small backlogs. Fresh pages cost a fault and a zeroing
//   each, and punched ones a TLB shoot-down, so the first granule of the ring
//   (`hot_bytes`) is never punched and is reused while the backlog is small:
//   records go there while they fit, and a producer that reaches its end
//   *rewinds* to the start of the next lap (the next multiple of the
//   capacity, whose offset is 0) instead of marching on into fresh pages. A
//   rewind writes a SKIP record ("nothing more in this lap") and is taken
//   only when the ring is empty, with both locks held, and its writer passes
//   the SKIP at once (INV10): a rewind never leaves live bytes behind the
//   jump, so the whole capacity stays usable (a skip over live bytes would
//   shrink the ring until a consumer came by, and one process putting
//   millions of items has no consumer). At the end of the hot area a
//   producer waits for the consumers to drain while they make progress (1 ms
//   at most: an unbounded put does not wait for slow consumers), and grows
//   into the cold part of the reservation once they stall, run out of that
//   time, or the put is non-blocking; a consumer that drains the ring in the cold
//   part rewinds it, so a drained queue goes back to the hot area's pages.
//   A producer in the cold part looks for the way back once per granule and,
//   while the consumers are at work, waits there for the drain too (a
//   producer faster than its consumer would otherwise stay cold for good
//   after one stall of the consumer). Streams do the same per chunk.
//   Inside a stream the reader holds its lock, so the streaming producer
//   skips to the next lap itself once its reader has drained the ring
//   (INV10 (b)). Items above 256 KiB are streamed in 64 KiB chunks through
//   the hot area.
// * Two sides. Producers serialise on `producer_mutex` and own `tail`;
//   consumers serialise on `consumer_mutex` and own `head`. A producer only
//   reads the consumers' commit word (to learn about free space, cached under
//   its lock so a 1:1 pair does not bounce that cache line on every item) and
//   vice versa, so one producer and one consumer never contend on a lock.
//   A consumer that catches up with a producer that is streaming items (its
//   last look at write_word found more than one item) waits ~400 ns before
//   it looks again (the chase rule, ring_internal.hpp): looking as soon as it
//   caught up took write_word's line and the record line being filled from
//   the producer every item or two, and each put then waited for them
//   (1P->1C `long` items: medians 29-30 -> 39-42 M/s, 2.3-2.5x -> 3.3-3.5x
//   Boost). Only where producers run free (RingHeader::chase): not below
//   kChaseMinMaxsize, not in the Pool's closed loop (RingPacing).
// * One store commits. The tail and the number of items ever put live in one
//   64-bit word (`write_word` = puts << 32 | tail); the head and the number of
//   items ever got in another (`read_word`). A put writes the record's bytes,
//   then publishes it with a single release store of `write_word`; a get copies
//   the record out, then frees it with a single release store of `read_word`.
//   A process killed anywhere before that store has changed nothing anyone can
//   see; killed after it, it has finished. So a SIGKILL never leaves a half
//   record or a wrong count behind (INV1, INV2): the only repair ever needed is
//   for a half-streamed large message (INV5, INV6).
// * Large items are streamed. A record larger than `stream_threshold` (256
//   KiB in a ring with a hot area, else an eighth of the ring) is sent as
//   BEGIN, CHUNK..., LAST records (chunks of `stream_chunk` bytes) while the
//   producer keeps `producer_mutex` (the "stream right"); the consumer that
//   takes BEGIN keeps `consumer_mutex` and copies the chunks out as they are
//   published, so an item larger than the ring flows through it. The item
//   counts as put when LAST is published (INV4). Deadlines hold on both
//   sides: a producer out of time half-way aborts the stream (as a dead one
//   is aborted) and reports Full; a reader out of time (or shut down) with
//   nothing new to read abandons the stream (INV9) and reports Empty, and
//   its producer sends the item again from the start, so a stalled or
//   SIGSTOPped producer holds no get past its timeout and nothing is lost.
// * No system call on the fast path. Every wait goes through an EventCount
//   (mp/detail/event_count.hpp: mp's one wait primitive and spin policy):
//   a waiter spins adaptively, then raises the sleepers flag, re-checks and
//   sleeps; a waker makes a system call only when the flag is raised (INV7),
//   and its fast path is a fence and a load, no read-modify-write on the
//   other side's cache line (on x86-64 a put's or get's fence is the
//   unlock of its side's mutex just before: notify_all_after_rmw()). Wakers
//   wake all sleepers: a woken process may be killed before it acts, and
//   waking one would then strand the others.
// * Encoding and decoding happen outside both locks; the critical sections
//   are the memcpy of the record and the commit store. Values whose encoding
//   is their object bytes (detail::is_bitwise_v) are copied straight between
//   the value and the ring, with no heap allocation; vectors and strings of
//   such elements (a count, then their bytes) too: put(lead, body) writes the
//   count and the bytes as one record, and a get copies the bytes into an
//   object the caller sized before taking the lock (GetTarget::prefixed).
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
//   INV7  Every wait is EventCount::await() on a condition read with acquire
//         loads, and every state change another side may wait for (a
//         commit, shutdown, the last task_done) is followed by that side's
//         EventCount::notify_all(); the event count's protocol (its P1..P3,
//         W1..W4) then guarantees no lost wake-up. A sleeper killed asleep
//         leaves the flag raised: that costs one needless FUTEX_WAKE, once.
//   INV8  Producers write only below `reclaimed` + capacity, and `reclaimed`
//         <= head. Pages of the hot area (offsets below hot_bytes) are never
//         punched, so there `reclaimed` is head itself; in the cold part it
//         is the start of head's granule. A consumer moves it (under
//         consumer_mutex) only after committing head and punching the cold
//         granules in between out of the file, so a producer never writes
//         into a page being punched; a consumer killed between the punch and
//         the store leaves `reclaimed` behind, and the next commit punches
//         again (harmless) and moves it.
//   INV9  RingHeader::stream_state holds the open stream's id from before its
//         BEGIN is published until after its LAST or ABORT is. Its reader may
//         give it up only by a CAS id -> id|kStreamAbandoned; its producer may
//         publish LAST only after a CAS id -> id|kStreamFinishing. One of the
//         two wins: an abandoned stream never gets a LAST (its producer
//         aborts it and sends the item again, or reports Full/ShutDown), and
//         a finishing one is always waited for, so an abandoned partial copy
//         never loses an item and a resent one is never a duplicate.
//   INV10 A SKIP record at position X says: positions [X, lap_end(X)) hold
//         nothing more; the next record starts at lap_end(X), the next
//         multiple of the capacity (offset 0, the hot area). Positions after
//         X's header in that lap were not written since their pages were last
//         punched, so passing a SKIP punches only up to X's granule. A SKIP is
//         written only (a) on an empty ring with both locks held (a rewind),
//         published and then passed by its writer in two single stores (one
//         killed in between leaves a SKIP that the next consumer passes), or
//         (b) by a streaming producer whose reader has drained the ring and
//         waits without a deadline (consumer_streaming == 2): that reader
//         passes it with the next chunk. In both cases the ring holds nothing
//         behind the SKIP, so it never strands live bytes.
//   INV11 RingHeader::known_write_word is a value write_word had, stored
//         (under consumer_mutex) by every consumer that reads write_word under
//         that lock, and by rewinds; consumers move head only over records
//         below a write_word they read and stored, so head never passes it.
//         So the records in [head, known) are complete (INV1) and a consumer
//         that is behind takes them without touching the producers' cache
//         line: it re-reads write_word only once it has caught up. (A value
//         read outside the lock is only a hint; a position more than the
//         capacity ahead of head is stale and ignored.) Its count is a lower
//         bound of the puts, which task_done() uses the same way.
//
// Memory ordering: record bytes travel with release/acquire on write_word
// (producer -> consumer) and read_word (consumer -> producer, "these bytes may
// be overwritten"). Plain fields in the header are only touched under the
// mutex of their side. INV7 is kept by the event counts' fences.
//
// Safety: a Ring handle may be used from any thread of any process that has
// the mapping. Visibility: everything a process wrote before put(x) returned is
// visible to the process whose get() returns x. Lifetime: the region is a
// memfd mapping inherited by fork (or adopted from its fd); the last fd and
// mapping to go free it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <type_traits>
#include <vector>

#include "mp/detail/clock.hpp"
#include "mp/detail/event_count.hpp"
#include "mp/detail/export.hpp"
#include "mp/detail/robust_mutex.hpp"
#include "mp/detail/shm.hpp"

namespace mp::detail {

inline constexpr std::uint32_t kRingMagic = 0x6d705251;  // "mpRQ"
// 5: each side's published word on a cache line of its own; 6: 8-byte item headers;
// 7: the chase rule (chase, consumer_chasing).
inline constexpr std::uint32_t kRingVersion = 7;
// The ring's bytes are a reservation: a sparse memfd whose pages exist only
// where the backlog touched them and are punched back behind the consumers.
inline constexpr std::uint32_t kMaxRingCapacity = 1u << 31;  // positions are u32: 2 GiB at most
inline constexpr std::uint32_t kDefaultRingCapacity = kMaxRingCapacity;
inline constexpr std::uint32_t kMinRingCapacity = 4096;
inline constexpr std::size_t kRingDataOffset = 4096;  // the header's page; the data starts page-aligned
// Rings of at least kPunchMinCapacity give their bytes back in granules of
// kReclaimGranule as consumers pass them (INV8); smaller rings keep their pages.
inline constexpr std::uint32_t kPunchMinCapacity = 8u << 20;
inline constexpr std::uint32_t kReclaimGranule = 1u << 20;
// Punching rings reuse their first granule while the backlog is small (INV8,
// INV10), and stream items whose record exceeds kHotStreamThreshold in chunks
// of at most kHotStreamChunk bytes (header included) through it.
inline constexpr std::uint32_t kHotBytes = kReclaimGranule;
inline constexpr std::uint32_t kHotStreamThreshold = kHotBytes / 4;
inline constexpr std::uint32_t kHotStreamChunk = 64u << 10;

// Kinds of record (RecordHeader::kind). The numbers are part of the ABI.
enum class RecordKind : std::uint32_t {
  item = 0x51490001,          // one complete item
  stream_begin = 0x51490002,  // payload: the total size (u64) of the streamed item
  stream_chunk = 0x51490003,  // a piece of the streamed item
  stream_last = 0x51490004,   // the last piece; publishing it counts the item (INV4)
  stream_abort = 0x51490005,  // the producer died or gave up: drop what was read
  skip = 0x51490006,          // no payload: the next record starts at the next lap (INV10)
};

// The header in front of every record in the ring (ABI). An item record
// carries only its first kItemHeaderBytes (payload_bytes, kind): its stream
// id would always be 0, and without it a `long` takes 16 bytes of ring
// instead of 24, so four items share a cache line instead of 2.7 (a third
// fewer lines cross between the cores per item).
struct RecordHeader {
  std::uint32_t payload_bytes;  // bytes that follow this header (before 8-byte padding)
  RecordKind kind;
  std::uint64_t stream_id;  // not in item records (0 when read)
};
static_assert(std::is_standard_layout_v<RecordHeader> && std::is_trivially_copyable_v<RecordHeader>);
static_assert(sizeof(RecordHeader) == 16);
inline constexpr std::uint32_t kItemHeaderBytes = 8;  // payload_bytes and kind
static_assert(offsetof(RecordHeader, stream_id) == kItemHeaderBytes);

inline constexpr std::uint32_t kAbortReserve = 2 * sizeof(RecordHeader);

// How a ring's producers and consumers take turns, for the chase rule
// (ring_internal.hpp): `stream` where producers run free (a Queue), `closed_loop`
// where they wait for what the consumers send back (the Pool's task and
// result rings, whose dispatcher keeps a window of chunks in flight): there a
// consumer that waits before it looks only holds the loop up.
enum class RingPacing { stream, closed_loop };

// Below this maxsize a Queue's producers soon wait for room, as in a closed
// loop: its consumers do not keep the chase rule (measured, maxsize 16: 15-19
// -> 10-11 M/s with it; maxsize 1000: 17 -> 22-26 M/s).
inline constexpr std::uint64_t kChaseMinMaxsize = 1000;

// The shared header at the start of a queue's region (ABI between processes).
struct alignas(64) RingHeader {
  // --- immutable after construction ---
  std::uint32_t magic;
  std::uint32_t version;
  std::uint32_t capacity;          // bytes of ring, a power of two
  std::uint32_t stream_threshold;  // records bigger than this are streamed
  std::uint64_t maxsize;           // items; 0 = no limit
  std::uint32_t reclaim_granule;   // 0: nothing is punched (INV8)
  std::uint32_t chase;             // 1: its consumers keep the chase rule (ring_internal.hpp), 0: not
  std::uint32_t hot_bytes;         // offsets below this are reused and never punched; 0: no hot area (INV10)
  std::uint32_t stream_chunk;      // bytes of ring (header included) a stream's chunk record takes at most

  // Cache lines. Each side's mutex shares its line only with fields of its
  // own side; the word each side publishes (write_word, read_word) has a
  // line of its own. A consumer that has caught up polls write_word, so that
  // line moves to the consumer's core; had it held producer_mutex too, every
  // put's lock would first have had to pull the line back (measured on the
  // 2-vCPU guest: 1P->1C `long` items 10-11 M/s with them together, 17-25
  // M/s apart, 4 KiB items 5.5 -> 9.5 GB/s).

  // --- producer side: plain fields under producer_mutex ---
  alignas(64) RobustMutex producer_mutex;
  std::uint32_t cached_reclaimed;  // a possibly stale copy of `reclaimed` (only ever behind)
  std::uint32_t cached_gets;       // a possibly stale copy of read_word's count (only ever behind)
  std::uint64_t open_stream_id;    // != 0 while a stream is being written (INV5)
  std::uint64_t next_stream_id;
  std::atomic<std::uint32_t> producer_streaming;  // hint for non-blocking puts: the lock is held long
  std::atomic<std::uint32_t> producer_repairs;    // how many times a dead producer was cleaned up
  std::uint32_t head_seen;  // read_word's position at the producers' last look from the cold part
  alignas(64) std::atomic<std::uint64_t> write_word;  // puts << 32 | tail; stored only under producer_mutex

  // --- consumer side: plain fields under consumer_mutex ---
  alignas(64) RobustMutex consumer_mutex;
  std::atomic<std::uint32_t> consumer_streaming;     // hint: the lock is held long (1), with no deadline (2)
  std::atomic<std::uint32_t> consumer_chasing;       // hint: producers ahead at the last look (chase rule)
  alignas(64) std::atomic<std::uint64_t> read_word;  // gets << 32 | head; stored only under consumer_mutex
  std::atomic<std::uint32_t> reclaimed;              // producers may write below reclaimed + capacity (INV8)
  std::atomic<std::uint64_t> known_write_word;       // write_word as a consumer last read it (INV11)

  // --- waiting (INV7) ---
  alignas(64) EventCount not_empty;  // getters wait here; notified after a publish
  alignas(64) EventCount not_full;   // putters wait here; notified after a free

  // --- state and JoinableQueue ---
  alignas(64) std::atomic<std::uint32_t> state;  // kShutdownBit
  std::atomic<std::uint32_t> tasks_done;         // task_done() calls; unfinished = puts - tasks_done
  EventCount all_done;                           // join() waits here; notified when unfinished reaches 0
  std::atomic<std::uint32_t> consumer_repairs;   // how many times a consumer lock was taken from the dead

  // --- the open stream's fate (INV9) ---
  alignas(64) std::atomic<std::uint64_t> stream_state;  // 0, id, id | kStreamFinishing, id | kStreamAbandoned
};
static_assert(std::is_standard_layout_v<RingHeader>);
static_assert(sizeof(RingHeader) % 64 == 0 && sizeof(RingHeader) <= 1024);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);
static_assert(sizeof(std::atomic<std::uint64_t>) == 8 && sizeof(std::atomic<std::uint32_t>) == 4);

inline constexpr std::uint32_t kShutdownBit = 1;
// RingHeader::stream_state: the open stream's id with at most one of these.
inline constexpr std::uint64_t kStreamFinishing = std::uint64_t{1} << 63;  // its producer is publishing LAST
inline constexpr std::uint64_t kStreamAbandoned = std::uint64_t{1} << 62;  // its reader gave up on it
inline constexpr std::uint64_t kStreamIdMask = kStreamAbandoned - 1;

enum class RingStatus {
  ok,
  would_block,  // nothing now (non-blocking) or the deadline passed: Full / Empty at the edge
  shut_down,    // Queue::shutdown() was called (and, for a get, nothing is left)
  lock_error,   // the robust mutex reported an unexpected error (ENOTRECOVERABLE, ...)
  corrupted,    // a record header that cannot be: memory was overwritten by someone
};

// Where a get puts the bytes: straight into a fixed-size object when the
// record has exactly that size, else into *buffer. With `prefixed`, the
// record matches only if it is the 8 bytes of `prefix` followed by
// fixed_size bytes, and only those fixed_size bytes go to `fixed` (a vector
// or string the caller sized to the count its codec writes in front: one
// copy from the ring into the object, and no allocation under the lock).
struct GetTarget {
  std::byte* fixed = nullptr;
  std::size_t fixed_size = 0;
  std::vector<std::byte>* buffer = nullptr;  // required
  bool got_fixed = false;                    // out: the bytes went to `fixed`
  bool prefixed = false;                     // the record must start with `prefix`
  std::uint64_t prefix = 0;                  // compared bytewise (already in wire byte order)
};

// A process-local handle on a ring region. Copies share the region.
class MP_API Ring {
 public:
  // Ring::create(maxsize, capacity): a new region; capacity is rounded up to a
  // power of two within [kMinRingCapacity, kMaxRingCapacity]. The capacity is
  // reserved address space over a sparse memfd: memory is used only for the
  // backlog (INV8). Throws mp::Error if the kernel refuses the memfd or mapping.
  // Its consumers keep the chase rule (ring_internal.hpp) when `pacing` is
  // RingPacing::stream and maxsize is 0 or at least kChaseMinMaxsize.
  static Ring create(std::uint64_t maxsize, std::uint32_t capacity = kDefaultRingCapacity,
                     RingPacing pacing = RingPacing::stream);

  // Ring::adopt(region): a handle on an existing ring's region, mapped again
  // in a child started by forkserver or spawn (mp/detail/handle_codec.hpp).
  // CodecError when the region holds no ring of this version or is too small.
  static Ring adopt(SharedRegion region);

  // Ring::put(payload, deadline, nonblocking): appends one item. Blocks (until
  // `deadline`; not at all when nonblocking) on room: fewer than maxsize items
  // and enough free bytes. An item larger than stream_threshold is streamed:
  // a non-blocking put streams it only if all of it fits now; a put whose
  // deadline passes half-way through the stream aborts it (an ABORT record:
  // readers drop what they read of it, as for a dead producer) and reports
  // would_block: the item was not put. shutdown() aborts a stream too. A
  // stream its reader abandoned (INV9) is sent again while time remains.
  RingStatus put(std::span<const std::byte> payload, const Deadline& deadline, bool nonblocking);

  // Ring::put(lead, body, deadline, nonblocking): as put(payload), for the
  // payload `lead` followed by `body` (a codec's length prefix and the bytes
  // of a vector or string), copied straight from the two into the ring (one
  // record, or a stream's chunks): no buffer in between.
  RingStatus put(std::span<const std::byte> lead, std::span<const std::byte> body, const Deadline& deadline,
                 bool nonblocking);

  // Ring::streams(payload_bytes): an item of this many bytes goes as a stream.
  [[nodiscard]] bool streams(std::size_t payload_bytes) const noexcept {
    return payload_bytes > header_->stream_threshold - sizeof(RecordHeader);
  }

  // Ring::get(target, deadline, nonblocking): removes the oldest item. Never
  // waits past `deadline`, even for a streamed item whose producer stalls: a
  // reader whose deadline passes (or that sees shutdown) half-way through a
  // stream abandons it (INV9) and reports would_block (shut_down); its
  // producer then sends the item again from the start (or, out of time or
  // shut down, aborts it), so nothing is lost or duplicated.
  RingStatus get(GetTarget& target, const Deadline& deadline, bool nonblocking);

  [[nodiscard]] std::uint32_t size() const noexcept;        // puts - gets (INV2)
  [[nodiscard]] std::uint32_t total_gets() const noexcept;  // items ever taken (mod 2^32)
  [[nodiscard]] std::uint64_t maxsize() const noexcept { return header_->maxsize; }
  [[nodiscard]] std::uint32_t capacity() const noexcept { return header_->capacity; }
  [[nodiscard]] std::uint32_t stream_threshold() const noexcept { return header_->stream_threshold; }
  // Ring::hot_bytes(): the reused, never punched start of the ring (0: none).
  [[nodiscard]] std::uint32_t hot_bytes() const noexcept { return header_->hot_bytes; }
  [[nodiscard]] bool is_shut_down() const noexcept;
  [[nodiscard]] std::size_t mapped_bytes() const noexcept { return region_.size(); }
  // Ring::resident_bytes(): the memory the region's memfd holds now (its
  // allocated blocks), the header page included.
  [[nodiscard]] std::size_t resident_bytes() const noexcept;
  // Ring::fd(): the region's memfd (owned by the ring; dup it to keep it).
  [[nodiscard]] int fd() const noexcept { return region_.fd(); }

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
  explicit Ring(SharedRegion region);

  // How a stream's reader ended (read_stream).
  enum class StreamEnd { complete, aborted, timed_out, shut_down, corrupted };
  // What stream_once() found: done (ok or a final status) or abandoned (send again).
  static constexpr RingStatus kResend = static_cast<RingStatus>(100);

  RingStatus put_item(std::span<const std::byte> lead, std::span<const std::byte> body,
                      const Deadline& deadline, bool nonblocking);
  RingStatus put_stream(std::span<const std::byte> lead, std::span<const std::byte> body,
                        const Deadline& deadline, bool nonblocking);
  StreamEnd read_stream(const RecordHeader& begin, std::uint64_t& read_word, GetTarget& target,
                        const Deadline& deadline);
  LockOutcome lock_side(RobustMutex& mutex, const std::atomic<std::uint32_t>& streaming_hint,
                        const Deadline& deadline, bool nonblocking) noexcept;
  LockOutcome lock_side_held(RobustMutex& mutex, const std::atomic<std::uint32_t>& streaming_hint,
                             const Deadline& deadline, bool nonblocking) noexcept;
  RingStatus lock_producers(const Deadline& deadline, bool nonblocking) noexcept;
  void repair_producer() noexcept;
  void abort_open_stream() noexcept;
  RingStatus stream_once(std::span<const std::byte> lead, std::span<const std::byte> body,
                         const Deadline& deadline, bool nonblocking);
  bool producer_gone_without_finishing(std::uint64_t stream_id, std::uint32_t read_position) noexcept;
  std::uint32_t free_bytes(std::uint64_t write_word, std::uint32_t reclaimed) const noexcept;
  std::uint32_t free_bytes_now(std::uint64_t write_word) const noexcept;
  void commit_read(std::uint64_t read_word) noexcept;
  void commit_read(std::uint64_t read_word, std::uint32_t untouched_from) noexcept;
  void punch(std::uint32_t from, std::uint32_t to) noexcept;
  [[nodiscard]] bool is_hot(std::uint32_t position) const noexcept;
  [[nodiscard]] bool fits_hot(std::uint32_t position, std::uint32_t record) const noexcept;
  [[nodiscard]] bool can_skip_at(std::uint32_t position) const noexcept;
  [[nodiscard]] bool enters_new_granule(std::uint32_t tail, std::uint32_t record) const noexcept;
  [[nodiscard]] std::uint32_t read_header(std::uint32_t position, std::uint32_t used,
                                          RecordHeader& record) const noexcept;
  [[nodiscard]] bool room_at(std::uint32_t position, std::uint32_t record) noexcept;
  std::uint32_t claim(std::uint64_t& write_word, std::uint32_t record, const Deadline& deadline,
                      bool nonblocking) noexcept;
  std::uint32_t claim_past_hot(std::uint64_t& write_word, std::uint32_t record, const Deadline& deadline,
                               bool nonblocking) noexcept;
  bool wait_for_drain(std::uint32_t tail, const Deadline& deadline) noexcept;
  bool drain_worth_waiting_for(std::uint32_t position, std::uint32_t record) noexcept;
  bool consumers_moved() noexcept;
  bool rewind_if_empty(std::uint64_t& write_word) noexcept;
  void rewind(std::uint64_t& write_word, std::uint64_t read_word) noexcept;
  void rewind_after_drain(std::uint64_t read_word) noexcept;
  void write_record(std::uint32_t tail, RecordKind kind, std::uint64_t stream_id,
                    std::span<const std::byte> a, std::span<const std::byte> b = {}) noexcept;
  void copy_in(std::uint32_t position, const std::byte* source, std::size_t n) noexcept;
  void copy_out(std::uint32_t position, std::byte* destination, std::size_t n) const noexcept;
  void append_out(std::uint32_t position, std::size_t n, std::vector<std::byte>& buffer) const;
  void wake_getters() noexcept;
  void wake_putters() noexcept;
  void wake_getters_after_unlock() noexcept;
  void wake_putters_after_unlock() noexcept;

  SharedRegion region_;
  RingHeader* header_ = nullptr;
  std::byte* data_ = nullptr;
};

}  // namespace mp::detail
