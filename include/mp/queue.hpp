// mp/queue.hpp — Queue<T>, JoinableQueue<T> and SimpleQueue<T>: Python's
// multiprocessing queues over one shared-memory region (a memfd) each.
//
//   mp::Queue<std::string> q(10);              // at most 10 items waiting
//   mp::Process child([](mp::Queue<std::string> q) { q.put("hello"); }, q);
//   child.start();
//   std::string s = q.get();                    // "hello"
//   child.join();
//
// Items are values of T, carried by the codec (mp/codec.hpp); values whose
// encoding is their object bytes (ints, doubles, PODs) go straight into the
// shared ring. Any number of producer and consumer processes may use one
// queue; items come out in the order each producer put them.
//
// Memory: maxsize 0 means no limit, as in Python: one process may put
// millions of items and then get them back. The ring is a 2 GiB reservation
// of address space over a sparse memfd; memory is used only for the backlog
// and is given back (punched) as consumers pass it, so a drained queue holds
// about 1 MiB. While the backlog is small the ring reuses that first MiB
// (its hot area) instead of touching fresh pages. An item above 256 KiB (an
// eighth of the ring, for rings below 8 MiB) is streamed through it in
// chunks, so an item of any size is delivered.
//
// Timeouts: put_nowait, try_put and a timed put never block past their
// timeout whatever the item's size; a streamed item whose put runs out of
// time half-way is aborted (consumers drop the part they saw, as for a
// producer that died) and the put raises Full. A timed get never blocks past
// its timeout, even while a producer is stalled half-way through a large
// item: it gives the item up and raises Empty, and the producer sends that
// item again from its start, so nothing is lost or duplicated. (An item that
// cannot cross the ring within a get's timeout needs a longer timeout.)
// shutdown() wakes a get waiting for the rest of an item the same way.
//
// Safety: a handle (and its copies) may be used from any thread of any process
// that inherited it: through fork (mp::Process, mp::Pool), or as an argument of
// a Process under forkserver or spawn (detail/queue_codec.hpp). It is no value:
// a Queue item or Pool argument holding a Queue is refused. A process killed
// anywhere inside put or get leaves no half item, no stuck lock and no sleeper
// behind; a consumer killed after taking an item loses that item, as in Python.
//
// Visibility: everything a process wrote before put(x) returned is visible to
// the process whose get() returns x.
//
// Lifetime: the region is made by the constructor and inherited by children
// started after it; copies of a handle share it. It is freed when the last
// process drops its last handle (or exits). Nothing appears in /dev/shm.
#pragma once

#include <unistd.h>

#include <array>
#include <atomic>
#include <bit>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "mp/codec.hpp"
#include "mp/detail/clock.hpp"
#include "mp/detail/export.hpp"
#include "mp/detail/handle_codec.hpp"
#include "mp/detail/ring.hpp"
#include "mp/errors.hpp"

namespace mp {

// Tuning a queue beyond Python's maxsize. ring_bytes bounds the bytes that may
// wait in the queue (rounded up to a power of two between 4 KiB and 2 GiB,
// the default). Rings of 8 MiB or more give their memory back as consumers
// pass it, reuse their first MiB while the backlog is small, and stream items
// above 256 KiB in chunks; smaller ones keep the pages they touched and
// stream items above an eighth of the ring.
struct QueueOptions {
  std::size_t ring_bytes = detail::kDefaultRingCapacity;
};

namespace detail {

// Buffers reused by every put/get of a thread, so that a hot loop of
// non-bitwise items allocates nothing for the bytes; a buffer grown by a large
// item is released again afterwards, so memory at rest stays small.
inline std::vector<std::byte>& queue_scratch(int which) {
  thread_local std::vector<std::byte> buffers[2];
  return buffers[which];
}
inline void trim_scratch(std::vector<std::byte>& buffer) {
  if (buffer.capacity() > (std::size_t{4} << 20)) std::vector<std::byte>().swap(buffer);
}

// Which process closed a queue: close() marks it for every handle of this
// process, but not for children forked afterwards (as Python resets _closed
// in a forked child).
struct QueueLocalState {
  std::atomic<pid_t> closed_by{0};
  [[nodiscard]] bool closed() const noexcept {
    // relaxed: a flag of this process only. getpid() is a system call, so it
    // is asked only once some process did close().
    const pid_t by = closed_by.load(std::memory_order_relaxed);
    return by != 0 && by == ::getpid();
  }
};

[[noreturn]] MP_API void throw_ring_failure(RingStatus status, const char* call);

// contiguous_item<T>: T's codec says its encoding is the element count as a
// little-endian u64 and then the elements' bytes in one piece (codec<T>::
// contiguous: std::vector and std::basic_string of bitwise elements,
// mp/detail/codec_std.hpp; a codec of the user's own never says so). A Queue
// puts such an item straight from the object into the ring (the count and
// the bytes as two spans) and gets it straight from the ring into an object
// sized beforehand: one copy on each side instead of two.
template <class T>
struct contiguous_item : std::false_type {};
template <class T>
requires(codec<T>::contiguous) struct contiguous_item<T> : std::true_type {
  using element = typename codec<T>::element;
};

// contiguous_prefix(count): the codec's length prefix as it lies in the ring.
inline std::uint64_t contiguous_prefix(std::size_t count) noexcept {
  return swap_bytes_if_big_endian(static_cast<std::uint64_t>(count));
}

// ExpectedCount: the element count a thread's next get of a contiguous item
// is sized for before it takes the consumers' lock: the size of its last two
// items when they were equal (a stream of same-sized items), else none (no
// object is sized in vain while sizes vary).
struct ExpectedCount {
  std::size_t last = 0;
  std::size_t expected = 0;
  void saw(std::size_t count) noexcept {
    expected = count == last ? count : 0;
    last = count;
  }
};

// QueueAccess: the ring behind a queue handle, for mp's own tests and tools.
struct QueueAccess {
  template <class Q>
  static const Ring& ring(const Q& queue) noexcept {
    return queue.ring_;
  }
};

}  // namespace detail

template <class T>
class Queue {
  static_assert(std::is_object_v<T> && !std::is_const_v<T>,
                "mp::Queue<T>: T must be a plain (non-const) object type");
  static_assert(
      Encodable<T>,
      "mp::Queue<T>: T must be encodable by mp::codec (trivially copyable, a std type the codec knows, "
      "or a type with a serialize(Archive&) member)");

 public:
  // Queue::Queue(maxsize): a new, empty queue. maxsize 0 means no limit (the
  // 2 GiB ring reservation is the only bound: see the notes at the top).
  // Throws mp::Error if the shared memory cannot be mapped.
  explicit Queue(std::size_t maxsize = 0) : Queue(maxsize, QueueOptions{}) {}
  Queue(std::size_t maxsize, QueueOptions options)
      : ring_(detail::Ring::create(maxsize, ring_capacity(options.ring_bytes))),
        local_(std::make_shared<detail::QueueLocalState>()) {}

  // Queue::put(item): blocks until there is room; ShutDown after shutdown();
  // ValueError after close() in this process.
  void put(const T& item) { put_impl(item, detail::Deadline::never(), false, "put"); }
  // Queue::put(item, timeout): Full if no room came within timeout (a
  // negative timeout is zero). A streamed item not finished by then is
  // aborted (consumers drop what they saw of it) and raises Full.
  template <class Rep, class Period>
  void put(const T& item, std::chrono::duration<Rep, Period> timeout) {
    put_impl(item, detail::Deadline::after(timeout), false, "put");
  }
  // Queue::put_nowait(item): Full at once if there is no room (for a streamed
  // item: room for all of it).
  void put_nowait(const T& item) { put_impl(item, detail::Deadline::never(), true, "put_nowait"); }
  // Queue::try_put(item): false instead of Full or ShutDown; for hot loops.
  // Still ValueError after close() (misuse, not a state of the queue).
  [[nodiscard]] bool try_put(const T& item) {
    return put_impl(item, detail::Deadline::never(), true, "try_put", /*report=*/false);
  }

  // Queue::get(): blocks until an item comes; ShutDown once the queue is shut
  // down and empty; ValueError after close() in this process.
  T get() { return *get_impl(detail::Deadline::never(), false, "get"); }
  // Queue::get(timeout): Empty if nothing came within timeout, also while a
  // large item's producer stalls half-way (the item is sent again later).
  template <class Rep, class Period>
  T get(std::chrono::duration<Rep, Period> timeout) {
    return *get_impl(detail::Deadline::after(timeout), false, "get");
  }
  // Queue::get_nowait(): Empty at once if nothing is there.
  T get_nowait() { return *get_impl(detail::Deadline::never(), true, "get_nowait"); }
  // Queue::try_get(): nullopt instead of Empty or ShutDown; for hot loops.
  [[nodiscard]] std::optional<T> try_get() {
    return get_impl(detail::Deadline::never(), true, "try_get", false);
  }

  // Queue::qsize(): items waiting (complete ones; a large item being streamed
  // counts once its last chunk is in). A snapshot: others may change it.
  [[nodiscard]] std::size_t qsize() const noexcept { return ring_.size(); }
  [[nodiscard]] bool empty() const noexcept { return ring_.size() == 0; }
  // Queue::full(): qsize() reached maxsize (never true for maxsize 0).
  [[nodiscard]] bool full() const noexcept { return ring_.maxsize() != 0 && ring_.size() >= ring_.maxsize(); }
  [[nodiscard]] std::size_t maxsize() const noexcept { return static_cast<std::size_t>(ring_.maxsize()); }

  // Queue::close(): this process will put no more. Every handle of this queue
  // in this process then throws ValueError on put and get (as Python's
  // Queue.close); other processes, and children forked later, are unaffected.
  // Items already put stay for the other processes. Calling it twice is fine.
  void close() noexcept { local_->closed_by.store(::getpid(), std::memory_order_relaxed); }
  [[nodiscard]] bool closed() const noexcept { return local_->closed(); }

  // Queue::shutdown(): for every process: puts throw ShutDown, gets drain what
  // is left then throw ShutDown; every blocked put and get wakes up. A large
  // item being streamed is abandoned. Cannot be undone.
  void shutdown() noexcept { ring_.shutdown(); }
  [[nodiscard]] bool is_shutdown() const noexcept { return ring_.is_shut_down(); }

 protected:
  friend struct detail::QueueAccess;
  template <class U, class Enable>
  friend struct mp::codec;  // travels as a Process argument: detail/queue_codec.hpp
  Queue(detail::AdoptTag, detail::Ring ring)
      : ring_(std::move(ring)), local_(std::make_shared<detail::QueueLocalState>()) {}

  static std::uint32_t ring_capacity(std::size_t bytes) {
    if (bytes > detail::kMaxRingCapacity)
      throw ValueError("mp::Queue: QueueOptions::ring_bytes " + std::to_string(bytes) +
                       " is above the 2 GiB limit (large items are streamed; a big ring is not needed)");
    return static_cast<std::uint32_t>(bytes);
  }

  void check_open(const char* call) const {
    if (local_->closed()) [[unlikely]]
      throw_closed(call);
  }
  // The failure paths are out of line and cold, so that put() and get() stay
  // small enough for the compiler to inline into the caller's loop.
  [[noreturn, gnu::cold, gnu::noinline]] static void throw_closed(const char* call) {
    throw ValueError(std::string("Queue.") + call +
                     "(): the queue was closed in this process (close() was called)");
  }

  bool put_impl(const T& item, const detail::Deadline& deadline, bool nonblocking, const char* call,
                bool report = true) {
    check_open(call);
    detail::RingStatus status;
    if constexpr (detail::is_bitwise_v<T>) {
      // Encode outside any lock: for bitwise T the encoding is the object itself.
      status = ring_.put(std::as_bytes(std::span<const T, 1>(&item, 1)), deadline, nonblocking);
    } else if constexpr (detail::contiguous_item<T>::value) {
      // The encoding is the count and then the object's bytes: both go
      // straight into the ring (the critical section is that memcpy; a
      // large item is streamed from the two parts the same way).
      const std::uint64_t prefix = detail::contiguous_prefix(item.size());
      status = ring_.put(std::as_bytes(std::span<const std::uint64_t, 1>(&prefix, 1)),
                         std::as_bytes(std::span(item.data(), item.size())), deadline, nonblocking);
    } else {
      status = put_encoded(item, deadline, nonblocking);
    }
    if (status == detail::RingStatus::ok) [[likely]]
      return true;
    return put_failed(status, call, report);
  }

  // put_encoded(item, ...): the general case, encoded into this thread's
  // scratch buffer outside any lock. Out of line: the encoding dominates its
  // cost, and inlined into the caller's code GCC 12 warns (falsely) about
  // uninitialized members of some encoded types (std::optional<std::vector>).
  [[gnu::noinline]] detail::RingStatus put_encoded(const T& item, const detail::Deadline& deadline,
                                                   bool nonblocking) {
    std::vector<std::byte>& bytes = detail::queue_scratch(0);
    bytes.clear();
    encode_into(bytes, item);  // outside any lock
    const detail::RingStatus status = ring_.put(bytes, deadline, nonblocking);
    detail::trim_scratch(bytes);
    return status;
  }

  [[gnu::cold, gnu::noinline]] bool put_failed(detail::RingStatus status, const char* call,
                                               bool report) const {
    switch (status) {
      case detail::RingStatus::would_block:
        if (!report) return false;
        throw Full(
            std::string("Queue.") + call + "(): queue is full" +
            (ring_.maxsize() != 0 ? " (maxsize " + std::to_string(ring_.maxsize()) + ")" : std::string()));
      case detail::RingStatus::shut_down:
        if (!report) return false;
        throw ShutDown(std::string("Queue.") + call + "(): the queue was shut down");
      default: detail::throw_ring_failure(status, call);
    }
  }

  std::optional<T> get_impl(const detail::Deadline& deadline, bool nonblocking, const char* call,
                            bool report = true) {
    check_open(call);
    std::vector<std::byte>& bytes = detail::queue_scratch(1);
    detail::GetTarget target{nullptr, 0, &bytes, false};
    if constexpr (detail::is_bitwise_v<T>) {
      std::array<std::byte, sizeof(T)> storage;
      target.fixed = storage.data();
      target.fixed_size = sizeof(T);
      const detail::RingStatus status = ring_.get(target, deadline, nonblocking);
      if (status != detail::RingStatus::ok) return get_failed(status, call, report);
      // Bitwise types are trivially copyable: their bytes are the value.
      if (target.got_fixed) return std::optional<T>(std::bit_cast<T>(storage));
      return decode_scratch(bytes);
    } else if constexpr (detail::contiguous_item<T>::value) {
      // Sized outside the lock for the count this thread expects; the ring
      // then copies the elements straight in when the item has that count.
      // (Streamed items too: the ring copies each chunk straight in.)
      thread_local detail::ExpectedCount count;
      std::optional<T> value(std::in_place);
      const std::size_t expected_bytes =
          count.expected * sizeof(typename detail::contiguous_item<T>::element);
      if (count.expected != 0) {
        value->resize(count.expected);
        target.fixed = reinterpret_cast<std::byte*>(value->data());
        target.fixed_size = expected_bytes;
        target.prefixed = true;
        target.prefix = detail::contiguous_prefix(count.expected);
      }
      const detail::RingStatus status = ring_.get(target, deadline, nonblocking);
      if (status != detail::RingStatus::ok) return get_failed(status, call, report);
      if (!target.got_fixed) value = decode_scratch(bytes);
      count.saw(value->size());
      return value;
    } else {
      const detail::RingStatus status = ring_.get(target, deadline, nonblocking);
      if (status != detail::RingStatus::ok) return get_failed(status, call, report);
      return decode_scratch(bytes);
    }
  }

  static std::optional<T> decode_scratch(std::vector<std::byte>& bytes) {
    struct Trim {
      std::vector<std::byte>& b;
      ~Trim() { detail::trim_scratch(b); }
    } trim{bytes};
    return std::optional<T>(decode<T>(bytes));  // outside any lock
  }

  [[gnu::cold, gnu::noinline]] std::optional<T> get_failed(detail::RingStatus status, const char* call,
                                                           bool report) {
    switch (status) {
      case detail::RingStatus::would_block:
        if (!report) return std::nullopt;
        throw Empty(std::string("Queue.") + call + "(): queue is empty");
      case detail::RingStatus::shut_down:
        if (!report) return std::nullopt;
        throw ShutDown(std::string("Queue.") + call + "(): the queue was shut down and nothing is left");
      default: detail::throw_ring_failure(status, call);
    }
  }

  detail::Ring ring_;
  std::shared_ptr<detail::QueueLocalState> local_;
};

// A Queue whose consumers confirm each item with task_done(), so that a
// producer can join() until every item put has been processed.
template <class T>
class JoinableQueue : public Queue<T> {
 public:
  using Queue<T>::Queue;

  // JoinableQueue::task_done(): marks one item taken by get() as processed.
  // ValueError if called more times than items were put.
  void task_done() {
    if (!this->ring_.task_done())
      throw ValueError("JoinableQueue.task_done(): called more times than there were items put");
  }

  // JoinableQueue::join(): blocks until every item ever put has been marked
  // task_done() (returns at once if none is pending). An item whose consumer
  // was killed before task_done() keeps join() waiting, as in Python.
  void join() { (void)this->ring_.join(detail::Deadline::never()); }
  // JoinableQueue::join(timeout): true once all are done; false if the timeout ran out first.
  template <class Rep, class Period>
  bool join(std::chrono::duration<Rep, Period> timeout) {
    return this->ring_.join(detail::Deadline::after(timeout));
  }
  // JoinableQueue::unfinished_tasks(): items put and not yet task_done().
  [[nodiscard]] std::size_t unfinished_tasks() const noexcept { return this->ring_.unfinished_tasks(); }
};

// Python's SimpleQueue: put, get, empty, close; no size limit, no timeouts.
template <class T>
class SimpleQueue {
 public:
  SimpleQueue() : queue_(0) {}

  // SimpleQueue::put(item): blocks only while the ring has no room for it.
  void put(const T& item) {
    check_open("put");
    queue_.put(item);
  }
  // SimpleQueue::get(): blocks until an item comes.
  T get() {
    check_open("get");
    return queue_.get();
  }
  // SimpleQueue::empty(): no complete item is waiting.
  [[nodiscard]] bool empty() const {
    check_open("empty");
    return queue_.empty();
  }
  // SimpleQueue::close(): this process is done with the queue: put, get and
  // empty then throw ValueError here (other processes are unaffected).
  void close() noexcept { queue_.close(); }

 private:
  template <class U, class Enable>
  friend struct mp::codec;  // detail/queue_codec.hpp
  explicit SimpleQueue(Queue<T> queue) : queue_(std::move(queue)) {}

  void check_open(const char* call) const {
    if (queue_.closed())
      throw ValueError(std::string("SimpleQueue.") + call + "(): the queue was closed in this process");
  }
  Queue<T> queue_;
};

}  // namespace mp

#include "mp/detail/queue_codec.hpp"
