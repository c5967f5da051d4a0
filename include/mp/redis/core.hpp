// mp/redis/core.hpp — the byte-level cores behind mp::redis::Queue and Lock.
//
// The typed handles in queue.hpp / lock.hpp are thin templates that encode and
// decode with the codec; everything that talks to Redis lives in src/redis/
// behind these non-template classes, so hiredis never appears in a public
// header. Users do not name anything in mp::redis::detail.
//
// Safety: a core may be used from several threads of one process at once
// (each blocking call takes its own connection). Visibility: see queue.hpp.
// Lifetime: a core belongs to the handles sharing it; a process forked after
// it was made gets its own connections and consumer identity on first use.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mp/detail/clock.hpp"
#include "mp/detail/export.hpp"

namespace mp::redis {

// Tuning a handle; the defaults are the contract's (API.md "Redis").
struct Options {
  // A JoinableQueue consumer's lease (renewed every lease/3 while the process
  // lives); a Lock's lease is its constructor argument instead.
  std::chrono::milliseconds lease{std::chrono::seconds(10)};
  // How long a call keeps trying to regain a lost server when it has no
  // timeout of its own, before mp::ConnectionError.
  std::chrono::milliseconds server_timeout{std::chrono::seconds(10)};
  // JoinableQueue: an item whose consumers died holding it this many times becomes a
  // dead letter (mp-redis dead / retry / purge) instead of being handed out again;
  // 0: handed out again forever. Fixed by whoever creates the queue.
  int max_deliveries = 0;
};

namespace detail {

class MP_API QueueCore {
 public:
  // QueueCore(url, name, maxsize, joinable, signature, options): connects,
  // creates the queue's meta hash or checks it (mp::ValueError naming both
  // signatures when another item type owns the name; mp::ValueError for a
  // malformed url; mp::ConnectionError when the server is unreachable).
  QueueCore(std::string_view url, std::string_view name, std::size_t maxsize, bool joinable,
            std::string signature, Options options);
  ~QueueCore();
  QueueCore(const QueueCore&) = delete;
  QueueCore& operator=(const QueueCore&) = delete;

  // QueueCore::put(item, deadline): true once stored; false if still full at
  // deadline. Throws ShutDown, ValueError (closed here), ConnectionError.
  bool put(std::span<const std::byte> item, mp::detail::Deadline deadline);
  // QueueCore::get(deadline): an item, or nullopt if still empty at deadline.
  // Throws ShutDown (shut down and drained), ConnectionError.
  std::optional<std::vector<std::byte>> get(mp::detail::Deadline deadline);
  // QueueCore::put_many(items, deadline): put() of each, in order, in batches of up to 64 items
  // that each take one round trip and one function call on the server (applied whole, once: a
  // retry after a lost reply applies nothing again). A bounded queue takes what fits of a batch
  // and the rest waits for room as put() does. Returns how many were stored (fewer only if the
  // queue stayed full until deadline).
  std::size_t put_many(std::span<const std::vector<std::byte>> items, mp::detail::Deadline deadline);
  // QueueCore::get_many(most, deadline): up to `most` items, in queue order: what is ready now
  // (JoinableQueue: one round trip, each item taken into this consumer's in-flight list as by
  // get() and acknowledged by its own task_done / task_failed, oldest first); if none is ready,
  // waits as get() does. Empty if still none at deadline. Same errors as get().
  std::vector<std::vector<std::byte>> get_many(std::size_t most, mp::detail::Deadline deadline);
  [[nodiscard]] std::size_t qsize();
  [[nodiscard]] std::size_t maxsize() const noexcept;
  void close();
  void shutdown();
  void task_done();
  // QueueCore::task_failed(dead_letter): the oldest item this process got failed, though this
  // process lives on: counted as a failed delivery as if its consumer had died; handed out
  // again (false), or, at max_deliveries, dead_letter is kept on the dead-letter list in its
  // place (true). ValueError as task_done(). (For mp::redis::Pool's worker hosts.)
  bool task_failed(std::span<const std::byte> dead_letter);
  // QueueCore::task_done_many(n): task_done() of the n oldest items this process got, sent
  // together as one function call on the server (one round trip, or none waited for while this
  // consumer's lease is fresh); all or none: ValueError as task_done() if any was handed out again.
  void task_done_many(std::size_t n);
  void join();
  [[nodiscard]] const std::string& name() const noexcept;

  struct Impl;  // opaque: defined in src/redis/

 private:
  std::unique_ptr<Impl> impl_;
};

class MP_API LockCore {
 public:
  LockCore(std::string_view url, std::string_view name, std::chrono::milliseconds lease, Options options);
  ~LockCore();
  LockCore(const LockCore&) = delete;
  LockCore& operator=(const LockCore&) = delete;

  // LockCore::acquire(deadline): true once held, false if not free by deadline.
  bool acquire(mp::detail::Deadline deadline);
  // LockCore::release(): ValueError if this process does not hold it; LockLost if its lease ran out.
  void release();
  [[nodiscard]] std::uint64_t fencing_token() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace detail
}  // namespace mp::redis
