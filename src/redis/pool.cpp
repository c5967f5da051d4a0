// src/redis/pool.cpp — mp::redis::Pool, the submitter's side (serve() is in serve.cpp).
//
// A Pool puts one TaskRecord per task on the JoinableQueue `name` and waits on its own
// result queue `name.results.<submitter>` (receiver thread). The same thread watches, about
// every half lease while tasks are pending, for tasks of this submitter that the queue
// turned into dead letters (their attempts ran out while their hosts died, so no host could
// report it): it reaps expired hosts itself (so a task whose last host died fails even when
// no host is left) and reads the dead-letter list when its count moved. Records and the
// attempt counting: pool_records.hpp.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <iterator>
#include <map>
#include <mutex>
#include <thread>
#include <tuple>
#include <utility>

#include "command.hpp"
#include "link.hpp"
#include "mp/pool.hpp"
#include "mp/redis/pool.hpp"
#include "mp/redis/queue.hpp"
#include "pool_records.hpp"
#include "reply.hpp"

namespace mp::redis::detail {

// ---- TaskState ------------------------------------------------------------------

struct TaskState::Shared {
  std::mutex mutex;
  std::condition_variable changed;
  bool done = false;  // guarded by mutex, and so is everything below
  Status status = Status::ok;
  std::vector<std::byte> payload;
  std::string type, message;
  // Told when done (imap_unordered, done callbacks), with the index each asked for.
  std::vector<std::pair<std::shared_ptr<Listener>, std::size_t>> listeners;
};

TaskState::TaskState(std::uint32_t items) : shared_(std::make_shared<Shared>()), items_(items) {}

bool TaskState::finish(Status status, std::vector<std::byte> payload, std::string type, std::string message) {
  std::vector<std::pair<std::shared_ptr<Listener>, std::size_t>> listeners;
  {
    std::lock_guard lock(shared_->mutex);
    if (shared_->done) return false;
    shared_->done = true;
    shared_->status = status;
    shared_->payload = std::move(payload);
    shared_->type = std::move(type);
    shared_->message = std::move(message);
    listeners.swap(shared_->listeners);
  }
  shared_->changed.notify_all();
  for (auto& [listener, index] : listeners) listener->finished(index);
  return true;
}

void TaskState::listen(std::shared_ptr<Listener> listener, std::size_t index) {
  {
    std::lock_guard lock(shared_->mutex);
    if (!shared_->done) {  // finish() will tell it (done and listeners are decided under one lock)
      shared_->listeners.emplace_back(std::move(listener), index);
      return;
    }
  }
  listener->finished(index);
}

// ---- cancel_all, DoneCountdown ----------------------------------------------------------

bool cancel_all(const std::vector<std::shared_ptr<TaskState>>& states) {
  // The server is told first (the tasks it must not run, by the pool that submitted them): if it
  // cannot be, ConnectionError leaves every task as it was.
  std::vector<std::shared_ptr<TaskState>> open;
  for (const auto& state : states) {
    if (!state->ready()) open.push_back(state);
  }
  std::map<std::shared_ptr<TaskState::Canceller>, std::vector<std::string>> by_pool;
  for (const auto& state : open) {
    if (auto canceller = state->canceller().lock()) by_pool[canceller].push_back(state->id());
  }
  for (auto& [canceller, ids] : by_pool) canceller->cancel(ids);
  // A result that came meanwhile keeps its task finished as it was.
  for (const auto& state : open) {
    (void)state->finish(TaskState::Status::cancelled, {}, "", "mp::redis::Pool: the task was cancelled");
  }
  for (const auto& state : states) {
    if (state->cancelled()) return true;
  }
  return false;
}

void DoneCountdown::finished(std::size_t) noexcept {
  if (left_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;  // acq_rel: pairs with every other finish
  std::function<void()> done = std::move(done_);  // released after the call: it holds the result
  try {
    done();
  } catch (const std::exception& error) {
    std::fprintf(stderr, "mp::redis::Pool: a done callback raised (ignored): %s\n", error.what());
  } catch (...) {
    std::fprintf(stderr,
                 "mp::redis::Pool: a done callback raised (ignored): an exception not derived from "
                 "std::exception\n");
  }
}

// ---- FinishOrder ----------------------------------------------------------------------

void FinishOrder::finished(std::size_t index) noexcept {
  {
    std::lock_guard lock(mutex_);
    try {
      order_.push_back(index);
    } catch (...) {  // NOLINT(bugprone-empty-catch): reserved for every task: it cannot run out
    }
  }
  changed_.notify_all();
}

std::optional<std::size_t> FinishOrder::nth(std::size_t n, mp::detail::Deadline deadline) {
  std::unique_lock lock(mutex_);
  while (order_.size() <= n) {
    if (deadline.is_never()) {
      changed_.wait(lock);
    } else if (changed_.wait_until(lock, deadline.when()) == std::cv_status::timeout) {
      if (order_.size() <= n) return std::nullopt;
    }
  }
  return order_[n];
}

bool TaskState::wait(mp::detail::Deadline deadline) {
  std::unique_lock lock(shared_->mutex);
  while (!shared_->done) {
    if (deadline.is_never()) {
      shared_->changed.wait(lock);
    } else if (shared_->changed.wait_until(lock, deadline.when()) == std::cv_status::timeout) {
      return shared_->done;
    }
  }
  return true;
}

bool TaskState::ready() {
  std::lock_guard lock(shared_->mutex);
  return shared_->done;
}

bool TaskState::successful() {
  std::lock_guard lock(shared_->mutex);
  return shared_->done && shared_->status == Status::ok;
}

bool TaskState::cancelled() {
  std::lock_guard lock(shared_->mutex);
  return shared_->done && shared_->status == Status::cancelled;
}

std::vector<std::byte> TaskState::take() {
  std::lock_guard lock(shared_->mutex);
  switch (shared_->status) {
    case Status::ok: return shared_->payload;
    case Status::remote_error: throw mp::RemoteError(shared_->type, shared_->message);
    case Status::worker_lost: throw mp::WorkerLost(shared_->message);
    case Status::lost_server: throw mp::ConnectionError(shared_->message);
    case Status::task_timeout: throw mp::TaskTimeout(shared_->message);
    case Status::cancelled: throw mp::Cancelled(shared_->message);
  }
  throw mp::Error("mp::redis::Pool: a result with an unknown status");
}

// ---- PoolCore (submitter) -----------------------------------------------------------

// The task queue as a submitter uses it: with put_many (pipelined batches).
class TaskSender : public JoinableQueue<TaskRecord> {
 public:
  using JoinableQueue<TaskRecord>::JoinableQueue;
  void put_many(std::span<const std::vector<std::byte>> records) {
    (void)core_->put_many(records, mp::detail::Deadline::never());
  }
};

// The submitter's result queue: each item a host's batch of results (ResultBatch), taken in
// pipelined batches (get_many).
class ResultReceiver : public Queue<ResultBatch> {
 public:
  using Queue<ResultBatch>::Queue;
  // ResultReceiver::get_many(most, timeout): the results of up to `most` items (see
  // QueueCore::get_many) and how many items came; Empty if none came.
  std::pair<std::vector<ResultRecord>, std::size_t> get_many(std::size_t most,
                                                             std::chrono::milliseconds timeout) {
    auto items = core_->get_many(most, mp::detail::Deadline::after(timeout));
    if (items.empty()) throw mp::Empty("mp::redis queue \"" + core_->name() + "\" is empty");
    std::vector<ResultRecord> records;
    for (const auto& bytes : items) {
      auto batch = mp::decode<ResultBatch>(bytes);
      if (records.empty()) {
        records = std::move(batch.results);
      } else {
        std::move(batch.results.begin(), batch.results.end(), std::back_inserter(records));
      }
    }
    return {std::move(records), items.size()};
  }
};

struct PoolCore::Impl final : TaskState::Canceller {
  Impl(std::string_view url, std::string_view pool_name, PoolOptions opts)
      : endpoint(impl::parse_url(url)),
        name(pool_name),
        prefix("mpq:{" + name + "}:"),
        options(checked(opts, name)),
        submitter(impl::random_hex(8)),
        reply_to(name + ".results." + submitter),
        tasks(url, name, 0, queue_options(opts)),
        results(url, reply_to),
        watch(endpoint),
        cancel_link(endpoint) {
    // Attempts are the task queue's deliveries: its limit is this pool's max_attempts (the queue
    // may have been made by a worker host, or by a submitter with another limit). The dead
    // letters counted so far are not this pool's.
    try {
      std::vector<impl::Command> setup{impl::Command{"HSET", prefix + "meta", "max_deliveries"}.add(
                                           static_cast<long long>(opts.max_attempts)),
                                       impl::Command{"HGET", prefix + "stats", "dead"}};
      auto replies = watch.run(setup, impl::Deadline::after(std::chrono::seconds(10)));
      const std::string what = "mp::redis::Pool \"" + name + "\": setting max_attempts";
      impl::throw_if_error(replies[0], what);
      dead_seen = impl::integer_or(replies[1].get(), 0, what);
    } catch (const mp::Error&) {
      throw;
    } catch (const std::exception& e) {
      throw mp::ConnectionError("mp::redis::Pool \"" + name + "\": setting max_attempts: " + e.what());
    }
    receiver = std::thread([this] { receive(); });
  }
  static const PoolOptions& checked(const PoolOptions& opts, const std::string& name) {
    if (opts.max_attempts < 1)
      throw mp::ValueError("mp::redis::Pool \"" + name + "\": max_attempts must be >= 1");
    if (opts.task_timeout.count() < 0)
      throw mp::ValueError("mp::redis::Pool \"" + name + "\": task_timeout must be >= 0");
    return opts;
  }
  static Options queue_options(const PoolOptions& opts) {
    Options o;
    o.lease = opts.lease;
    o.max_deliveries = opts.max_attempts;
    return o;
  }

  void receive() {
    // How many result items (each a host's batch) one round trip asks for: twice what the last
    // one brought (1 to 16), so that a receiver keeping up does not send calls that find nothing.
    std::size_t batch = 1;
    while (!stop.load(std::memory_order_relaxed)) {  // relaxed: a flag polled every 200 ms
      watch_dead_letters();
      std::vector<ResultRecord> records;
      std::size_t items = 0;
      try {
        std::tie(records, items) = results.get_many(batch, std::chrono::milliseconds(200));
      } catch (const mp::Empty&) {
        lost_since.reset();  // the server answered
        continue;
      } catch (const mp::ConnectionError& e) {
        // One get's short wait saw no reply (a stall, a restart): the server counts as lost only
        // once it stayed away for the queue's server_timeout; then every pending task fails.
        auto now = std::chrono::steady_clock::now();
        if (!lost_since) lost_since = now;
        if (now - *lost_since >= Options{}.server_timeout) {
          fail_pending(TaskState::Status::lost_server, e.what());
          lost_since.reset();
        }
        continue;
      } catch (const mp::Error& e) {  // the server refuses: every pending task fails with it
        fail_pending(TaskState::Status::lost_server, e.what());
        continue;
      }
      lost_since.reset();
      batch = std::clamp<std::size_t>(items * 2, 1, 16);
      for (auto& record : records) {
        finish(record.id, static_cast<TaskState::Status>(record.status), std::move(record.payload),
               std::move(record.error_type), std::move(record.error_message));
      }
    }
  }

  // Impl::finish(id, ...): the task's outcome, if this submitter still waits for it (a
  // re-delivered task may report twice: the first report wins).
  void finish(const std::string& id, TaskState::Status status, std::vector<std::byte> payload,
              std::string type, std::string message) {
    std::shared_ptr<TaskState> state;
    {
      std::lock_guard lock(mutex);
      auto it = pending.find(id);
      if (it == pending.end()) return;
      state = it->second;
      pending.erase(it);
    }
    state->finish(status, std::move(payload), std::move(type), std::move(message));
    drained.notify_all();
  }

  // Impl::watch_dead_letters(): see the top of this file. Best effort: a lost server is
  // reported by the result queue.
  void watch_dead_letters() {
    auto now = std::chrono::steady_clock::now();
    if (now < next_watch) return;
    next_watch = now + std::max<std::chrono::milliseconds>(options.lease / 2, std::chrono::milliseconds(100));
    {
      std::lock_guard lock(mutex);
      if (pending.empty()) return;
    }
    const std::string what = "mp::redis::Pool \"" + name + "\": reading the dead letters";
    try {
      auto deadline = impl::Deadline::after(std::chrono::seconds(2));
      std::vector<impl::Command> look{
          impl::Command{"FCALL", "mp2_reap", "2", prefix + "consumers", prefix + "items", prefix},
          impl::Command{"HGET", prefix + "stats", "dead"}};
      auto replies = watch.run(look, deadline);
      impl::throw_if_error(replies[0], what);
      long long dead = impl::integer_or(replies[1].get(), 0, what);
      if (dead == dead_seen) return;
      impl::Reply list = watch.run1(impl::Command{"LRANGE", prefix + "dead", "0", "-1"}, deadline);
      for (std::size_t i = 0, n = impl::array_size(list.get(), what); i < n; ++i) {
        auto bytes = impl::bytes_of(impl::element_of(list.get(), i, what), what);
        TaskRecord task;
        try {
          task = mp::decode<TaskRecord>(bytes);
        } catch (const mp::CodecError&) {
          continue;  // not a task record: not ours
        }
        if (task.reply_to != reply_to) continue;
        if (task.failure != 0) {
          finish(task.id, static_cast<TaskState::Status>(task.failure), {}, "", task.failure_message);
        } else {
          finish(task.id, TaskState::Status::worker_lost, {}, "",
                 "mp::redis::Pool \"" + name + "\": task " + task.function + " failed on all " +
                     std::to_string(task.max_attempts) +
                     " attempts (the last: its worker host died or lost its lease while holding it); kept as "
                     "a dead letter: mp-redis dead URL " +
                     name);
        }
      }
      dead_seen = dead;                // only once read: a failed look is tried again next time
    } catch (const std::exception&) {  // NOLINT(bugprone-empty-catch): see above
    }
  }

  // Impl::cancel(ids): see TaskState::Canceller. mp2p_cancel (functions.cpp) removes the tasks
  // still waiting on the server and marks the rest for the hosts holding them; then their results
  // are no longer awaited (join() does not wait for them; a late one is dropped).
  void cancel(const std::vector<std::string>& ids) override {
    const std::string what = "mp::redis::Pool \"" + name + "\": cancel()";
    impl::Command call{"FCALL", "mp2p_cancel", "2", prefix + "items", prefix + "cancelled", prefix};
    for (const auto& id : ids) call.add(id);
    {
      std::lock_guard lock(cancel_mutex);
      // Sent again after a lost link: applied twice, it only marks tasks that are gone already.
      auto deadline = impl::Deadline::after(Options{}.server_timeout);
      for (;;) {
        try {
          impl::Reply reply = cancel_link.run1(call, deadline);
          impl::throw_if_error(reply, what);
          break;
        } catch (const impl::LinkFailure& e) {
          if (deadline.expired())
            throw mp::ConnectionError(what + ": the server did not answer: " + e.what());
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
      }
    }
    {
      std::lock_guard lock(mutex);
      for (const auto& id : ids) pending.erase(id);
    }
    drained.notify_all();
  }

  // Impl::fail_pending(status, why): every task still waiting fails with why.
  void fail_pending(TaskState::Status status, const std::string& why) {
    std::map<std::string, std::shared_ptr<TaskState>> failed;
    {
      std::lock_guard lock(mutex);
      failed.swap(pending);
    }
    for (auto& [id, state] : failed) state->finish(status, {}, "", why);
    drained.notify_all();
  }

  impl::Endpoint endpoint;
  std::string name;
  std::string prefix;  // of the task queue's keys
  PoolOptions options;
  std::string submitter, reply_to;
  TaskSender tasks;
  ResultReceiver results;
  impl::Link watch;  // the receiver thread's, for the dead-letter watch
  std::mutex cancel_mutex;
  impl::Link cancel_link;  // guarded by cancel_mutex: cancel() calls from any thread
  std::chrono::steady_clock::time_point next_watch{};               // receiver thread only
  std::optional<std::chrono::steady_clock::time_point> lost_since;  // receiver thread only
  long long dead_seen = 0;  // receiver thread only: stats.dead last read
  std::mutex mutex;
  std::map<std::string, std::shared_ptr<TaskState>> pending;  // guarded by mutex
  std::condition_variable drained;                            // notified when pending shrinks
  std::uint64_t next_id = 0;                                  // guarded by mutex
  bool closed = false;                                        // guarded by mutex
  std::atomic<bool> stop{false};
  std::thread receiver;
};

PoolCore::PoolCore(std::string_view url, std::string_view name, PoolOptions options)
    : impl_(std::make_shared<Impl>(url, name, options)) {}

PoolCore::~PoolCore() {
  impl_->stop.store(true, std::memory_order_relaxed);  // relaxed: the receiver polls it
  if (impl_->receiver.joinable()) impl_->receiver.join();
  // A result handle may outlive its Pool: it must not wait for a result nobody will receive.
  impl_->fail_pending(
      TaskState::Status::worker_lost,
      "mp::redis::Pool \"" + impl_->name +
          "\" was destroyed before this task's result came (the task may still run on a worker host)");
  // This submitter's result queue goes with it (a late result for it would only linger).
  try {
    impl::Link link(impl_->endpoint);
    const std::string prefix = "mpq:{" + impl_->reply_to + "}:";
    impl::Command remove{"DEL"};
    for (const char* key :
         {"items", "meta", "unfinished", "stats", "producers", "acks", "notfull", "consumers"}) {
      remove.add(prefix + key);
    }
    (void)link.run1(remove, impl::Deadline::after(std::chrono::seconds(1)));
  } catch (...) {  // NOLINT(bugprone-empty-catch): best effort; the keys are small
  }
}

void PoolCore::close() {
  std::lock_guard lock(impl_->mutex);
  impl_->closed = true;
}

void PoolCore::terminate() {
  close();
  impl_->fail_pending(
      TaskState::Status::worker_lost,
      "mp::redis::Pool \"" + impl_->name +
          "\": terminate() was called before this task's result came (the task may still run on a "
          "worker host)");
}

void PoolCore::join() {
  std::unique_lock lock(impl_->mutex);
  if (!impl_->closed) {
    throw mp::ValueError("mp::redis::Pool \"" + impl_->name + "\": join() before close() or terminate()");
  }
  impl_->drained.wait(lock, [&] { return impl_->pending.empty(); });
}

std::vector<std::shared_ptr<TaskState>> PoolCore::submit_many(const std::string& function,
                                                              std::vector<Call> calls) {
  std::vector<std::shared_ptr<TaskState>> states;
  std::vector<std::vector<std::byte>> records;
  std::vector<std::string> ids;
  states.reserve(calls.size());
  records.reserve(calls.size());
  ids.reserve(calls.size());
  {
    std::lock_guard lock(impl_->mutex);
    if (impl_->closed)
      throw mp::ValueError("mp::redis::Pool \"" + impl_->name + "\": submitted after close() or terminate()");
    for (const auto& call : calls) {
      ids.push_back(impl_->submitter + ":" + std::to_string(impl_->next_id++));
      states.push_back(std::make_shared<TaskState>(call.items));
      states.back()->bind(ids.back(), impl_);
      impl_->pending.emplace(ids.back(), states.back());
    }
  }
  try {
    for (std::size_t i = 0; i < calls.size(); ++i) {
      TaskRecord task;
      task.id = ids[i];
      task.function = function;
      task.arguments = std::move(calls[i].arguments);
      task.items = static_cast<std::int32_t>(calls[i].items);
      task.reply_to = impl_->reply_to;
      task.max_attempts = impl_->options.max_attempts;
      task.task_timeout_ms = impl_->options.task_timeout.count();
      records.push_back(mp::encode(task));
    }
    impl_->tasks.put_many(records);
  } catch (...) {
    std::lock_guard lock(impl_->mutex);
    for (const auto& id : ids) impl_->pending.erase(id);
    throw;
  }
  return states;
}

std::shared_ptr<TaskState> PoolCore::submit(std::string function, std::vector<std::byte> arguments,
                                            std::uint32_t items) {
  auto state = std::make_shared<TaskState>(items);
  std::string id;
  {
    std::lock_guard lock(impl_->mutex);
    if (impl_->closed)
      throw mp::ValueError("mp::redis::Pool \"" + impl_->name + "\": submitted after close() or terminate()");
    id = impl_->submitter + ":" + std::to_string(impl_->next_id++);
    state->bind(id, impl_);
    impl_->pending.emplace(id, state);
  }
  try {
    TaskRecord task;
    task.id = id;
    task.function = std::move(function);
    task.arguments = std::move(arguments);
    task.items = static_cast<std::int32_t>(items);
    task.reply_to = impl_->reply_to;
    task.max_attempts = impl_->options.max_attempts;
    task.task_timeout_ms = impl_->options.task_timeout.count();
    impl_->tasks.put(task);
  } catch (...) {
    std::lock_guard lock(impl_->mutex);
    impl_->pending.erase(id);
    throw;
  }
  return state;
}

}  // namespace mp::redis::detail
