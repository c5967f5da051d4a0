// mp/redis/queue.hpp — mp::redis::Queue<T> and JoinableQueue<T>: mp's queues across machines.
//
// The same members and errors as mp::Queue / mp::JoinableQueue (API.md
// "Queues"), over one Redis 7 server. Processes meet by url and name, whether
// they are forks of one program or separate programs on separate machines.
//
//   mp::redis::JoinableQueue<std::string> jobs("redis://10.0.0.5:6379", "jobs");
//   jobs.put("resize img-1.png");                  // producer, any machine
//   std::string job = jobs.get();                  // consumer, any machine
//   work(job); jobs.task_done();
//   jobs.join();                                   // producer: every job done
//
// Items are encoded with the codec (little-endian, fixed-width: the same
// bytes on every machine). The queue's meta hash records codec_signature<T>()
// when the queue is created; opening the name with another item type throws
// mp::ValueError naming both. maxsize is fixed by whoever creates the queue;
// an opener passing 0 adopts it, one passing another value gets ValueError.
//
// Delivery: Queue hands an item to exactly one get() (it is removed as the
// reply is sent; a reply lost together with the connection loses that item).
// JoinableQueue is at-least-once: get() moves the item into the consumer's
// in-flight list and only task_done() removes it. A consumer process holds a
// lease (Options::lease, 10 s) renewed every lease/3 by a background thread;
// when it dies (SIGKILL, lost host) its items go back to the front of the queue
// within about two leases, and join() keeps waiting for them. A consumer whose
// lease ran out while it was alive (stopped, partitioned) gets ValueError from
// its late task_done() for those items: the count is never corrupted.
// Consumers must therefore be idempotent. Re-delivered items may briefly push
// qsize() above maxsize. task_done() must be called by the process that got the
// item; it acknowledges that process's oldest unacknowledged item.
//
// Errors: Full / Empty / ShutDown / ValueError as for mp::Queue;
// mp::ConnectionError when the server cannot be reached, or is lost and not
// regained within the call's timeout plus 0.5 s (Options::server_timeout, 10 s
// after the server fell silent, for calls without one);
// mp::AuthenticationError when the server refuses the url's login;
// mp::CodecError when an item's bytes do not decode as T.
// A call that lost the server mid-way retries once it is back, exactly once
// (puts and task_dones carry a sequence number the server checks); only when
// ConnectionError ends a put is that put in doubt (it may have been stored).
// shutdown() is seen by blocked getters within 0.5 s and by blocked putters at once.
//
// Safety: a handle may be copied and used from any thread of any process that
// has it; each blocking call uses its own connection. Visibility: what a
// process wrote before put(x) returned is in the server before x; a get() that
// returns x sees x's bytes; nothing else is ordered across machines. Items of
// one producer come out in the order it put them (re-deliveries apart).
// Lifetime: the queue lives in the server under keys "mpq:{name}:*" until
// someone deletes them; handles hold connections only. A child forked after a
// handle was made reconnects on first use and is a consumer of its own.
// Durability: an acknowledged put survives a server restart when the server
// runs with appendonly yes and appendfsync always.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "mp/codec.hpp"
#include "mp/errors.hpp"
#include "mp/redis/core.hpp"

namespace mp::redis {

template <class T>
class Queue {
  static_assert(mp::Encodable<T>, "mp::redis::Queue<T>: T must be encodable by mp::codec (see mp/codec.hpp)");

 public:
  // Queue(url, name, maxsize = 0, options = {}): opens (or creates) the queue
  // `name` on the server at url ("redis://[[user]:password@]host:port[/db]").
  // ValueError for a malformed url, a database the server refuses or another
  // item type under this name; AuthenticationError when the server refuses the
  // login; ConnectionError when the server cannot be reached.
  Queue(std::string_view url, std::string_view name, std::size_t maxsize = 0, Options options = {})
      : Queue(url, name, maxsize, options, false) {}

  // Queue::put(item) / put(item, timeout) / put_nowait(item): blocks while the
  // queue is full (forever, or until timeout: Full; put_nowait: Full at once).
  // ShutDown after shutdown(); ValueError after close() in this process.
  void put(const T& item) { (void)core_->put(mp::encode(item), mp::detail::Deadline::never()); }
  template <class Rep, class Period>
  void put(const T& item, std::chrono::duration<Rep, Period> timeout) {
    if (!core_->put(mp::encode(item), mp::detail::Deadline::after(timeout))) throw_full();
  }
  void put_nowait(const T& item) {
    if (!core_->put(mp::encode(item), mp::detail::Deadline::after(std::chrono::seconds(0)))) throw_full();
  }
  // Queue::try_put(item): false when full (no Full thrown); other errors still throw.
  [[nodiscard]] bool try_put(const T& item) {
    return core_->put(mp::encode(item), mp::detail::Deadline::after(std::chrono::seconds(0)));
  }

  // Queue::get() / get(timeout) / get_nowait(): the oldest item; blocks while
  // empty (forever, or until timeout: Empty; get_nowait: Empty at once).
  // ShutDown once shut down and drained. CodecError if the bytes are not a T.
  T get() { return decode_item(core_->get(mp::detail::Deadline::never())); }
  template <class Rep, class Period>
  T get(std::chrono::duration<Rep, Period> timeout) {
    return decode_item(core_->get(mp::detail::Deadline::after(timeout)));
  }
  T get_nowait() { return decode_item(core_->get(mp::detail::Deadline::after(std::chrono::seconds(0)))); }
  // Queue::try_get(): nullopt when empty (no Empty thrown); other errors still throw.
  [[nodiscard]] std::optional<T> try_get() {
    auto bytes = core_->get(mp::detail::Deadline::after(std::chrono::seconds(0)));
    if (!bytes) return std::nullopt;
    return mp::decode<T>(*bytes);
  }

  // Queue::qsize(): items ready now (LLEN; items held by consumers not counted).
  [[nodiscard]] std::size_t qsize() const { return core_->qsize(); }
  [[nodiscard]] bool empty() const { return qsize() == 0; }
  [[nodiscard]] bool full() const { return core_->maxsize() > 0 && qsize() >= core_->maxsize(); }
  [[nodiscard]] std::size_t maxsize() const noexcept { return core_->maxsize(); }

  // Queue::close(): this process will put no more; a later put here -> ValueError.
  void close() { core_->close(); }
  // Queue::shutdown(): for everyone: puts throw ShutDown; gets drain what is
  // left, then throw ShutDown. Blocked callers wake.
  void shutdown() { core_->shutdown(); }

 protected:
  Queue(std::string_view url, std::string_view name, std::size_t maxsize, Options options, bool joinable)
      : core_(std::make_shared<detail::QueueCore>(url, name, maxsize, joinable, mp::codec_signature<T>(),
                                                  options)) {}

  std::shared_ptr<detail::QueueCore> core_;

 private:
  [[noreturn]] void throw_full() const {
    throw mp::Full("mp::redis queue \"" + core_->name() + "\" is full (maxsize " +
                   std::to_string(core_->maxsize()) + ")");
  }
  T decode_item(std::optional<std::vector<std::byte>> bytes) const {
    if (!bytes) throw mp::Empty("mp::redis queue \"" + core_->name() + "\" is empty");
    return mp::decode<T>(*bytes);
  }
};

template <class T>
class JoinableQueue : public Queue<T> {
 public:
  JoinableQueue(std::string_view url, std::string_view name, std::size_t maxsize = 0, Options options = {})
      : Queue<T>(url, name, maxsize, options, true) {}

  // JoinableQueue::task_done(): the oldest item this process got is done.
  // ValueError if this process holds no item, or if its lease on the item ran
  // out and the item was handed out again (the count is left intact).
  void task_done() { this->core_->task_done(); }
  // JoinableQueue::join(): returns once every item ever put has been marked
  // task_done() (re-delivered items included). ConnectionError if the server is
  // lost for longer than Options::server_timeout.
  void join() { this->core_->join(); }
};

}  // namespace mp::redis
