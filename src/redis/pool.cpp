// src/redis/pool.cpp — mp::redis::Pool (submitter) and serve() (worker host).
//
// Records (codec tuples):
//   task   (id, function, arguments, reply_to, attempt, max_attempts, task_timeout ms) on JoinableQueue
//   `name` result (id, status, payload, error type, error message) on Queue reply_to, one per submitter
// A worker host takes at most 2 x processes tasks at a time, runs them in a local mp::Pool and
// acknowledges them in the order it took them (task_done acknowledges the oldest held item),
// after the result was pushed: a host that dies leaves its unacknowledged tasks to be handed out
// again once its lease runs out.
#include <signal.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include "command.hpp"
#include "link.hpp"
#include "mp/pool.hpp"
#include "mp/redis/pool.hpp"
#include "mp/redis/queue.hpp"

namespace mp::redis::detail {

namespace {

using TaskRecord = std::tuple<std::string, std::string, std::vector<std::byte>, std::string, std::int32_t,
                              std::int32_t, std::int64_t>;
using ResultRecord = std::tuple<std::string, std::int32_t, std::vector<std::byte>, std::string, std::string>;

// run_task(function, arguments): what a local worker process runs.
std::vector<std::byte> run_task(const std::string& function, const std::vector<std::byte>& arguments) {
  return find_task(function)(arguments);
}

std::atomic<bool> g_stop_serving{false};  // set by the signal handler; read by serve()'s loop

void on_stop_signal(int) { g_stop_serving.store(true, std::memory_order_relaxed); }  // relaxed: a flag polled

}  // namespace

// ---- TaskState ------------------------------------------------------------------

struct TaskState::Shared {
  std::mutex mutex;
  std::condition_variable changed;
  bool done = false;  // guarded by mutex, and so is everything below
  Status status = Status::ok;
  std::vector<std::byte> payload;
  std::string type, message;
  std::shared_ptr<Listener> listener;  // told when done (imap_unordered)
  std::size_t index = 0;               // what the listener is told
};

TaskState::TaskState() : shared_(std::make_shared<Shared>()) {}

void TaskState::finish(Status status, std::vector<std::byte> payload, std::string type, std::string message) {
  std::shared_ptr<Listener> listener;
  std::size_t index = 0;
  {
    std::lock_guard lock(shared_->mutex);
    if (shared_->done) return;
    shared_->done = true;
    shared_->status = status;
    shared_->payload = std::move(payload);
    shared_->type = std::move(type);
    shared_->message = std::move(message);
    listener = std::move(shared_->listener);
    index = shared_->index;
  }
  shared_->changed.notify_all();
  if (listener) listener->finished(index);
}

void TaskState::listen(std::shared_ptr<Listener> listener, std::size_t index) {
  {
    std::lock_guard lock(shared_->mutex);
    if (!shared_->done) {  // finish() will tell it (done and listener are decided under one lock)
      shared_->listener = std::move(listener);
      shared_->index = index;
      return;
    }
  }
  listener->finished(index);
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

std::vector<std::byte> TaskState::take() {
  std::lock_guard lock(shared_->mutex);
  switch (shared_->status) {
    case Status::ok: return shared_->payload;
    case Status::remote_error: throw mp::RemoteError(shared_->type, shared_->message);
    case Status::worker_lost: throw mp::WorkerLost(shared_->message);
    case Status::lost_server: throw mp::ConnectionError(shared_->message);
    case Status::task_timeout: throw mp::TaskTimeout(shared_->message);
  }
  throw mp::Error("mp::redis::Pool: a result with an unknown status");
}

// ---- PoolCore (submitter) -----------------------------------------------------------

struct PoolCore::Impl {
  Impl(std::string_view url, std::string_view pool_name, PoolOptions opts)
      : endpoint(impl::parse_url(url)),
        name(pool_name),
        options(opts),
        submitter(impl::random_hex(8)),
        reply_to(name + ".results." + submitter),
        tasks(url, name, 0, queue_options(opts)),
        results(url, reply_to) {
    if (opts.max_attempts < 1)
      throw mp::ValueError("mp::redis::Pool \"" + name + "\": max_attempts must be >= 1");
    receiver = std::thread([this] { receive(); });
  }
  static Options queue_options(const PoolOptions& opts) {
    Options o;
    o.lease = opts.lease;
    return o;
  }

  void receive() {
    while (!stop.load(std::memory_order_relaxed)) {  // relaxed: a flag polled every 200 ms
      ResultRecord record;
      try {
        record = results.get(std::chrono::milliseconds(200));
      } catch (const mp::Empty&) {
        continue;
      } catch (const mp::Error& e) {  // the server is lost: every pending task fails with it
        std::map<std::string, std::shared_ptr<TaskState>> failed;
        {
          std::lock_guard lock(mutex);
          failed.swap(pending);
        }
        for (auto& [id, state] : failed) state->finish(TaskState::Status::lost_server, {}, "", e.what());
        drained.notify_all();
        continue;
      }
      std::shared_ptr<TaskState> state;
      {
        std::lock_guard lock(mutex);
        auto it = pending.find(std::get<0>(record));
        if (it == pending.end()) continue;  // a duplicate (at-least-once) or abandoned
        state = it->second;
        pending.erase(it);
      }
      state->finish(static_cast<TaskState::Status>(std::get<1>(record)), std::move(std::get<2>(record)),
                    std::move(std::get<3>(record)), std::move(std::get<4>(record)));
      drained.notify_all();
    }
  }

  // Impl::fail_pending(why): every task still waiting fails with WorkerLost(why).
  void fail_pending(const std::string& why) {
    std::map<std::string, std::shared_ptr<TaskState>> failed;
    {
      std::lock_guard lock(mutex);
      failed.swap(pending);
    }
    for (auto& [id, state] : failed) state->finish(TaskState::Status::worker_lost, {}, "", why);
    drained.notify_all();
  }

  impl::Endpoint endpoint;
  std::string name;
  PoolOptions options;
  std::string submitter, reply_to;
  JoinableQueue<TaskRecord> tasks;
  Queue<ResultRecord> results;
  std::mutex mutex;
  std::map<std::string, std::shared_ptr<TaskState>> pending;  // guarded by mutex
  std::condition_variable drained;                            // notified when pending shrinks
  std::uint64_t next_id = 0;                                  // guarded by mutex
  bool closed = false;                                        // guarded by mutex
  std::atomic<bool> stop{false};
  std::thread receiver;
};

PoolCore::PoolCore(std::string_view url, std::string_view name, PoolOptions options)
    : impl_(std::make_unique<Impl>(url, name, options)) {}

PoolCore::~PoolCore() {
  impl_->stop.store(true, std::memory_order_relaxed);  // relaxed: the receiver polls it
  if (impl_->receiver.joinable()) impl_->receiver.join();
  // A result handle may outlive its Pool: it must not wait for a result nobody will receive.
  impl_->fail_pending(
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

std::shared_ptr<TaskState> PoolCore::submit(std::string function, std::vector<std::byte> arguments) {
  auto state = std::make_shared<TaskState>();
  std::string id;
  {
    std::lock_guard lock(impl_->mutex);
    if (impl_->closed)
      throw mp::ValueError("mp::redis::Pool \"" + impl_->name + "\": submitted after close() or terminate()");
    id = impl_->submitter + ":" + std::to_string(impl_->next_id++);
    impl_->pending.emplace(id, state);
  }
  try {
    impl_->tasks.put(TaskRecord{id, std::move(function), std::move(arguments), impl_->reply_to, 1,
                                impl_->options.max_attempts, impl_->options.task_timeout.count()});
  } catch (...) {
    std::lock_guard lock(impl_->mutex);
    impl_->pending.erase(id);
    throw;
  }
  return state;
}

}  // namespace mp::redis::detail

namespace mp::redis {

using detail::ResultRecord;
using detail::TaskRecord;
using Status = detail::TaskState::Status;

int serve(std::string_view url, std::string_view name, ServeOptions options) {
  struct sigaction stop_action {};
  stop_action.sa_handler = detail::on_stop_signal;
  sigemptyset(&stop_action.sa_mask);
  struct sigaction old_term {
  }, old_int{};
  detail::g_stop_serving.store(false, std::memory_order_relaxed);
  ::sigaction(SIGTERM, &stop_action, &old_term);
  ::sigaction(SIGINT, &stop_action, &old_int);

  int processes =
      options.processes > 0 ? options.processes : static_cast<int>(std::thread::hardware_concurrency());
  if (processes < 1) processes = 1;
  Options queue_options;
  queue_options.lease = options.lease;
  JoinableQueue<TaskRecord> tasks(url, name, 0, queue_options);
  std::map<std::string, std::unique_ptr<Queue<ResultRecord>>> replies;
  auto reply = [&](const TaskRecord& task, Status status, std::vector<std::byte> payload, std::string type,
                   std::string message) {
    auto& queue = replies[std::get<3>(task)];
    if (!queue) queue = std::make_unique<Queue<ResultRecord>>(url, std::get<3>(task));
    queue->put(ResultRecord{std::get<0>(task), static_cast<std::int32_t>(status), std::move(payload),
                            std::move(type), std::move(message)});
  };
  // dead_letter(task): a task out of attempts is kept on the queue's dead-letter list (best effort:
  // the submitter hears WorkerLost either way).
  const impl::Endpoint endpoint = impl::parse_url(url);
  impl::Link admin(endpoint);
  const std::string prefix = "mpq:{" + std::string(name) + "}:";
  auto dead_letter = [&](const TaskRecord& task) {
    try {
      std::vector<impl::Command> commands{impl::Command{"LPUSH", prefix + "dead"}.add(mp::encode(task)),
                                          impl::Command{"HINCRBY", prefix + "stats", "dead", "1"}};
      (void)admin.run(commands, impl::Deadline::after(std::chrono::seconds(5)));
    } catch (...) {  // NOLINT(bugprone-empty-catch): best effort, see above
    }
  };
  // retry_or_fail(task, ...): its process died (or was killed at its timeout): again with
  // attempt + 1, or, out of attempts, a dead letter and the failure for the submitter.
  auto retry_or_fail = [&](const TaskRecord& task, Status status, const char* type, const std::string& what) {
    if (std::get<4>(task) < std::get<5>(task)) {
      TaskRecord again = task;
      ++std::get<4>(again);
      tasks.put(again);
      return;
    }
    dead_letter(task);
    reply(task, status, {}, type,
          what + " (after " + std::to_string(std::get<5>(task)) +
              " attempts; kept as a dead letter: mp-redis dead)");
  };
  {
    // One local pool per task_timeout the submitters ask for (usually one).
    std::map<std::int64_t, std::unique_ptr<mp::Pool>> locals;
    auto local_for = [&](std::int64_t timeout_ms) -> mp::Pool& {
      auto& pool = locals[timeout_ms];
      if (!pool) {
        mp::PoolOptions local_options;
        local_options.task_timeout = std::chrono::milliseconds(timeout_ms > 0 ? timeout_ms : 0);
        pool = std::make_unique<mp::Pool>(processes, local_options);
      }
      return *pool;
    };
    // The usual local pool starts before the queue's lease keeper thread exists, so its
    // zygote is forked from a process with one thread.
    (void)local_for(0);
    struct Running {
      TaskRecord task;
      mp::AsyncResult<std::vector<std::byte>> result;
      bool replied = false;  // its result (or RemoteError) went to the submitter already
    };
    std::deque<Running> running;
    const std::size_t window = static_cast<std::size_t>(processes) * 2;
    // Woken by the local pool's threads whenever a task finishes.
    struct Wakeup {
      std::mutex mutex;
      std::condition_variable changed;
      std::uint64_t finished = 0;  // guarded by mutex
    };
    auto wakeup = std::make_shared<Wakeup>();
    std::uint64_t finished_seen = 0;
    auto wait_for_a_finish = [&](std::chrono::milliseconds timeout) {
      std::unique_lock lock(wakeup->mutex);
      wakeup->changed.wait_for(lock, timeout, [&] { return wakeup->finished != finished_seen; });
      finished_seen = wakeup->finished;
    };
    // reply_early(r): a success or an exception goes to the submitter as soon as it is there,
    // whatever its place; only its acknowledgement waits for its turn.
    auto reply_early = [&](Running& r) {
      if (r.replied || !r.result.ready()) return;
      try {
        reply(r.task, Status::ok, r.result.get(), "", "");
      } catch (const mp::RemoteError& e) {
        reply(r.task, Status::remote_error, {}, e.type_name(), e.what());
      } catch (const mp::TaskTimeout&) {
        return;  // handed out again or failed: in its turn (finish_front)
      } catch (const mp::WorkerLost&) {
        return;
      }
      r.replied = true;
    };
    // finish_front(): the oldest task is done: acknowledged (after its reply), or, if its process
    // died or was killed at its timeout, handed out again or failed. In the order taken, because
    // the queue acknowledges the oldest item a consumer holds.
    auto finish_front = [&] {
      Running& r = running.front();
      if (!r.replied) {
        try {
          (void)r.result.get();
        } catch (const mp::TaskTimeout& e) {
          retry_or_fail(r.task, Status::task_timeout, "mp::TaskTimeout", e.what());
        } catch (const mp::WorkerLost& e) {
          retry_or_fail(r.task, Status::worker_lost, "mp::WorkerLost", e.what());
        }
      }
      tasks.task_done();
      running.pop_front();
    };
    auto settle = [&] {
      for (auto& r : running) reply_early(r);
      while (!running.empty() && running.front().result.ready()) finish_front();
    };
    while (!detail::g_stop_serving.load(std::memory_order_relaxed)) {  // relaxed: a polled flag
      settle();
      if (running.size() >= window) {
        wait_for_a_finish(std::chrono::milliseconds(100));
        continue;
      }
      TaskRecord task;
      try {
        task = tasks.get(running.empty() ? std::chrono::milliseconds(200) : std::chrono::milliseconds(0));
      } catch (const mp::Empty&) {
        if (!running.empty()) wait_for_a_finish(std::chrono::milliseconds(50));
        continue;
      }
      auto result =
          local_for(std::get<6>(task)).apply_async(detail::run_task, std::get<1>(task), std::get<2>(task));
      result.add_done_callback([wakeup](const mp::AsyncResult<std::vector<std::byte>>&) {
        {
          std::lock_guard lock(wakeup->mutex);
          ++wakeup->finished;
        }
        wakeup->changed.notify_one();
      });
      running.push_back(Running{std::move(task), std::move(result)});
    }
    // Stopping: what is done is delivered and acknowledged in order; the rest stays
    // unacknowledged and goes back to the queue at once when the handle leaves (below), or, if
    // this process dies first, when its lease runs out.
    settle();
    running.clear();
    for (auto& [timeout, pool] : locals) pool->terminate();
  }
  ::sigaction(SIGTERM, &old_term, nullptr);
  ::sigaction(SIGINT, &old_int, nullptr);
  return 0;
}

}  // namespace mp::redis
