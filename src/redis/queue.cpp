// src/redis/queue.cpp — QueueCore: mp::redis::Queue / JoinableQueue on bytes.
//
// Mapping (REDIS.md §2, keys in functions.cpp):
//   put      one function call: shutdown check, capacity check, LPUSH, INCR unfinished, and
//            the producer's sequence number, so that a retry after a lost reply is applied once.
//            Full: wait on the notfull hint list (BLPOP, <= 1 s) and try again.
//   get      JoinableQueue: LMOVE items -> my in-flight list (FIFO: right end), pipelined with
//            HGET shutdown (and the not-full hint for bounded queues): native commands only,
//            one round trip. Empty: BLMOVE the same way for <= 500 ms at a time (then look
//            again: shutdown, reaping). A process whose last get had to wait starts with the
//            BLMOVE. Queue: one function call removes and acknowledges at once ('take');
//            empty: BLMOVE into a private list pipelined with a function that acknowledges.
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
        producers(prefix + "producers"),
        acks(prefix + "acks"),
        joined(prefix + "joined") {}
  [[nodiscard]] std::string inflight(const std::string& cid) const { return prefix + "inflight:" + cid; }
  [[nodiscard]] std::string heartbeat(const std::string& cid) const { return prefix + "hb:" + cid; }
  std::string prefix, items, meta, unfinished, consumers, notfull, producers, acks, joined;
};

std::string new_consumer_id() {
  char host[64] = {};
  ::gethostname(host, sizeof host - 1);
  return std::string(host) + ":" + std::to_string(::getpid()) + ":" + random_hex(6);
}

// The lease of one consumer process, renewed by a thread with its own link.
class Heartbeat {
 public:
  Heartbeat(const Endpoint& endpoint, const Keys& keys, std::chrono::milliseconds lease, std::string cid,
            Clock::time_point leased_at)
      : link_(endpoint), keys_(keys), lease_(lease), cid_(std::move(cid)), renewed_at_(leased_at) {
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
  // Heartbeat::lease_surely_held(cid): cid's lease was renewed less than half a lease ago, so
  // its in-flight items cannot have been reaped yet (the key lives a full lease after renewal).
  bool lease_surely_held(const std::string& cid) {
    std::lock_guard lock(mutex_);
    return cid == cid_ && Clock::now() - renewed_at_ < lease_ / 2;
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
      auto sent_at = Clock::now();
      std::string next = renew(cid);
      lock.lock();
      if (!next.empty()) {
        cid_ = next;
        renewed_at_ = sent_at;
      }
    }
  }

  // Heartbeat::renew(cid): the cid now leased: cid itself, or a new one when the lease was
  // lost; "" when the server could not be reached (try again next tick).
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
      return {};  // try again next tick; the link reconnects then
    }
  }

  Link link_;
  const Keys& keys_;
  std::chrono::milliseconds lease_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;             // guarded by mutex_
  std::string cid_;               // guarded by mutex_
  Clock::time_point renewed_at_;  // guarded by mutex_: when the last successful renewal was sent
  std::thread thread_;
};

}  // namespace

// What one process keeps for a queue handle.
struct ProcessQueueState {
  ProcessQueueState(const Endpoint& endpoint) : pool(endpoint), put_prefix(random_hex(8)) {}
  ~ProcessQueueState() = default;

  void abandon_after_fork() noexcept {
    pool.close_after_fork();
    if (heartbeat) heartbeat->abandon_after_fork();
    keep_forever(std::shared_ptr<Heartbeat>(heartbeat.release()));
  }

  // ProcessQueueState::writer_id(): "<process prefix>:<thread number>": one sequential writer
  // (a thread's puts and task_dones are sequential), for the retry bookkeeping.
  std::string writer_id() {
    thread_local std::uint64_t thread_number = next_thread_number();
    return put_prefix + ":" + std::to_string(thread_number);
  }
  static std::uint64_t next_thread_number() {
    static std::atomic<std::uint64_t> counter{0};
    return counter.fetch_add(1, std::memory_order_relaxed);  // relaxed: only uniqueness matters
  }

  LinkPool pool;
  std::string put_prefix;
  std::atomic<std::uint64_t> sequence{0};    // relaxed: only uniqueness matters
  std::atomic<bool> last_get_waited{false};  // relaxed: a hint for where get() starts
  std::mutex mutex;                          // guards everything below
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
        described("queue \"" + name + "\""),
        per_process(std::make_shared<ProcessQueueState>(endpoint)) {}

  ProcessQueueState& local() {
    return per_process.get([this] { return std::make_shared<ProcessQueueState>(endpoint); });
  }
  Retry retry(Deadline deadline, const char* what) const {
    return Retry(endpoint, options.server_timeout, deadline, what, described);
  }

  std::string current_cid(ProcessQueueState& state, Link& link, Retry& retry);
  void maybe_reap(ProcessQueueState& state, Link& link, Retry& retry, bool force);
  void leave(ProcessQueueState& state) noexcept;

  // Impl::hint_if_was_full(link, length_after, retry): a get that left length_after items made
  // room in a full queue: wake one blocked producer (sent without waiting for the reply).
  void hint_if_was_full(Link& link, long long length_after, Retry& retry) {
    if (length_after + 1 < static_cast<long long>(maxsize)) return;
    link.run_later(Command{"LPUSH", keys.notfull, "1"}, retry.reply_deadline());
    link.run_later(Command{"LTRIM", keys.notfull, "0", "63"}, retry.reply_deadline());
  }

  Endpoint endpoint;
  std::string name;
  Keys keys;
  std::size_t maxsize;
  bool joinable;
  std::string signature;
  Options options;
  std::string described;  // queue "name", for messages
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
  auto sent_at = Clock::now();
  auto replies = link.run(reg, retry.reply_deadline());
  for (auto& r : replies) throw_if_error(r, "JoinableQueue::get(): registering the consumer");
  state.heartbeat = std::make_unique<Heartbeat>(endpoint, keys, options.lease, cid, sent_at);
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
    // Acknowledgements sent with run_later reach the server before the leave below hands
    // back what is still held (otherwise a done item could be handed out again).
    state.pool.settle_all(Deadline::after(std::chrono::seconds(1)));
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
  const std::string writer = state.writer_id();
  const std::string sequence = std::to_string(state.sequence.fetch_add(1, std::memory_order_relaxed));
  bool waited = false;
  auto put_command = [&] {
    Command put_cmd{"FCALL",         "mp1_put",      "5",         keys.items, keys.meta,
                    keys.unfinished, keys.producers, keys.notfull};
    put_cmd.add(item);
    put_cmd.add(writer).add(sequence).add(waited ? "1" : "0");
    return put_cmd;
  };
  auto retry = impl_->retry(deadline, "put()");
  auto link = state.pool.take();
  for (;;) {
    Command put_cmd = put_command();
    long long outcome = retry([&] {
      Reply reply = link->run1(put_cmd, retry.reply_deadline());
      throw_if_error(reply, "put() on queue \"" + impl_->name + "\"");
      return as_integer(reply);
    });
    if (outcome == 1) return true;
    if (outcome == -2) throw mp::ShutDown("mp::redis queue \"" + impl_->name + "\" was shut down");
    if (deadline.expired()) return false;
    waited = true;
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
  const bool joinable = impl_->joinable;
  const bool bounded = impl_->maxsize > 0;
  const char* mode = joinable ? "hold" : "take";
  auto retry = impl_->retry(deadline, "get()");
  auto link = state.pool.take();
  auto got = [&](const std::string& cid, const redisReply* reply, bool waited) {
    state.last_get_waited.store(waited, std::memory_order_relaxed);
    if (joinable) {
      std::lock_guard lock(state.mutex);
      state.held.push_back(cid);
    }
    return std::optional<std::vector<std::byte>>(as_bytes(reply));
  };
  auto held_under = [&](const std::string& cid) {
    std::lock_guard lock(state.mutex);
    return static_cast<long long>(std::count(state.held.begin(), state.held.end(), cid));
  };
  auto fail_shutdown = [&] {
    throw mp::ShutDown("mp::redis queue \"" + impl_->name + "\" was shut down and is empty");
  };
  bool wait_first = !deadline.expired() && state.last_get_waited.load(std::memory_order_relaxed);
  for (;;) {
    std::string cid;
    if (!wait_first) {
      // 1. Take what is there.
      enum class Outcome { item, empty, shut_down };
      Reply item;
      Outcome outcome = retry([&] {
        cid = impl_->current_cid(state, *link, retry);
        if (joinable && retry.failures() > 0) {
          // A reply lost with the connection may have delivered an item into my in-flight
          // list: more items there than I know of means the newest (left) one is mine.
          auto counts = link->run(std::vector<Command>{Command{"LLEN", keys.inflight(cid)},
                                                       Command{"LINDEX", keys.inflight(cid), "0"}},
                                  retry.reply_deadline());
          if (as_integer(counts[0]) > held_under(cid) && counts[1] && counts[1]->type == REDIS_REPLY_STRING) {
            item = std::move(counts[1]);
            return Outcome::item;
          }
        }
        if (joinable) {
          std::vector<Command> pipeline{Command{"LMOVE", keys.items, keys.inflight(cid), "RIGHT", "LEFT"},
                                        Command{"HGET", keys.meta, "shutdown"}};
          if (bounded) pipeline.push_back(Command{"LLEN", keys.items});
          auto replies = link->run(pipeline, retry.reply_deadline());
          for (auto& r : replies) throw_if_error(r, "get() on queue \"" + impl_->name + "\"");
          if (replies[0]->type == REDIS_REPLY_STRING) {
            if (bounded) impl_->hint_if_was_full(*link, as_integer(replies[2]), retry);
            item = std::move(replies[0]);
            return Outcome::item;
          }
          return replies[1]->type == REDIS_REPLY_NIL ? Outcome::empty : Outcome::shut_down;
        }
        Reply r = link->run1(Command{"FCALL", "mp1_get", "5", keys.items, keys.inflight(cid), keys.meta,
                                     keys.notfull, keys.unfinished, mode, keys.joined},
                             retry.reply_deadline());
        throw_if_error(r, "get() on queue \"" + impl_->name + "\"");
        if (r->type != REDIS_REPLY_ARRAY || r->elements < 1) {
          throw mp::Error("get() on queue \"" + impl_->name + "\": unexpected reply from the server");
        }
        long long status = r->element[0]->integer;
        if (status == 1 && r->elements == 2) {
          item = std::move(r);
          return Outcome::item;
        }
        return status == -2 ? Outcome::shut_down : Outcome::empty;
      });
      if (outcome == Outcome::item) {
        const redisReply* payload = item->type == REDIS_REPLY_ARRAY ? item->element[1] : item.get();
        return got(cid, payload, false);
      }
      if (outcome == Outcome::shut_down) fail_shutdown();
      if (deadline.expired()) return std::nullopt;
    }
    wait_first = false;
    // 2. Wait for an item: BLMOVE straight into the in-flight list, for at most 500 ms
    //    (then look again: shutdown, reaping), pipelined with the acknowledgement / hint.
    auto block = std::min<Clock::duration>(kBlockChunk, deadline.remaining());
    Reply moved = retry([&] {
      cid = impl_->current_cid(state, *link, retry);
      impl_->maybe_reap(state, *link, retry, false);
      std::vector<Command> pipeline{
          Command{"BLMOVE", keys.items, keys.inflight(cid), "RIGHT", "LEFT", seconds_arg(block)}};
      if (!joinable) {
        pipeline.push_back(Command{"FCALL", "mp1_after_blocking_get", "5", keys.inflight(cid), keys.meta,
                                   keys.notfull, keys.unfinished, keys.items, mode, keys.joined, "0"});
      } else if (bounded) {
        pipeline.push_back(Command{"LLEN", keys.items});
      }
      auto replies = link->run(pipeline, retry.reply_deadline(block));
      for (auto& r : replies) throw_if_error(r, "get() on queue \"" + impl_->name + "\"");
      if (joinable && bounded && replies[0]->type == REDIS_REPLY_STRING) {
        impl_->hint_if_was_full(*link, as_integer(replies[1]), retry);
      }
      return std::move(replies[0]);
    });
    if (moved && moved->type == REDIS_REPLY_STRING) return got(cid, moved.get(), true);
    state.last_get_waited.store(false, std::memory_order_relaxed);
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
  Command done{"FCALL", "mp1_task_done", "3", keys.inflight(cid), keys.unfinished, keys.acks, keys.joined};
  done.add(state.writer_id());
  done.add(static_cast<long long>(state.sequence.fetch_add(1, std::memory_order_relaxed)));
  if (std::string earlier = link->take_later_error(); !earlier.empty()) {
    throw mp::Error("mp::redis queue \"" + impl_->name + "\": an earlier task_done() failed: " + earlier);
  }
  bool safe_to_defer = false;
  {
    std::lock_guard lock(state.mutex);
    safe_to_defer = state.heartbeat && state.heartbeat->lease_surely_held(cid);
  }
  if (safe_to_defer) {
    // The lease is fresh, so the item is still in my in-flight list and the ack cannot be
    // refused: send it now (the server applies it at once, join() sees it) and read the
    // reply with this link's next command. A retry after a lost link re-sends it; the
    // acker's sequence number keeps it from applying twice.
    retry([&] {
      link->run_later(done, retry.reply_deadline());
      return 0;
    });
    return;
  }
  Reply reply = retry([&] { return link->run1(done, retry.reply_deadline()); });
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
