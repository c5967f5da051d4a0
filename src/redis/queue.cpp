// src/redis/queue.cpp — QueueCore: mp::redis::Queue / JoinableQueue on bytes (get() is in queue_get.cpp).
//
// Mapping (REDIS.md §2, keys and Lua in functions.cpp):
//   put      one function call: shutdown check, capacity check, LPUSH, INCR unfinished, and
//            the producer's sequence number, so that a retry after a lost reply is applied once.
//            Full: wait on the notfull hint list (BLPOP, <= 1 s) and try again.
//   get      see queue_get.cpp.
//   task_done RPOP my in-flight list + DECR unfinished (+ PUBLISH at 0); refused (NOLEASE)
//            when the item was handed out again after my lease ran out.
//   join     SUBSCRIBE to the joined channel first, then GET unfinished, wait <= 1 s, repeat.
// Liveness: a JoinableQueue consumer holds a lease hb:<cid> kept by a LeaseKeeper (renewed every
// lease/3 over its own connection); any consumer or joiner reaps (mp2_reap) at most every
// lease/2, handing the items of expired consumers back, oldest next in line.
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "mp/errors.hpp"
#include "queue_impl.hpp"

namespace mp::redis::impl {

std::string new_consumer_id() {
  char host[64] = {};
  ::gethostname(host, sizeof host - 1);
  return std::string(host) + ":" + std::to_string(::getpid()) + ":" + random_hex(6);
}

std::string seconds_arg(Clock::duration d) {
  double s = std::chrono::duration<double>(d).count();
  if (s < 0.001) s = 0.001;  // 0 would mean "forever" to BLMOVE / BLPOP
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", s);
  return buf;
}

}  // namespace mp::redis::impl

namespace mp::redis::detail {

using namespace mp::redis::impl;  // NOLINT(google-build-using-namespace): this file implements impl's users

namespace {

// now_ms(): the wall clock in unix ms: a lease's value, so that mp-redis can show when it was renewed.
std::string now_ms() {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count());
}

// The queue consumer's renewal: SET hb XX PX; a nil reply means the lease was lost (expired, or
// the server lost it): what the consumer held is (or will be) reaped and handed out again, so it
// continues under a new identity, and late task_done()s for the old items are refused.
LeaseKeeper::Renew consumer_renewal(const QueueKeys& keys, std::chrono::milliseconds lease) {
  return [&keys, lease](Link& link, const std::string& cid, Deadline deadline) -> std::optional<std::string> {
    Command renew{"SET", keys.heartbeat(cid), now_ms(), "XX", "PX"};
    renew.add(static_cast<long long>(lease.count()));
    Reply reply = link.run1(renew, deadline);
    throw_if_error(reply, "renewing a consumer's lease");
    if (!is_nil(reply.get())) return cid;
    std::string fresh = new_consumer_id();
    std::vector<Command> reg{Command{"SADD", keys.consumers, fresh},
                             Command{"SET", keys.heartbeat(fresh), now_ms(), "PX"}};
    reg[1].add(static_cast<long long>(lease.count()));
    for (auto& r : link.run(reg, deadline)) throw_if_error(r, "registering a consumer again");
    return fresh;
  };
}

}  // namespace

// take_held(state, n, name, call): the consumer ids of this process's n oldest held items, taken
// off its held list; ValueError if it holds fewer (call is "task_done()" or "task_failed()").
std::vector<std::string> take_held(ProcessQueueState& state, std::size_t n, const std::string& name,
                                   const char* call) {
  std::lock_guard lock(state.mutex);
  if (state.held.size() < n) {
    throw mp::ValueError("mp::redis queue \"" + name + "\": " + call +
                         " called more times than this process got items");
  }
  std::vector<std::string> cids(state.held.begin(), state.held.begin() + static_cast<std::ptrdiff_t>(n));
  state.held.erase(state.held.begin(), state.held.begin() + static_cast<std::ptrdiff_t>(n));
  return cids;
}

// refuse_if_lease_lost(reply, name, call, advice): ValueError when the server refused an
// acknowledgement (NOLEASE) because the item was handed out again after this lease ran out.
void refuse_if_lease_lost(const Reply& reply, const std::string& name, const char* call, const char* advice) {
  if (is_error(reply) && reply_text(reply.get()).rfind("NOLEASE", 0) == 0) {
    throw mp::ValueError("mp::redis queue \"" + name + "\": " + call +
                         " refused: this consumer's lease ran out while it held the item, so the item "
                         "was handed out again" +
                         advice);
  }
}

constexpr const char* kLongerLease = " (a longer Options::lease avoids this)";

std::string QueueCore::Impl::current_cid(ProcessQueueState& state, Link& link, Retry& retry) {
  std::lock_guard lock(state.mutex);
  if (!joinable) {
    if (state.plain_cid.empty()) state.plain_cid = new_consumer_id();
    return state.plain_cid;
  }
  if (state.keeper) return state.keeper->holder();
  std::string cid = new_consumer_id();
  std::vector<Command> reg{Command{"SADD", keys.consumers, cid},
                           Command{"SET", keys.heartbeat(cid), now_ms(), "PX"}};
  reg[1].add(static_cast<long long>(options.lease.count()));
  auto sent_at = Clock::now();
  auto replies = link.run(reg, retry.reply_deadline());
  for (auto& r : replies) throw_if_error(r, context("JoinableQueue::get(): registering the consumer"));
  state.keeper = std::make_unique<LeaseKeeper>(endpoint, options.lease, cid, sent_at,
                                               consumer_renewal(keys, options.lease));
  return cid;
}

void QueueCore::Impl::maybe_reap(ProcessQueueState& state, Link& link, Retry& retry) {
  auto now = Clock::now();
  {
    std::lock_guard lock(state.mutex);
    auto period = std::max<Clock::duration>(options.lease / 2, std::chrono::milliseconds(100));
    if (now - state.last_reap < period) return;
    state.last_reap = now;
  }
  Reply reply = link.run1(Command{"FCALL", "mp2_reap", "2", keys.consumers, keys.items, keys.prefix},
                          retry.reply_deadline());
  (void)integer_of(reply.get(), "reaping expired consumers of " + described);
}

void QueueCore::Impl::hint_if_was_full(Link& link, long long length_after, std::size_t taken, Retry& retry) {
  if (length_after + static_cast<long long>(taken) < static_cast<long long>(maxsize)) return;
  // Both in one segment (the first waits for the second), sent at once.
  link.run_later(Command{"LPUSH", keys.notfull, "1"}, retry.reply_deadline(), Link::Push::with_next);
  link.run_later(Command{"LTRIM", keys.notfull, "0", "63"}, retry.reply_deadline());
}

void QueueCore::Impl::leave(ProcessQueueState& state, Deadline deadline) noexcept {
  std::unique_ptr<LeaseKeeper> keeper;
  {
    std::lock_guard lock(state.mutex);
    keeper = std::move(state.keeper);
  }
  std::string cid;
  if (keeper) {
    cid = keeper->holder();
    keeper.reset();  // stops the renewals at once, without waiting for the server
  }
  try {
    // Acknowledgements sent with run_later reach the server before the leave below hands
    // back what is still held (otherwise a done item could be handed out again).
    state.pool.settle_all(deadline);
    if (cid.empty() || deadline.expired()) return;
    auto link = state.pool.take();
    link->run1(Command{"FCALL", "mp2_leave", "4", keys.consumers, keys.items, keys.inflight(cid),
                       keys.heartbeat(cid), cid},
               deadline);
  } catch (...) {  // NOLINT(bugprone-empty-catch): best effort; the lease runs out on its own
  }
}

QueueCore::QueueCore(std::string_view url, std::string_view name, std::size_t maxsize, bool joinable,
                     std::string signature, Options options) {
  if (name.empty()) throw mp::ValueError("mp::redis queue: the name must not be empty");
  if (options.lease < std::chrono::milliseconds(30)) {
    throw mp::ValueError("mp::redis queue \"" + std::string(name) + "\": the lease must be at least 30 ms");
  }
  if (options.max_deliveries < 0) {
    throw mp::ValueError("mp::redis queue \"" + std::string(name) + "\": max_deliveries must be >= 0");
  }
  impl_ = std::make_unique<Impl>(url, name, maxsize, joinable, std::move(signature), options);
  auto& state = impl_->local();
  auto retry = impl_->retry(Deadline::never(), "opening");
  auto link = state.pool.take();
  const std::string what = "opening " + impl_->described;
  Reply reply = retry([&] {
    return link->run1(Command{"FCALL", "mp2_open", "1", impl_->keys.meta, impl_->signature,
                              std::to_string(maxsize), std::to_string(options.max_deliveries)},
                      retry.reply_deadline());
  });
  std::string stored_signature = text_of(element_of(reply.get(), 0, what), what);
  const redisReply* stored_max = element_of(reply.get(), 1, what);
  if (stored_signature != impl_->signature) {
    throw mp::ValueError("mp::redis queue \"" + std::string(name) + "\" on " + impl_->endpoint.url +
                         " holds items of type \"" + stored_signature + "\", not \"" + impl_->signature +
                         "\"; use the same item type, or another name");
  }
  long long existing = integer_or(stored_max, 0, what + ": its maxsize");
  if (existing < 0) unexpected_reply(what + ": its maxsize", "a maxsize >= 0", stored_max);
  if (maxsize != 0 && static_cast<std::size_t>(existing) != maxsize) {
    throw mp::ValueError("mp::redis queue \"" + std::string(name) + "\" on " + impl_->endpoint.url +
                         " was created with maxsize " + std::to_string(existing) + ", not " +
                         std::to_string(maxsize) + "; pass the same maxsize, or 0 to adopt it");
  }
  impl_->maxsize = static_cast<std::size_t>(existing);
}

QueueCore::~QueueCore() {
  // One short budget for everything: a frozen or lost server must not hold the destructor.
  if (ProcessQueueState* state = impl_->per_process.owned()) {
    impl_->leave(*state, Deadline::after(std::chrono::seconds(1)));
  }
}

const std::string& QueueCore::name() const noexcept { return impl_->name; }
std::size_t QueueCore::maxsize() const noexcept { return impl_->maxsize; }

bool QueueCore::put(std::span<const std::byte> item, Deadline deadline) {
  auto& state = impl_->local();
  {
    std::lock_guard lock(state.mutex);
    if (state.closed) {
      throw mp::ValueError("mp::redis queue \"" + impl_->name + "\": put() after close() in this process");
    }
  }
  const auto& keys = impl_->keys;
  const std::string writer = state.writer_id();
  const std::string sequence = std::to_string(state.sequence.fetch_add(1, std::memory_order_relaxed));
  const std::string what = impl_->context("put()");
  bool waited = false;
  // in_doubt: a try of this put was sent and its reply not read, so it may have been applied: the
  // next try asks the server to look up this writer's last applied sequence (else it is skipped).
  bool in_doubt = false;
  const char* refresh = ProcessQueueState::refresh_due(state.producers_refreshed) ? "1" : "0";
  auto retry = impl_->retry(deadline, "put()");
  auto link = state.pool.take();
  for (;;) {
    Reply reply = retry([&] {
      Command put_cmd{"FCALL",         "mp2_put",      "5",         keys.items, keys.meta,
                      keys.unfinished, keys.producers, keys.notfull};
      put_cmd.add(item);
      put_cmd.add(writer).add(sequence).add(waited ? "1" : "0").add(in_doubt ? "1" : "0").add(refresh);
      in_doubt = true;
      Reply answer = link->run1(put_cmd, retry.reply_deadline());
      in_doubt = false;
      return answer;
    });
    long long outcome = integer_of(reply.get(), what);
    if (outcome == 1) return true;
    if (outcome == -2) throw mp::ShutDown("mp::redis queue \"" + impl_->name + "\" was shut down");
    if (outcome != -1) unexpected_reply(what, "1 (put), -1 (full) or -2 (shut down)", reply.get());
    if (deadline.expired()) return false;
    waited = true;
    auto block = std::min<Clock::duration>(std::chrono::seconds(1), deadline.remaining());
    retry([&] {
      Reply reply =
          link->run1(Command{"BLPOP", keys.notfull, seconds_arg(block)}, retry.reply_deadline(block));
      throw_if_error(reply, what);
      return 0;
    });
  }
}

std::size_t QueueCore::put_many(std::span<const std::vector<std::byte>> items, Deadline deadline) {
  auto& state = impl_->local();
  {
    std::lock_guard lock(state.mutex);
    if (state.closed) {
      throw mp::ValueError("mp::redis queue \"" + impl_->name + "\": put() after close() in this process");
    }
  }
  // Batches of kBatch items, one function call each (mp2_put_many: one round trip, applied at
  // once, one retry record per batch). A bounded queue stores what fits, in order; the rest waits
  // for room as put() does and goes as a new call (a new sequence number).
  constexpr std::size_t kBatch = 64;
  const auto& keys = impl_->keys;
  const std::string writer = state.writer_id();
  const std::string what = impl_->context("put()");
  auto retry = impl_->retry(deadline, "put()");
  auto link = state.pool.take();
  bool waited = false;
  std::size_t stored = 0;
  while (stored < items.size()) {
    const std::size_t count = std::min(items.size() - stored, kBatch);
    const std::string sequence = std::to_string(state.sequence.fetch_add(1, std::memory_order_relaxed));
    const char* refresh = ProcessQueueState::refresh_due(state.producers_refreshed) ? "1" : "0";
    bool in_doubt = false;  // as in put(): a try was sent and its reply not read
    Reply reply = retry([&] {
      Command call{"FCALL",         "mp2_put_many", "5",         keys.items, keys.meta,
                   keys.unfinished, keys.producers, keys.notfull};
      call.add(writer).add(sequence).add(in_doubt ? "1" : "0").add(refresh).add(waited ? "1" : "0");
      for (std::size_t i = stored; i < stored + count; ++i) call.add(items[i]);
      in_doubt = true;
      Reply answer = link->run1(call, retry.reply_deadline());
      in_doubt = false;
      return answer;
    });
    if (is_error(reply) && reply_text(reply.get()).find("Function not found") != std::string::npos) {
      throw mp::Error("mp::redis queue \"" + impl_->name +
                      "\": the server runs an older mp Lua library (no mp2_put_many); delete it (FUNCTION "
                      "DELETE mp2) so that the next connection loads the current one");
    }
    waited = false;  // a wake-up this producer used is passed on (by that call) at most once
    const long long put = integer_of(reply.get(), what);
    if (put == -2) throw mp::ShutDown("mp::redis queue \"" + impl_->name + "\" was shut down");
    if (put < 0 || static_cast<std::size_t>(put) > count) {
      unexpected_reply(what, "how many were put (0.." + std::to_string(count) + ") or -2 (shut down)",
                       reply.get());
    }
    stored += static_cast<std::size_t>(put);
    if (static_cast<std::size_t>(put) == count) continue;
    // Full: wait for room as put() does.
    if (deadline.expired()) return stored;
    waited = true;
    auto block = std::min<Clock::duration>(std::chrono::seconds(1), deadline.remaining());
    retry([&] {
      Reply woken =
          link->run1(Command{"BLPOP", keys.notfull, seconds_arg(block)}, retry.reply_deadline(block));
      throw_if_error(woken, what);
      return 0;
    });
  }
  return stored;
}

std::size_t QueueCore::qsize() {
  auto& state = impl_->local();
  auto retry = impl_->retry(Deadline::never(), "qsize()");
  auto link = state.pool.take();
  const std::string what = "qsize() of " + impl_->described;
  return static_cast<std::size_t>(retry([&] {
    return integer_of(link->run1(Command{"LLEN", impl_->keys.items}, retry.reply_deadline()).get(), what);
  }));
}

void QueueCore::close() {
  auto& state = impl_->local();
  std::lock_guard lock(state.mutex);
  state.closed = true;
}

void QueueCore::shutdown() {
  auto& state = impl_->local();
  auto retry = impl_->retry(Deadline::never(), "shutdown()");
  auto link = state.pool.take();
  const std::string what = "shutdown() of " + impl_->described;
  retry([&] {
    Reply reply = link->run1(Command{"FCALL", "mp2_shutdown", "2", impl_->keys.meta, impl_->keys.notfull},
                             retry.reply_deadline());
    return integer_of(reply.get(), what);
  });
}

void QueueCore::task_done() {
  auto& state = impl_->local();
  const std::string cid = std::move(take_held(state, 1, impl_->name, "task_done()").front());
  const auto& keys = impl_->keys;
  const std::string what = impl_->context("task_done()");
  auto retry = impl_->retry(Deadline::never(), "task_done()");
  auto link = state.pool.take();
  const std::string acker = state.writer_id();
  const auto sequence = static_cast<long long>(state.sequence.fetch_add(1, std::memory_order_relaxed));
  const char* refresh = ProcessQueueState::refresh_due(state.acks_refreshed) ? "1" : "0";
  // check: "1" makes the server look up whether this acknowledgement was applied already; needed
  // for one that may be sent again (deferred ones are, after a lost link; or a retry).
  auto ack = [&](const char* check) {
    Command done{"FCALL", "mp2_task_done", "3", keys.inflight(cid), keys.unfinished, keys.acks, keys.joined};
    done.add(acker).add(sequence).add(check).add(refresh);
    return done;
  };
  if (std::string earlier = link->take_later_error(); !earlier.empty()) {
    throw mp::Error("mp::redis queue \"" + impl_->name + "\": an earlier task_done() failed: " + earlier);
  }
  // One deferred acknowledgement per acker at a time: after a lost link every deferred command
  // is sent again, and mp2_task_done only recognises the acker's last applied sequence number.
  if (link->owes_replies()) retry([&] { return link->run({}, retry.reply_deadline()); });
  bool safe_to_defer = false;
  {
    std::lock_guard lock(state.mutex);
    safe_to_defer = state.keeper && state.keeper->surely_held(cid);
  }
  if (safe_to_defer) {
    // The lease is fresh, so the item is still in my in-flight list and the ack cannot be
    // refused: send it now (the server applies it at once, join() sees it) and read the
    // reply with this link's next command. A retry after a lost link re-sends it; the
    // acker's sequence number keeps it from applying twice.
    const Command done = ack("1");
    retry([&] {
      link->run_later(done, retry.reply_deadline(), impl_->ack_push());
      return 0;
    });
    return;
  }
  bool in_doubt = false;
  Reply reply = retry([&] {
    const Command done = ack(in_doubt ? "1" : "0");
    in_doubt = true;
    Reply answer = link->run1(done, retry.reply_deadline());
    in_doubt = false;
    return answer;
  });
  refuse_if_lease_lost(reply, impl_->name, "task_done()", kLongerLease);
  (void)integer_of(reply.get(), what);
}

void QueueCore::task_done_many(std::size_t n) {
  if (n == 0) return;
  if (n == 1) return task_done();
  auto& state = impl_->local();
  const std::vector<std::string> cids = take_held(state, n, impl_->name, "task_done()");
  bool safe_to_defer = false;
  {
    std::lock_guard lock(state.mutex);
    safe_to_defer = state.keeper != nullptr;
    for (const auto& cid : cids) safe_to_defer = safe_to_defer && state.keeper->surely_held(cid);
  }
  const auto& keys = impl_->keys;
  const std::string what = impl_->context("task_done()");
  auto retry = impl_->retry(Deadline::never(), "task_done()");
  auto link = state.pool.take();
  if (std::string earlier = link->take_later_error(); !earlier.empty()) {
    throw mp::Error("mp::redis queue \"" + impl_->name + "\": an earlier task_done() failed: " + earlier);
  }
  // One mp2_task_done_many call per run of items taken under one consumer id (one run, unless
  // the lease was renewed under a new id meanwhile), oldest first. The k-th run is acknowledged by
  // sub-acker "<acker>/k", all with one sequence number, so a batch sent again after a lost link
  // applies each run once; and at most one batch (or single acknowledgement) is in flight per
  // link (the replies owed are read first).
  if (link->owes_replies()) retry([&] { return link->run({}, retry.reply_deadline()); });
  const std::string acker = state.writer_id();
  const auto sequence = static_cast<long long>(state.sequence.fetch_add(1, std::memory_order_relaxed));
  std::vector<Command> batch;
  for (std::size_t first = 0; first < n;) {
    std::size_t end = first + 1;
    while (end < n && cids[end] == cids[first]) ++end;
    Command done{"FCALL",   "mp2_task_done_many", "3", keys.inflight(cids[first]), keys.unfinished,
                 keys.acks, keys.joined};
    done.add(acker + "/" + std::to_string(batch.size()));
    done.add(sequence).add("1");  // each may be sent again (deferred, or retried): looked up
    done.add(batch.empty() && ProcessQueueState::refresh_due(state.acks_refreshed) ? "1" : "0");
    done.add(static_cast<long long>(end - first));
    batch.push_back(std::move(done));
    first = end;
  }
  if (safe_to_defer) {
    retry([&] {
      for (std::size_t k = 0; k < batch.size(); ++k)
        link->run_later(batch[k], retry.reply_deadline(),
                        k + 1 < batch.size() ? Link::Push::with_next : impl_->ack_push());
      return 0;
    });
    return;
  }
  auto replies = retry([&] { return link->run(batch, retry.reply_deadline()); });
  for (auto& reply : replies) {
    refuse_if_lease_lost(reply, impl_->name, "task_done()", kLongerLease);
    if (is_error(reply) && reply_text(reply.get()).find("Function not found") != std::string::npos) {
      throw mp::Error("mp::redis queue \"" + impl_->name +
                      "\": the server runs an older mp Lua library (no mp2_task_done_many); delete it "
                      "(FUNCTION DELETE mp2) so that the next connection loads the current one");
    }
    (void)integer_of(reply.get(), what);
  }
}

bool QueueCore::task_failed(std::span<const std::byte> dead_letter) {
  auto& state = impl_->local();
  const std::string cid = std::move(take_held(state, 1, impl_->name, "task_failed()").front());
  const auto& keys = impl_->keys;
  auto retry = impl_->retry(Deadline::never(), "task_failed()");
  auto link = state.pool.take();
  Command fail{"FCALL", "mp2_fail", "3", keys.inflight(cid), keys.items, keys.acks, keys.prefix};
  fail.add(dead_letter).add(state.writer_id());
  fail.add(static_cast<long long>(state.sequence.fetch_add(1, std::memory_order_relaxed)));
  Reply reply = retry([&] { return link->run1(fail, retry.reply_deadline()); });
  refuse_if_lease_lost(reply, impl_->name, "task_failed()", "");
  if (is_error(reply) && reply_text(reply.get()).find("Function not found") != std::string::npos) {
    throw mp::Error(
        "mp::redis queue \"" + impl_->name +
        "\": the server runs an older mp Lua library (no mp2_fail); delete it (FUNCTION DELETE mp2) "
        "so that the next connection loads the current one");
  }
  const std::string what = impl_->context("task_failed()");
  throw_if_error(reply, what);
  return integer_of(reply.get(), what) == 1;
}

void QueueCore::join() {
  auto& state = impl_->local();
  const auto& keys = impl_->keys;
  const std::string what = impl_->context("join()");
  Link subscriber(impl_->endpoint);
  auto link = state.pool.take();
  for (;;) {
    auto retry = impl_->retry(Deadline::never(), "join()");
    bool done = retry([&] {
      if (!subscriber.connected()) {
        // Subscribe before looking at the counter: a PUBLISH after the GET is not missed.
        subscriber.send(Command{"SUBSCRIBE", keys.joined}, retry.reply_deadline());
        Reply confirmed = subscriber.receive(retry.reply_deadline());
        if (!confirmed) throw LinkFailure("no reply to SUBSCRIBE");
        (void)array_size(confirmed.get(), what);
      }
      Reply count = link->run1(Command{"GET", keys.unfinished}, retry.reply_deadline());
      if (integer_or(count.get(), 0, what) <= 0) return true;
      impl_->maybe_reap(state, *link, retry);
      // A message, or a second passing, or a lost server: look again.
      auto wait = std::min<Clock::duration>(std::chrono::seconds(1), impl_->options.lease / 2);
      Reply message = subscriber.receive(Deadline::after(wait));
      (void)message;
      return false;
    });
    if (done) return;
  }
}

}  // namespace mp::redis::detail
