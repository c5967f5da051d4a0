// src/redis/queue.cpp — QueueCore: mp::redis::Queue / JoinableQueue on bytes.
//
// Mapping (REDIS.md §2, keys in functions.cpp):
//   put      one function call: shutdown check, capacity check, LPUSH, INCR unfinished,
//            a "seen" marker so that a retry after a lost reply is applied once.
//            Full: wait on the notfull hint list (BLPOP, <= 1 s) and try again.
//   get      one function call takes from the right (FIFO). JoinableQueue ('hold') moves the
//            item into this consumer's in-flight list; Queue ('take') removes it and
//            acknowledges it at once. Empty: BLMOVE items -> inflight (<= 500 ms), pipelined
//            with a function that acknowledges ('take') or just hints the producers.
//   task_done RPOP my in-flight list + DECR unfinished (+ PUBLISH at 0); refused (NOLEASE)
//            when the item was handed out again after my lease ran out.
//   join     SUBSCRIBE to the joined channel first, then GET unfinished, wait <= 1 s, repeat.
// Liveness: a JoinableQueue consumer holds a lease hb:<cid> renewed every lease/3 by a
// background thread with its own connection; any consumer or joiner reaps (mp1_reap) at most
// every lease/2, handing the items of expired consumers back, oldest next in line.
#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "link.hpp"
#include "mp/errors.hpp"
#include "mp/redis/core.hpp"
#include "session.hpp"

namespace mp::redis::detail {

using namespace mp::redis::impl;  // NOLINT(google-build-using-namespace): this file implements impl's users

namespace {

constexpr auto kBlockChunk = std::chrono::milliseconds(500);

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

std::string seconds_arg(Clock::duration d) {
  double s = seconds(d);
  if (s < 0.001) s = 0.001;  // 0 would mean "forever" to BLMOVE / BLPOP
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", s);
  return buf;
}

long long as_integer(const Reply& reply) {
  if (!reply) return 0;
  if (reply->type == REDIS_REPLY_INTEGER) return reply->integer;
  if (reply->type == REDIS_REPLY_STRING) return std::stoll(std::string(reply->str, reply->len));
  return 0;
}

std::vector<std::byte> as_bytes(const redisReply* reply) {
  auto* begin = reinterpret_cast<const std::byte*>(reply->str);
  return {begin, begin + reply->len};
}

struct Keys {
  explicit Keys(const std::string& name)
      : prefix("mpq:{" + name + "}:"),
        items(prefix + "items"),
        meta(prefix + "meta"),
        unfinished(prefix + "unfinished"),
        consumers(prefix + "consumers"),
        notfull(prefix + "notfull"),
        joined(prefix + "joined") {}
  [[nodiscard]] std::string inflight(const std::string& cid) const { return prefix + "inflight:" + cid; }
  [[nodiscard]] std::string heartbeat(const std::string& cid) const { return prefix + "hb:" + cid; }
  [[nodiscard]] std::string seen(const std::string& id) const { return prefix + "seen:" + id; }
  std::string prefix, items, meta, unfinished, consumers, notfull, joined;
};

std::string new_consumer_id() {
  char host[64] = {};
  ::gethostname(host, sizeof host - 1);
  return std::string(host) + ":" + std::to_string(::getpid()) + ":" + random_hex(6);
}

// The lease of one consumer process, renewed by a thread with its own link.
class Heartbeat {
 public:
  Heartbeat(const Endpoint& endpoint, const Keys& keys, std::chrono::milliseconds lease, std::string cid)
      : link_(endpoint), keys_(keys), lease_(lease), cid_(std::move(cid)) {
    thread_ = std::thread([this] { loop(); });
  }
  Heartbeat(const Heartbeat&) = delete;
  Heartbeat& operator=(const Heartbeat&) = delete;
  ~Heartbeat() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  // Heartbeat::cid(): the consumer id the lease is held under now (it changes after a lost lease).
  std::string cid() {
    std::lock_guard lock(mutex_);
    return cid_;
  }
  // Heartbeat::abandon_after_fork(): in a child; the thread does not exist here. Never destroyed.
  void abandon_after_fork() noexcept {
    if (link_.fd() >= 0) ::close(link_.fd());  // only this process's copy of the socket
  }

 private:
  void loop() {
    std::unique_lock lock(mutex_);
    while (!stop_) {
      wake_.wait_for(lock, lease_ / 3, [this] { return stop_; });
      if (stop_) break;
      std::string cid = cid_;
      lock.unlock();
      std::string next = renew(cid);
      lock.lock();
      if (next != cid) cid_ = next;
    }
  }

  // Heartbeat::renew(cid): the cid still leased: cid itself, or a new one when the lease was lost.
  std::string renew(const std::string& cid) {
    try {
      auto deadline = Deadline::after(lease_);
      Command renew_cmd{"SET", keys_.heartbeat(cid), "1", "XX", "PX"};
      renew_cmd.add(static_cast<long long>(lease_.count()));
      Reply reply = link_.run1(renew_cmd, deadline);
      if (reply && reply->type != REDIS_REPLY_NIL) return cid;
      // Lost (expired, or the server lost it): what we held is (or will be) reaped and handed
      // out again, so continue under a new identity; late task_done for old items is refused.
      std::string fresh = new_consumer_id();
      std::vector<Command> reg{Command{"SADD", keys_.consumers, fresh},
                               Command{"SET", keys_.heartbeat(fresh), "1", "PX"}};
      reg[1].add(static_cast<long long>(lease_.count()));
      link_.run(reg, deadline);
      return fresh;
    } catch (const LinkFailure&) {
      return cid;  // try again next tick; the link reconnects then
    }
  }

  Link link_;
  const Keys& keys_;
  std::chrono::milliseconds lease_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;  // guarded by mutex_
  std::string cid_;    // guarded by mutex_
  std::thread thread_;
};

}  // namespace

// What one process keeps for a queue handle.
struct ProcessQueueState {
  ProcessQueueState(const Endpoint& endpoint) : pool(endpoint), put_prefix(random_hex(8)) {}
  ~ProcessQueueState() = default;

  void abandon_after_fork() noexcept {
    if (heartbeat) heartbeat->abandon_after_fork();
    keep_forever(std::shared_ptr<Heartbeat>(heartbeat.release()));
  }

  LinkPool pool;
  std::string put_prefix;
  std::atomic<std::uint64_t> put_counter{0};  // relaxed: only uniqueness matters
  std::mutex mutex;                           // guards everything below
  bool closed = false;
  std::string plain_cid;                 // Queue: the in-flight list a blocking get passes through
  std::unique_ptr<Heartbeat> heartbeat;  // JoinableQueue: started by the first get
  std::deque<std::string> held;          // cid each held item was taken under, oldest first
  Clock::time_point last_reap{};
};

struct QueueCore::Impl {
  Impl(std::string_view url, std::string_view queue_name, std::size_t max, bool is_joinable, std::string sig,
       Options opts)
      : endpoint(parse_url(url)),
        name(queue_name),
        keys(name),
        maxsize(max),
        joinable(is_joinable),
        signature(std::move(sig)),
        options(opts),
        per_process(std::make_shared<ProcessQueueState>(endpoint)) {}

  ProcessQueueState& local() {
    return per_process.get([this] { return std::make_shared<ProcessQueueState>(endpoint); });
  }
  Retry retry(Deadline deadline, const char* what) const {
    return Retry(endpoint, options.server_timeout, deadline, what + (" (queue \"" + name + "\")"));
  }

  std::string current_cid(ProcessQueueState& state, Link& link, Retry& retry);
  void maybe_reap(ProcessQueueState& state, Link& link, Retry& retry, bool force);
  void leave(ProcessQueueState& state) noexcept;

  Endpoint endpoint;
  std::string name;
  Keys keys;
  std::size_t maxsize;
  bool joinable;
  std::string signature;
  Options options;
  PerProcess<ProcessQueueState> per_process;
};

// Registers this process as a consumer (JoinableQueue) on its first get.
std::string QueueCore::Impl::current_cid(ProcessQueueState& state, Link& link, Retry& retry) {
  std::lock_guard lock(state.mutex);
  if (!joinable) {
    if (state.plain_cid.empty()) state.plain_cid = new_consumer_id();
    return state.plain_cid;
  }
  if (state.heartbeat) return state.heartbeat->cid();
  std::string cid = new_consumer_id();
  std::vector<Command> reg{Command{"SADD", keys.consumers, cid},
                           Command{"SET", keys.heartbeat(cid), "1", "PX"}};
  reg[1].add(static_cast<long long>(options.lease.count()));
  auto replies = link.run(reg, retry.reply_deadline());
  for (auto& r : replies) throw_if_error(r, "JoinableQueue::get(): registering the consumer");
  state.heartbeat = std::make_unique<Heartbeat>(endpoint, keys, options.lease, cid);
  return cid;
}

void QueueCore::Impl::maybe_reap(ProcessQueueState& state, Link& link, Retry& retry, bool force) {
  auto now = Clock::now();
  {
    std::lock_guard lock(state.mutex);
    auto period = std::max<Clock::duration>(options.lease / 2, std::chrono::milliseconds(100));
    if (!force && now - state.last_reap < period) return;
    state.last_reap = now;
  }
  Reply reply = link.run1(Command{"FCALL", "mp1_reap", "2", keys.consumers, keys.items, keys.prefix},
                          retry.reply_deadline());
  throw_if_error(reply, "reaping expired consumers of queue \"" + name + "\"");
}

void QueueCore::Impl::leave(ProcessQueueState& state) noexcept {
  std::string cid;
  {
    std::lock_guard lock(state.mutex);
    if (!state.heartbeat) return;
    cid = state.heartbeat->cid();
    state.heartbeat.reset();  // stops the renewals first
  }
  try {
    auto link = state.pool.take();
    link->run1(Command{"FCALL", "mp1_leave", "4", keys.consumers, keys.items, keys.inflight(cid),
                       keys.heartbeat(cid), cid},
               Deadline::after(std::chrono::seconds(1)));
  } catch (...) {  // NOLINT(bugprone-empty-catch): best effort; the lease runs out on its own
  }
}

QueueCore::QueueCore(std::string_view url, std::string_view name, std::size_t maxsize, bool joinable,
                     std::string signature, Options options) {
  if (name.empty()) throw mp::ValueError("mp::redis queue: the name must not be empty");
  if (options.lease < std::chrono::milliseconds(30)) {
    throw mp::ValueError("mp::redis queue \"" + std::string(name) + "\": the lease must be at least 30 ms");
  }
  impl_ = std::make_unique<Impl>(url, name, maxsize, joinable, std::move(signature), options);
  auto& state = impl_->local();
  auto retry = impl_->retry(Deadline::never(), "opening");
  auto link = state.pool.take();
  Reply reply = retry([&] {
    return link->run1(
        Command{"FCALL", "mp1_open", "1", impl_->keys.meta, impl_->signature, std::to_string(maxsize)},
        retry.reply_deadline());
  });
  throw_if_error(reply, "opening queue \"" + std::string(name) + "\"");
  if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
    throw mp::Error("opening queue \"" + std::string(name) + "\": unexpected reply from the server");
  }
  std::string stored_signature = reply_text(reply->element[0]);
  std::string stored_max = reply_text(reply->element[1]);
  if (stored_signature != impl_->signature) {
    throw mp::ValueError("mp::redis queue \"" + std::string(name) + "\" on " + impl_->endpoint.url +
                         " holds items of type \"" + stored_signature + "\", not \"" + impl_->signature +
                         "\"; use the same item type, or another name");
  }
  std::size_t existing = stored_max.empty() ? 0 : std::stoull(stored_max);
  if (maxsize != 0 && existing != maxsize) {
    throw mp::ValueError("mp::redis queue \"" + std::string(name) + "\" on " + impl_->endpoint.url +
                         " was created with maxsize " + std::to_string(existing) + ", not " +
                         std::to_string(maxsize) + "; pass the same maxsize, or 0 to adopt it");
  }
  impl_->maxsize = existing;
}

QueueCore::~QueueCore() {
  if (ProcessQueueState* state = impl_->per_process.owned()) impl_->leave(*state);
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
  std::string seen = keys.seen(state.put_prefix + "-" +
                               std::to_string(state.put_counter.fetch_add(1, std::memory_order_relaxed)));
  Command put_cmd{"FCALL", "mp1_put", "4", keys.items, keys.meta, keys.unfinished, seen};
  put_cmd.add(item);
  auto retry = impl_->retry(deadline, "put()");
  auto link = state.pool.take();
  for (;;) {
    long long outcome = retry([&] {
      Reply reply = link->run1(put_cmd, retry.reply_deadline());
      throw_if_error(reply, "put() on queue \"" + impl_->name + "\"");
      return as_integer(reply);
    });
    if (outcome == 1) return true;
    if (outcome == -2) throw mp::ShutDown("mp::redis queue \"" + impl_->name + "\" was shut down");
    if (deadline.expired()) return false;
    auto block = std::min<Clock::duration>(std::chrono::seconds(1), deadline.remaining());
    retry([&] {
      Reply reply =
          link->run1(Command{"BLPOP", keys.notfull, seconds_arg(block)}, retry.reply_deadline(block));
      throw_if_error(reply, "put() on queue \"" + impl_->name + "\"");
      return 0;
    });
  }
}

std::optional<std::vector<std::byte>> QueueCore::get(Deadline deadline) {
  auto& state = impl_->local();
  const auto& keys = impl_->keys;
  const char* mode = impl_->joinable ? "hold" : "take";
  auto retry = impl_->retry(deadline, "get()");
  auto link = state.pool.take();
  auto got = [&](const std::string& cid, std::vector<std::byte> item) {
    if (impl_->joinable) {
      std::lock_guard lock(state.mutex);
      state.held.push_back(cid);
    }
    return std::optional<std::vector<std::byte>>(std::move(item));
  };
  auto held_under = [&](const std::string& cid) {
    std::lock_guard lock(state.mutex);
    return static_cast<long long>(std::count(state.held.begin(), state.held.end(), cid));
  };
  for (;;) {
    // 1. Take what is there (after reaping expired consumers, at most every lease/2).
    std::string cid;
    Reply reply = retry([&] {
      cid = impl_->current_cid(state, *link, retry);
      if (impl_->joinable && retry.failures() > 0) {
        // A reply lost with the connection may have delivered an item into my in-flight
        // list: more items there than I know of means the newest (left) one is mine.
        auto counts = link->run(std::vector<Command>{Command{"LLEN", keys.inflight(cid)},
                                                     Command{"LINDEX", keys.inflight(cid), "0"}},
                                retry.reply_deadline());
        if (as_integer(counts[0]) > held_under(cid) && counts[1] && counts[1]->type == REDIS_REPLY_STRING) {
          return std::move(counts[1]);
        }
      }
      impl_->maybe_reap(state, *link, retry, false);
      Reply r = link->run1(Command{"FCALL", "mp1_get", "5", keys.items, keys.inflight(cid), keys.meta,
                                   keys.notfull, keys.unfinished, mode, keys.joined},
                           retry.reply_deadline());
      throw_if_error(r, "get() on queue \"" + impl_->name + "\"");
      return r;
    });
    if (reply->type == REDIS_REPLY_STRING) return got(cid, as_bytes(reply.get()));
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1) {
      throw mp::Error("get() on queue \"" + impl_->name + "\": unexpected reply from the server");
    }
    long long status = reply->element[0]->integer;
    if (status == 1 && reply->elements == 2) return got(cid, as_bytes(reply->element[1]));
    if (status == -2)
      throw mp::ShutDown("mp::redis queue \"" + impl_->name + "\" was shut down and is empty");
    if (deadline.expired()) return std::nullopt;
    // 2. Wait for an item: BLMOVE straight into the in-flight list, for at most 500 ms
    //    (then look again: shutdown, reaping), pipelined with the acknowledgement / hint.
    auto block = std::min<Clock::duration>(kBlockChunk, deadline.remaining());
    long long held_before = held_under(cid);
    Reply moved = retry([&] {
      std::vector<Command> pipeline{
          Command{"BLMOVE", keys.items, keys.inflight(cid), "RIGHT", "LEFT", seconds_arg(block)},
          Command{"FCALL", "mp1_after_blocking_get", "4", keys.inflight(cid), keys.meta, keys.notfull,
                  keys.unfinished, mode, keys.joined, std::to_string(held_before)}};
      auto replies = link->run(pipeline, retry.reply_deadline(block));
      throw_if_error(replies[0], "get() on queue \"" + impl_->name + "\"");
      throw_if_error(replies[1], "get() on queue \"" + impl_->name + "\"");
      return std::move(replies[0]);
    });
    if (moved && moved->type == REDIS_REPLY_STRING) return got(cid, as_bytes(moved.get()));
  }
}

std::size_t QueueCore::qsize() {
  auto& state = impl_->local();
  auto retry = impl_->retry(Deadline::never(), "qsize()");
  auto link = state.pool.take();
  return static_cast<std::size_t>(retry([&] {
    Reply reply = link->run1(Command{"LLEN", impl_->keys.items}, retry.reply_deadline());
    throw_if_error(reply, "qsize() of queue \"" + impl_->name + "\"");
    return as_integer(reply);
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
  retry([&] {
    Reply reply = link->run1(Command{"FCALL", "mp1_shutdown", "2", impl_->keys.meta, impl_->keys.notfull},
                             retry.reply_deadline());
    throw_if_error(reply, "shutdown() of queue \"" + impl_->name + "\"");
    return 0;
  });
}

void QueueCore::task_done() {
  auto& state = impl_->local();
  std::string cid;
  {
    std::lock_guard lock(state.mutex);
    if (state.held.empty()) {
      throw mp::ValueError("mp::redis queue \"" + impl_->name +
                           "\": task_done() called more times than this process got items");
    }
    cid = state.held.front();
    state.held.pop_front();
  }
  const auto& keys = impl_->keys;
  auto retry = impl_->retry(Deadline::never(), "task_done()");
  auto link = state.pool.take();
  std::string seen = keys.seen("done-" + state.put_prefix + "-" +
                               std::to_string(state.put_counter.fetch_add(1, std::memory_order_relaxed)));
  Reply reply = retry([&] {
    // Exactly once across retries: the ack marks `seen`, a retry finds it and stops.
    auto replies = link->run(std::vector<Command>{Command{"SET", seen, "1", "NX", "PX", "120000"},
                                                  Command{"FCALL", "mp1_task_done", "2", keys.inflight(cid),
                                                          keys.unfinished, keys.joined}},
                             retry.reply_deadline());
    if (replies[0]->type == REDIS_REPLY_NIL) return Reply{};  // an earlier try got through
    return std::move(replies[1]);
  });
  if (is_error(reply)) {
    std::string text = reply_text(reply.get());
    if (text.rfind("NOLEASE", 0) == 0) {
      throw mp::ValueError(
          "mp::redis queue \"" + impl_->name +
          "\": task_done() refused: this consumer's lease ran out while it held the item, so the "
          "item was handed out again (a longer Options::lease avoids this)");
    }
    throw_if_error(reply, "task_done() on queue \"" + impl_->name + "\"");
  }
}

void QueueCore::join() {
  auto& state = impl_->local();
  const auto& keys = impl_->keys;
  Link subscriber(impl_->endpoint);
  auto link = state.pool.take();
  for (;;) {
    auto retry = impl_->retry(Deadline::never(), "join()");
    bool done = retry([&] {
      if (!subscriber.connected()) {
        // Subscribe before looking at the counter: a PUBLISH after the GET is not missed.
        subscriber.send(Command{"SUBSCRIBE", keys.joined}, retry.reply_deadline());
        if (!subscriber.receive(retry.reply_deadline())) throw LinkFailure("no reply to SUBSCRIBE");
      }
      Reply count = link->run1(Command{"GET", keys.unfinished}, retry.reply_deadline());
      throw_if_error(count, "join() on queue \"" + impl_->name + "\"");
      if (as_integer(count) <= 0) return true;
      impl_->maybe_reap(state, *link, retry, false);
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

namespace mp::redis::impl {

void keep_forever(std::shared_ptr<void> object) {
  static auto* kept = new std::vector<std::shared_ptr<void>>();  // never freed: see session.hpp
  static std::mutex mutex;
  std::lock_guard lock(mutex);
  kept->push_back(std::move(object));
}

}  // namespace mp::redis::impl
