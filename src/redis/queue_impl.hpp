// src/redis/queue_impl.hpp — what QueueCore keeps: keys, per-process state, Impl (private).
//
// Shared by queue.cpp (open, put, task_done, join...) and queue_get.cpp (get).
//
// Keys of one queue (all with the hash tag {name}; the table is in functions.cpp).
// ProcessQueueState: what one process keeps for a handle: its links, its
// writer id for deduplicated retries, and as a JoinableQueue consumer its lease
// keeper and the consumer id each held item was taken under.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>

#include "lease_keeper.hpp"
#include "link_pool.hpp"
#include "mp/redis/core.hpp"
#include "per_process.hpp"
#include "retry.hpp"

namespace mp::redis::impl {

struct QueueKeys {
  explicit QueueKeys(const std::string& name)
      : prefix("mpq:{" + name + "}:"),
        items(prefix + "items"),
        meta(prefix + "meta"),
        unfinished(prefix + "unfinished"),
        consumers(prefix + "consumers"),
        notfull(prefix + "notfull"),
        producers(prefix + "producers"),
        acks(prefix + "acks"),
        joined(prefix + "joined") {}
  [[nodiscard]] std::string inflight(const std::string& cid) const { return prefix + "inflight:" + cid; }
  [[nodiscard]] std::string heartbeat(const std::string& cid) const { return prefix + "hb:" + cid; }
  std::string prefix, items, meta, unfinished, consumers, notfull, producers, acks, joined;
};

// new_consumer_id(): "<host>:<pid>:<random>", unique across machines.
std::string new_consumer_id();

// seconds_arg(d): d as the seconds argument of BLMOVE / BLPOP (never 0, which means forever).
std::string seconds_arg(Clock::duration d);

struct ProcessQueueState {
  explicit ProcessQueueState(const Endpoint& endpoint) : pool(endpoint), put_prefix(random_hex(8)) {}

  void abandon_after_fork() noexcept {
    pool.close_after_fork();
    if (keeper) keeper->abandon_after_fork();
    keep_forever(std::shared_ptr<LeaseKeeper>(keeper.release()));
  }

  // ProcessQueueState::writer_id(): "<process prefix>:<thread number>": one sequential writer
  // (a thread's puts and task_dones are sequential), for the retry bookkeeping.
  std::string writer_id() const {
    thread_local std::uint64_t thread_number = next_thread_number();
    return put_prefix + ":" + std::to_string(thread_number);
  }
  static std::uint64_t next_thread_number() {
    static std::atomic<std::uint64_t> counter{0};
    return counter.fetch_add(1, std::memory_order_relaxed);  // relaxed: only uniqueness matters
  }

  // ProcessQueueState::refresh_due(last): true for one call at most once a minute per process:
  // that put (last = producers_refreshed) or task_done (acks_refreshed) renews the 10-minute
  // expiry of the producers / acks hash, so a retry record outlives its retry by far without an
  // expiry renewal per call (functions.cpp, mp2_put).
  static bool refresh_due(std::atomic<Clock::rep>& last) {
    const Clock::rep now = Clock::now().time_since_epoch().count();
    Clock::rep seen = last.load(std::memory_order_relaxed);  // relaxed: a rate limit, orders nothing
    if (seen != 0 &&
        now - seen < std::chrono::duration_cast<Clock::duration>(std::chrono::minutes(1)).count())
      return false;
    return last.compare_exchange_strong(seen, now, std::memory_order_relaxed);  // relaxed: as above
  }

  LinkPool pool;
  std::string put_prefix;
  std::atomic<Clock::rep> producers_refreshed{0};  // relaxed (refresh_due): a rate limit only
  std::atomic<Clock::rep> acks_refreshed{0};       // relaxed (refresh_due): a rate limit only
  std::atomic<std::uint64_t> sequence{0};          // relaxed: only uniqueness matters
  std::atomic<bool> last_get_waited{false};        // relaxed: a hint for where get() starts
  std::mutex mutex;                                // guards everything below
  bool closed = false;
  std::string plain_cid;                // Queue: the in-flight list a blocking get passes through
  std::unique_ptr<LeaseKeeper> keeper;  // JoinableQueue: the consumer's lease, started by the first get
  std::deque<std::string> held;         // cid each held item was taken under, oldest first
  Clock::time_point last_reap{};
};

}  // namespace mp::redis::impl

namespace mp::redis::detail {

struct QueueCore::Impl {
  Impl(std::string_view url, std::string_view queue_name, std::size_t max, bool is_joinable, std::string sig,
       Options opts)
      : endpoint(impl::parse_url(url)),
        name(queue_name),
        keys(name),
        maxsize(max),
        joinable(is_joinable),
        signature(std::move(sig)),
        options(opts),
        described("queue \"" + name + "\""),
        per_process(std::make_shared<impl::ProcessQueueState>(endpoint)) {}

  impl::ProcessQueueState& local() {
    return per_process.get([this] { return std::make_shared<impl::ProcessQueueState>(endpoint); });
  }
  impl::Retry retry(impl::Deadline deadline, const char* what) const {
    return impl::Retry(endpoint, options.server_timeout, deadline, what, described);
  }
  // Impl::context(call): "put() on queue \"jobs\"", for messages.
  [[nodiscard]] std::string context(std::string_view call) const {
    return std::string(call) + " on " + described;
  }

  // Impl::current_cid(state, link, retry): this process's consumer id; a JoinableQueue
  // registers on its first get (and starts the lease keeper).
  std::string current_cid(impl::ProcessQueueState& state, impl::Link& link, impl::Retry& retry);
  // Impl::maybe_reap(state, link, retry): hands back the items of expired consumers, at most
  // every lease/2 per process.
  void maybe_reap(impl::ProcessQueueState& state, impl::Link& link, impl::Retry& retry);
  // Impl::leave(state, deadline): the handle goes: acks still owed are read, held items go back
  // at once; bounded by deadline, never waits for the lease keeper.
  void leave(impl::ProcessQueueState& state, impl::Deadline deadline) noexcept;
  // Impl::hint_if_was_full(link, length_after, taken, retry): a get that took `taken` items and
  // left length_after made room in a full queue: wake one blocked producer (sent without waiting
  // for the reply).
  void hint_if_was_full(impl::Link& link, long long length_after, std::size_t taken, impl::Retry& retry);
  // Impl::ack_push(): how a deferred acknowledgement is sent: with the next command on its link
  // (one segment, one server read for both), which the kernel holds for at most ~200 ms, when the
  // lease leaves room for that (surely_held: >= lease/2 left); else at once.
  [[nodiscard]] impl::Link::Push ack_push() const {
    return options.lease >= std::chrono::seconds(2) ? impl::Link::Push::with_next : impl::Link::Push::now;
  }

  impl::Endpoint endpoint;
  std::string name;
  impl::QueueKeys keys;
  std::size_t maxsize;
  bool joinable;
  std::string signature;
  Options options;
  std::string described;  // queue "name", for messages
  impl::PerProcess<impl::ProcessQueueState> per_process;
};

}  // namespace mp::redis::detail
