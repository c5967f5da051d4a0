// src/redis/serve.cpp — mp::redis::serve(): a worker host of a Pool across machines.
//
// The host holds at most 4 x processes tasks at a time from the JoinableQueue `name`, taking as
// many as it has room for in one round trip (get_many: each task still leased and counted on
// its own), and runs each in a local mp::Pool (one per task_timeout asked for). The results
// (or a task's exception, RemoteError) that are there go to their submitters' result queues
// together (put_many: one round trip per submitter) before any of those tasks is acknowledged; the queue
// acknowledges the oldest item a consumer holds, so tasks are acknowledged (task_done) or
// failed (task_failed: the local worker died or was killed at the task's timeout) in the
// order they were taken, each after its result was sent. So a host that dies leaves its
// unacknowledged tasks to the queue, which hands them out again once its lease runs out and
// counts that as a failed delivery (pool_records.hpp). On SIGTERM / SIGINT the host stops
// taking tasks, sends what is done, kills its local workers and hands the rest back at once
// (the queue handle's leave: not counted as an attempt).
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "command.hpp"
#include "link.hpp"
#include "mp/pool.hpp"
#include "mp/redis/pool.hpp"
#include "mp/redis/queue.hpp"
#include "pool_records.hpp"
#include "reply.hpp"

namespace mp::redis::detail {

namespace {

// run_task(function, arguments, items): what a local worker process runs: one call, or a chunk of
// `items` calls (the first exception fails the chunk).
std::vector<std::byte> run_task(const std::string& function, const std::vector<std::byte>& arguments,
                                std::int32_t items) {
  TaskInvoker invoke = find_task(function);
  if (items == 0) return invoke(arguments);
  std::vector<std::vector<std::byte>> results;
  for (const auto& call : mp::decode<std::vector<std::vector<std::byte>>>(arguments))
    results.push_back(invoke(call));
  return mp::encode(results);
}

std::atomic<bool> g_stop_serving{false};  // set by the signal handler; read by serve()'s loop

void on_stop_signal(int) { g_stop_serving.store(true, std::memory_order_relaxed); }  // relaxed: a flag polled

// The task queue as a worker host uses it: with task_failed().
class TaskQueue : public JoinableQueue<TaskRecord> {
 public:
  using JoinableQueue<TaskRecord>::JoinableQueue;
  // TaskQueue::task_failed(dead_letter): see QueueCore::task_failed; true: out of attempts.
  bool task_failed(const TaskRecord& dead_letter) { return core_->task_failed(mp::encode(dead_letter)); }
  // TaskQueue::task_done_many(n): see QueueCore::task_done_many.
  void task_done_many(std::size_t n) { core_->task_done_many(n); }
  // TaskQueue::get_many(most, timeout): see QueueCore::get_many; Empty if none came.
  std::vector<TaskRecord> get_many(std::size_t most, std::chrono::milliseconds timeout) {
    auto items = core_->get_many(most, mp::detail::Deadline::after(timeout));
    if (items.empty()) throw mp::Empty("mp::redis queue \"" + core_->name() + "\" is empty");
    std::vector<TaskRecord> tasks;
    tasks.reserve(items.size());
    for (const auto& bytes : items) tasks.push_back(mp::decode<TaskRecord>(bytes));
    return tasks;
  }
};

// A submitter's result queue as a worker host uses it: results sent in pipelined batches.
class ResultQueue : public Queue<ResultRecord> {
 public:
  using Queue<ResultRecord>::Queue;
  void put_many(const std::vector<ResultRecord>& results) {
    std::vector<std::vector<std::byte>> items;
    items.reserve(results.size());
    for (const auto& r : results) items.push_back(mp::encode(r));
    (void)core_->put_many(items, mp::detail::Deadline::never());
  }
};

}  // namespace

}  // namespace mp::redis::detail

namespace mp::redis {

using detail::ResultQueue;
using detail::ResultRecord;
using detail::TaskQueue;
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
  queue_options.max_deliveries =
      PoolOptions{}.max_attempts;  // if this host makes the queue; a submitter sets its own
  TaskQueue tasks(url, name, 0, queue_options);
  // The submitters' result queues this host replied to lately (at most kReplyHandles: a host
  // outlives many submitters, and each handle holds connections).
  struct ReplyHandle {
    std::unique_ptr<ResultQueue> queue;
    std::uint64_t last_used = 0;
  };
  constexpr std::size_t kReplyHandles = 32;
  std::map<std::string, ReplyHandle> replies;
  std::uint64_t replies_made = 0;
  const impl::Endpoint endpoint = impl::parse_url(url);
  impl::Link probe(endpoint);  // keeps a pointer to endpoint
  // reply(task, ...): to the task's submitter, unless it is gone (its Pool deleted its result
  // queue): a result nobody will read is not left on the server.
  auto submitter_gone = [&](const std::string& reply_to) {
    try {
      impl::Reply exists = probe.run1(impl::Command{"EXISTS", "mpq:{" + reply_to + "}:meta"},
                                      impl::Deadline::after(std::chrono::seconds(10)));
      return impl::integer_of(exists.get(), "mp::redis::serve: looking for a submitter's result queue") == 0;
    } catch (const std::exception&) {
      return false;  // the server is unreachable: the result queue's own calls will say so
    }
  };
  // reply_handle(reply_to): the submitter's result queue, or nullptr if it is gone.
  auto reply_handle = [&](const std::string& reply_to) -> ResultQueue* {
    auto found = replies.find(reply_to);
    if (found == replies.end()) {
      if (submitter_gone(reply_to)) return nullptr;
      if (replies.size() >= kReplyHandles) {
        replies.erase(std::min_element(replies.begin(), replies.end(), [](const auto& a, const auto& b) {
          return a.second.last_used < b.second.last_used;
        }));
      }
      found = replies.emplace(reply_to, ReplyHandle{std::make_unique<ResultQueue>(url, reply_to), 0}).first;
    }
    found->second.last_used = ++replies_made;
    return found->second.queue.get();
  };
  auto reply = [&](const TaskRecord& task, Status status, std::vector<std::byte> payload, std::string type,
                   std::string message) {
    if (ResultQueue* queue = reply_handle(task.reply_to)) {
      queue->put(ResultRecord{task.id, static_cast<std::int32_t>(status), std::move(payload), std::move(type),
                              std::move(message)});
    }
  };
  // fail(task, ...): its local worker died (or was killed at its timeout): a failed delivery.
  // Handed out again, or, out of attempts, kept as a dead letter (saying why) and reported.
  auto fail = [&](const TaskRecord& task, Status status, const char* type, const std::string& what) {
    TaskRecord dead = task;
    dead.failure = static_cast<std::int32_t>(status);
    dead.failure_message = what + " (after " + std::to_string(task.max_attempts) +
                           " attempts; kept as a dead letter: mp-redis dead URL " + std::string(name) + ")";
    if (!tasks.task_failed(dead)) return;
    reply(task, status, {}, type, dead.failure_message);
  };
  {
    // One local pool per task_timeout the submitters ask for (usually one).
    std::map<std::int64_t, std::unique_ptr<mp::Pool>> locals;
    // Whichever way serve() leaves (SIGTERM, or an error it cannot ride out), the local workers
    // are killed: ~Pool alone would wait for tasks that may never end.
    struct TerminateLocals {
      std::map<std::int64_t, std::unique_ptr<mp::Pool>>& pools;
      ~TerminateLocals() {
        for (auto& [timeout, pool] : pools) {
          try {
            pool->terminate();
          } catch (...) {  // NOLINT(bugprone-empty-catch): ~Pool still stops it
          }
        }
      }
    } terminate_locals{locals};
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
    // How many tasks the host holds at once (taken in one round trip when there is room):
    // 4 per local process, as Celery's default prefetch.
    const std::size_t window = static_cast<std::size_t>(processes) * 4;
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
    // The results ready to go, by submitter: sent together (send_results), one round trip per
    // submitter, before any of their tasks is acknowledged.
    std::map<std::string, std::vector<ResultRecord>> outbox;
    // reply_early(r): a success or an exception goes to the submitter as soon as it is there,
    // whatever its place; only its acknowledgement waits for its turn.
    auto reply_early = [&](Running& r) {
      if (r.replied || !r.result.ready()) return;
      ResultRecord record;
      record.id = r.task.id;
      try {
        record.payload = r.result.get();
        record.status = static_cast<std::int32_t>(Status::ok);
      } catch (const mp::RemoteError& e) {
        record.status = static_cast<std::int32_t>(Status::remote_error);
        record.error_type = e.type_name();
        record.error_message = e.what();
      } catch (const mp::TaskTimeout&) {
        return;  // handed out again or failed: in its turn (finish_front)
      } catch (const mp::WorkerLost&) {
        return;
      }
      outbox[r.task.reply_to].push_back(std::move(record));
      r.replied = true;
    };
    auto send_results = [&] {
      for (auto& [reply_to, records] : outbox) {
        if (ResultQueue* queue = reply_handle(reply_to)) queue->put_many(records);
      }
      outbox.clear();
    };
    // finish_front(): the oldest task is done: acknowledged (after its reply), or, if its process
    // died or was killed at its timeout, handed out again or failed. In the order taken, because
    // the queue acknowledges the oldest item a consumer holds.
    auto finish_front = [&] {
      Running& r = running.front();
      try {
        if (r.replied) {
          tasks.task_done();
        } else {
          try {
            (void)r.result.get();  // not replied, so it throws one of these
          } catch (const mp::TaskTimeout& e) {
            fail(r.task, Status::task_timeout, "mp::TaskTimeout", e.what());
          } catch (const mp::WorkerLost& e) {
            fail(r.task, Status::worker_lost, "mp::WorkerLost", e.what());
          }
        }
      } catch (const mp::ValueError&) {
        // Refused: this host's lease ran out while it held the task (it was stopped or cut off
        // for longer than its lease), so the queue handed the task out again: it is no longer
        // this host's to acknowledge or fail. The host goes on under a new consumer identity.
      }
      running.pop_front();
    };
    // settle(): every result that is there goes out (all before any acknowledgement: a task is
    // acknowledged only once its result is stored); then the finished front tasks are settled.
    auto settle = [&] {
      std::size_t ready_front = 0;
      while (ready_front < running.size() && running[ready_front].result.ready()) ++ready_front;
      for (auto& r : running) reply_early(r);
      send_results();
      // The replied front tasks are acknowledged together; a failed one is settled on its own.
      std::size_t replied = 0;
      auto acknowledge = [&] {
        try {
          tasks.task_done_many(replied);
        } catch (const mp::ValueError&) {
          // Refused: the lease ran out while the host held them (see finish_front).
        }
        replied = 0;
      };
      for (; ready_front > 0; --ready_front) {
        if (running.front().replied) {
          ++replied;
          running.pop_front();
          continue;
        }
        acknowledge();
        finish_front();
      }
      acknowledge();
    };
    while (!detail::g_stop_serving.load(std::memory_order_relaxed)) {  // relaxed: a polled flag
      settle();
      if (running.size() >= window) {
        wait_for_a_finish(std::chrono::milliseconds(100));
        continue;
      }
      std::vector<TaskRecord> taken;
      try {
        taken = tasks.get_many(window - running.size(), running.empty() ? std::chrono::milliseconds(200)
                                                                        : std::chrono::milliseconds(0));
      } catch (const mp::Empty&) {
        if (!running.empty()) wait_for_a_finish(std::chrono::milliseconds(50));
        continue;
      } catch (const mp::ConnectionError&) {
        // A get whose short wait saw no reply (a stalled or restarting server): nothing was taken
        // that the queue will not give back. A host outlives outages: look again.
        wait_for_a_finish(std::chrono::milliseconds(100));
        continue;
      }
      for (auto& task : taken) {
        auto result = local_for(task.task_timeout_ms)
                          .apply_async(detail::run_task, task.function, task.arguments, task.items);
        result.add_done_callback([wakeup](const mp::AsyncResult<std::vector<std::byte>>&) {
          {
            std::lock_guard lock(wakeup->mutex);
            ++wakeup->finished;
          }
          wakeup->changed.notify_one();
        });
        running.push_back(Running{std::move(task), std::move(result)});
      }
    }
    // Stopping: what is done is delivered and acknowledged in order; the rest stays
    // unacknowledged and goes back to the queue at once when the handle leaves (below), or, if
    // this process dies first, when its lease runs out.
    settle();
    running.clear();
  }
  ::sigaction(SIGTERM, &old_term, nullptr);
  ::sigaction(SIGINT, &old_int, nullptr);
  return 0;
}

}  // namespace mp::redis
