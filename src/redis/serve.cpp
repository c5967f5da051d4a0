// src/redis/serve.cpp — mp::redis::serve(): a worker host of a Pool across machines.
//
// The host holds a window of tasks taken from the JoinableQueue `name` (as many as it has room
// for in one round trip: get_many, each task still leased and counted on its own) and runs them
// in a local mp::Pool (one per task_timeout asked for). Steps of its loop (class Host):
//
//   take()      get_many into `running_` (take order); start() hands them to the local pool.
//   start()     tasks of a function measured to be fast share one local job (a group of up to
//               kMaxGroup, about kGroupBudget of work): one local submission, one wake-up and one
//               result for many tasks. run_group() runs each member in its own try/catch, so an
//               exception stays its task's own (RemoteError). A task never measured yet, or a
//               slow one, is a local job of its own.
//   resolve()   the outcome of every finished local job goes to its tasks: results (and
//               RemoteErrors) into the outbox. A group whose process died or ran past the
//               timeout is run again member by member (not an attempt: the member at fault
//               then fails alone); a task alone in its job that died or timed out has failed.
//   settle()    the outbox goes out, one item per submitter (a ResultBatch: one put for all
//               its results), before any of those tasks is acknowledged; then the resolved
//               front tasks are acknowledged together (task_done_many) or failed
//               (task_failed: handed out again, or a dead letter reported to its submitter),
//               in the order taken, because the queue acknowledges the oldest item a consumer
//               holds.
//
// The window is 4 tasks per local process (Celery's default prefetch) until tasks are
// measured to be fast; then it holds about kWindowBudget of work per process (at most
// kMaxPerProcess tasks), so that round trips to the server overlap with the local work
// instead of idling the local processes. A host holding a fast task hoards at most a few
// milliseconds of work from other hosts.
//
// A host that dies leaves its unacknowledged tasks to the queue, which hands them out again
// once its lease runs out and counts that as a failed delivery (pool_records.hpp). On SIGTERM /
// SIGINT the host stops taking tasks, sends what is done, kills its local workers and hands the
// rest back at once (the queue handle's leave: not counted as an attempt).
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "cancel_watch.hpp"
#include "command.hpp"
#include "link.hpp"
#include "mp/pool.hpp"
#include "mp/redis/pool.hpp"
#include "mp/redis/queue.hpp"
#include "pool_records.hpp"
#include "reply.hpp"

namespace mp::redis::detail {

namespace {

using Status = TaskState::Status;
using Micros = std::chrono::microseconds;

// Tasks measured to run at most this long may share a local job.
constexpr Micros kGroupable{200};
// A group holds about this much work (by the members' measured times), at most kMaxGroup tasks.
constexpr Micros kGroupBudget{1000};
constexpr std::size_t kMaxGroup = 32;
// With fast tasks the window holds about this much work per local process, 4..kMaxPerProcess tasks.
constexpr Micros kWindowBudget{4000};
constexpr std::size_t kMinPerProcess = 4;
constexpr std::size_t kMaxPerProcess = 64;

std::atomic<bool> g_stop_serving{false};  // set by the signal handler; read by Host::serve()'s loop

void on_stop_signal(int) { g_stop_serving.store(true, std::memory_order_relaxed); }  // relaxed: a flag polled

// The task queue as a worker host uses it: with task_failed(), task_done_many(), get_many().
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

using ResultQueue = Queue<ResultBatch>;

// Running average of measured task times (microseconds); unknown until the first measurement.
class Average {
 public:
  void add(double micros) { value_ = value_ < 0 ? micros : value_ + (micros - value_) / 4; }
  [[nodiscard]] bool known() const { return value_ >= 0; }
  [[nodiscard]] double micros() const { return value_; }

 private:
  double value_ = -1;
};

class Host {
 public:
  Host(std::string_view url, std::string_view name, int processes, const ServeOptions& options)
      : url_(url),
        name_(name),
        processes_(static_cast<std::size_t>(processes)),
        tasks_(url, name, 0, queue_options(options)),
        endpoint_(impl::parse_url(url)),
        probe_(endpoint_),
        cancels_(endpoint_, "mpq:{" + std::string(name) + "}:") {
    // The usual local pool starts before the queue's lease keeper thread exists (the first
    // get starts it), so its zygote is forked from a process with one thread.
    (void)local_for(0);
  }
  Host(const Host&) = delete;
  Host& operator=(const Host&) = delete;
  // ~Host(): whichever way serve() leaves (SIGTERM, or an error it cannot ride out), the local
  // workers are killed: ~Pool alone would wait for tasks that may never end. Then the task
  // queue's handle leaves, handing back what was not acknowledged.
  ~Host() {
    running_.clear();
    for (auto& [timeout, pool] : locals_) {
      try {
        pool->terminate();
      } catch (...) {  // NOLINT(bugprone-empty-catch): ~Pool still stops it
      }
    }
  }

  // Host::serve(): the loop (see the top of this file) until SIGTERM / SIGINT; then what is done
  // is delivered and acknowledged in order, and the rest stays unacknowledged.
  void serve() {
    while (!g_stop_serving.load(std::memory_order_relaxed)) {  // relaxed: a polled flag
      hear_cancels();
      resolve();
      settle();
      if (running_.size() >= window()) {
        wait_for_a_finish(std::chrono::milliseconds(100));
        continue;
      }
      take();
    }
    resolve();
    settle();
  }

 private:
  struct Entry;
  // One local submission: the tasks it runs, in member order.
  struct Job {
    std::optional<mp::AsyncResult<std::vector<MemberOutcome>>> result;
    std::vector<Entry*> members;  // point into running_ (a deque: stable while they are held)
  };
  // replied: its result (or RemoteError) is in the outbox or sent; failed: its process died or it
  // ran past its timeout (an attempt); cancelled: dropped unstarted or stopped (acknowledged).
  enum class Resolution { pending, replied, failed, cancelled };
  // One task the host holds, in take order.
  struct Entry {
    TaskRecord task;
    std::shared_ptr<Job> job;
    Resolution resolution = Resolution::pending;
    bool cancel_asked = false;    // marked cancelled while its job was out: cancelled when the job ends
    Status failure = Status::ok;  // failed: worker_lost or task_timeout, and why
    std::string failure_type, failure_message;
  };
  // Woken by the local pool's threads whenever a local job finishes.
  struct Wakeup {
    std::mutex mutex;
    std::condition_variable changed;
    std::uint64_t finished = 0;  // guarded by mutex
  };

  static Options queue_options(const ServeOptions& options) {
    Options o;
    o.lease = options.lease;
    o.max_deliveries = PoolOptions{}.max_attempts;  // if this host makes the queue; a submitter sets its own
    return o;
  }

  mp::Pool& local_for(std::int64_t timeout_ms) {
    auto& pool = locals_[timeout_ms];
    if (!pool) {
      mp::PoolOptions local_options;
      local_options.task_timeout = std::chrono::milliseconds(timeout_ms > 0 ? timeout_ms : 0);
      pool = std::make_unique<mp::Pool>(static_cast<int>(processes_), local_options);
    }
    return *pool;
  }

  // Host::window(): how many tasks the host holds at once (see the top of this file).
  [[nodiscard]] std::size_t window() const {
    std::size_t per_process = kMinPerProcess;
    if (recent_.known() && recent_.micros() <= static_cast<double>(kGroupable.count())) {
      per_process = static_cast<std::size_t>(static_cast<double>(kWindowBudget.count()) /
                                             std::max(recent_.micros(), 1.0));
      per_process = std::clamp(per_process, kMinPerProcess, kMaxPerProcess);
    }
    return processes_ * per_process;
  }

  // Host::group_limit(task): how many tasks like this one may share a local job.
  [[nodiscard]] std::size_t group_limit(const TaskRecord& task) const {
    auto found = measured_.find(task.function);
    if (found == measured_.end() || found->second.micros() > static_cast<double>(kGroupable.count()))
      return 1;
    const double each = std::max(found->second.micros(), 1.0);
    auto limit = static_cast<std::size_t>(static_cast<double>(kGroupBudget.count()) / each);
    // With a timeout, a group stays well inside it (else it would be run again one by one).
    if (task.task_timeout_ms > 0)
      limit =
          std::min(limit, static_cast<std::size_t>(static_cast<double>(task.task_timeout_ms) * 100.0 / each));
    return std::clamp<std::size_t>(limit, 1, kMaxGroup);
  }

  // Host::take(): as many tasks as the window has room for, started at once.
  void take() {
    std::vector<TaskRecord> taken;
    try {
      taken = tasks_.get_many(window() - running_.size(), running_.empty() ? std::chrono::milliseconds(200)
                                                                           : std::chrono::milliseconds(0));
    } catch (const mp::Empty&) {
      if (!running_.empty()) wait_for_a_finish(std::chrono::milliseconds(50));
      return;
    } catch (const mp::ConnectionError&) {
      // A get whose short wait saw no reply (a stalled or restarting server): nothing was taken
      // that the queue will not give back. A host outlives outages: look again.
      wait_for_a_finish(std::chrono::milliseconds(100));
      return;
    }
    hear_cancels();  // a cancel published just before these were taken is dropped at intake
    start(std::move(taken));
  }

  // Host::start(taken): into running_, in groups of consecutive tasks of one fast function and
  // timeout, each group at most a fair share of what came (so every local process gets some).
  void start(std::vector<TaskRecord> taken) {
    const std::size_t first = running_.size();
    for (auto& task : taken) {
      running_.emplace_back();
      running_.back().task = std::move(task);
      // Cancelled before it came here (say, handed out again after its host died): never run.
      if (cancelled_ids_.count(running_.back().task.id) != 0)
        running_.back().resolution = Resolution::cancelled;
    }
    const std::size_t share = std::max<std::size_t>(1, (taken.size() + processes_ - 1) / processes_);
    for (std::size_t i = first; i < running_.size();) {
      if (running_[i].resolution == Resolution::cancelled) {
        ++i;
        continue;
      }
      const TaskRecord& lead = running_[i].task;
      const std::size_t limit = std::min(share, group_limit(lead));
      std::vector<Entry*> group{&running_[i]};
      std::size_t next = i + 1;
      while (next < running_.size() && group.size() < limit &&
             running_[next].task.function == lead.function &&
             running_[next].task.task_timeout_ms == lead.task_timeout_ms) {
        group.push_back(&running_[next++]);
      }
      submit(std::move(group));
      i = next;
    }
  }

  // Host::submit(group): one local job for the group's tasks (all of one task_timeout).
  void submit(std::vector<Entry*> group) {
    auto job = std::make_shared<Job>();
    std::vector<GroupMember> members;
    members.reserve(group.size());
    for (Entry* entry : group) {
      members.push_back(GroupMember{entry->task.function, entry->task.arguments, entry->task.items});
      entry->job = job;
    }
    job->members = std::move(group);
    job->result.emplace(
        local_for(job->members.front()->task.task_timeout_ms).apply_async(run_group, members));
    job->result->add_done_callback([wakeup = wakeup_](const mp::AsyncResult<std::vector<MemberOutcome>>&) {
      {
        std::lock_guard lock(wakeup->mutex);
        ++wakeup->finished;
      }
      wakeup->changed.notify_one();
    });
  }

  void wait_for_a_finish(std::chrono::milliseconds timeout) {
    std::unique_lock lock(wakeup_->mutex);
    wakeup_->changed.wait_for(lock, timeout, [&] { return wakeup_->finished != finished_seen_; });
    finished_seen_ = wakeup_->finished;
  }

  // Host::resolve(): every finished local job's outcome goes to its tasks.
  void resolve() {
    for (auto& entry : running_) {
      if (entry.resolution == Resolution::pending && entry.job->result->ready()) {
        std::shared_ptr<Job> job = entry.job;  // its members' own pointers change if it is run again
        resolve_job(*job);
      }
    }
  }

  void resolve_job(Job& job) {
    std::vector<MemberOutcome> outcomes;
    try {
      outcomes = job.result->get();
    } catch (const mp::TaskTimeout& e) {
      return job_failed(job, Status::task_timeout, "mp::TaskTimeout", e.what());
    } catch (const mp::WorkerLost& e) {
      return job_failed(job, Status::worker_lost, "mp::WorkerLost", e.what());
    } catch (const mp::Cancelled& e) {  // hear_cancels() stopped it for a member
      return job_failed(job, Status::cancelled, "mp::Cancelled", e.what());
    } catch (const mp::RemoteError& e) {  // the group itself did not travel: each member fails with it
      outcomes.resize(job.members.size());
      for (auto& outcome : outcomes) {
        outcome.status = static_cast<std::int32_t>(Status::remote_error);
        outcome.error_type = e.type_name();
        outcome.error_message = e.what();
      }
    }
    for (std::size_t i = 0; i < job.members.size() && i < outcomes.size(); ++i) {
      Entry& entry = *job.members[i];
      auto& outcome = outcomes[i];
      measured_[entry.task.function].add(static_cast<double>(outcome.micros));
      recent_.add(static_cast<double>(outcome.micros));
      outbox_[entry.task.reply_to].results.push_back(
          ResultRecord{entry.task.id, outcome.status, std::move(outcome.payload),
                       std::move(outcome.error_type), std::move(outcome.error_message)});
      entry.resolution = Resolution::replied;
    }
  }

  // Host::job_failed(job, ...): its process died or it ran past its timeout. Alone in its job,
  // the task failed (an attempt); in a group, every member runs again on its own.
  void job_failed(Job& job, Status status, const char* type, const std::string& what) {
    const bool alone = job.members.size() == 1;
    // Members marked cancelled are done with (a cancel for one member stops its whole group).
    std::vector<Entry*> left;
    for (Entry* entry : job.members) {
      if (entry->cancel_asked) {
        entry->resolution = Resolution::cancelled;
      } else {
        left.push_back(entry);
      }
    }
    if (left.empty()) return;
    if (!alone || status == Status::cancelled) {
      // Which member was at fault is unknown (or it was a cancelled group-mate): each runs again
      // on its own, not counted as an attempt, so the one at fault then fails alone.
      for (Entry* entry : left) {
        if (status != Status::cancelled) measured_.erase(entry->task.function);  // measured again, alone
        submit({entry});
      }
      return;
    }
    Entry& entry = *left.front();
    entry.resolution = Resolution::failed;
    entry.failure = status;
    entry.failure_type = type;
    entry.failure_message = what;
    if (status == Status::task_timeout) {  // slow after all: no more grouping or a wide window for it
      measured_[entry.task.function].add(static_cast<double>(entry.task.task_timeout_ms) * 1000.0);
      recent_.add(static_cast<double>(entry.task.task_timeout_ms) * 1000.0);
    }
  }

  // Host::settle(): results out, then the resolved front tasks acknowledged or failed, in order.
  void settle() {
    send_results();
    std::size_t replied = 0;
    auto acknowledge = [&] {
      if (replied == 0) return;
      try {
        tasks_.task_done_many(replied);
      } catch (const mp::ValueError&) {
        // Refused: this host's lease ran out while it held them (it was stopped or cut off for
        // longer than its lease), so the queue handed them out again: they are no longer this
        // host's to acknowledge. The host goes on under a new consumer identity.
      }
      replied = 0;
    };
    bool failures = false;
    std::vector<std::string> dropped;
    while (!running_.empty() && running_.front().resolution != Resolution::pending) {
      Entry& entry = running_.front();
      if (entry.resolution == Resolution::replied) {
        ++replied;
        if (cancelled_ids_.erase(entry.task.id) > 0) {  // it finished before the cancel reached it
          dropped.push_back(std::move(entry.task.id));  // its mark goes too
        }
      } else if (entry.resolution == Resolution::cancelled) {
        ++replied;  // acknowledged, not retried
        cancelled_ids_.erase(entry.task.id);
        dropped.push_back(std::move(entry.task.id));
      } else {
        acknowledge();
        fail(entry);
        failures = true;
      }
      running_.pop_front();
    }
    acknowledge();
    if (failures) send_results();  // dead letters reported
    cancels_.forget(dropped);
  }

  // Host::hear_cancels(): tasks marked cancelled (cancel_watch.hpp). One this host holds is
  // dropped if its local job has not started, or its local worker process is killed (the local
  // pool replaces it); a group is stopped whole, and its other members run again one by one.
  void hear_cancels() {
    auto ids = cancels_.poll();
    if (ids.empty()) return;
    for (auto& id : ids) cancelled_ids_.insert(std::move(id));
    std::vector<std::string> stopping;
    for (auto& entry : running_) {
      if (entry.resolution != Resolution::pending || entry.cancel_asked ||
          cancelled_ids_.count(entry.task.id) == 0)
        continue;
      entry.cancel_asked = true;
      stopping.push_back(entry.task.id);
      (void)entry.job->result->cancel();  // false: it finished first; resolve() takes its outcome
    }
    cancels_.stopping(stopping);
  }

  // Host::fail(entry): its local worker died (or was killed at its timeout): a failed delivery.
  // Handed out again, or, out of attempts, kept as a dead letter (saying why) and reported.
  void fail(const Entry& entry) {
    TaskRecord dead = entry.task;
    dead.failure = static_cast<std::int32_t>(entry.failure);
    dead.failure_message = entry.failure_message + " (after " + std::to_string(entry.task.max_attempts) +
                           " attempts; kept as a dead letter: mp-redis dead URL " + name_ + ")";
    try {
      if (!tasks_.task_failed(dead)) return;
    } catch (const mp::ValueError&) {
      return;  // refused: the lease ran out while the host held it (see settle)
    }
    outbox_[entry.task.reply_to].results.push_back(ResultRecord{entry.task.id,
                                                                static_cast<std::int32_t>(entry.failure),
                                                                {},
                                                                entry.failure_type,
                                                                dead.failure_message});
  }

  // Host::send_results(): one ResultBatch per submitter, unless it is gone (its Pool deleted its
  // result queue): a result nobody will read is not left on the server.
  void send_results() {
    for (auto& [reply_to, batch] : outbox_) {
      if (ResultQueue* queue = reply_handle(reply_to)) queue->put(batch);
    }
    outbox_.clear();
  }

  bool submitter_gone(const std::string& reply_to) {
    try {
      impl::Reply exists = probe_.run1(impl::Command{"EXISTS", "mpq:{" + reply_to + "}:meta"},
                                       impl::Deadline::after(std::chrono::seconds(10)));
      return impl::integer_of(exists.get(), "mp::redis::serve: looking for a submitter's result queue") == 0;
    } catch (const std::exception&) {
      return false;  // the server is unreachable: the result queue's own calls will say so
    }
  }

  // Host::reply_handle(reply_to): the submitter's result queue, or nullptr if it is gone. The
  // handles of the submitters replied to lately are kept (at most kReplyHandles: a host outlives
  // many submitters, and each handle holds connections).
  ResultQueue* reply_handle(const std::string& reply_to) {
    constexpr std::size_t kReplyHandles = 32;
    auto found = replies_.find(reply_to);
    if (found == replies_.end()) {
      if (submitter_gone(reply_to)) return nullptr;
      if (replies_.size() >= kReplyHandles) {
        replies_.erase(std::min_element(replies_.begin(), replies_.end(), [](const auto& a, const auto& b) {
          return a.second.last_used < b.second.last_used;
        }));
      }
      found = replies_.emplace(reply_to, ReplyHandle{std::make_unique<ResultQueue>(url_, reply_to), 0}).first;
    }
    found->second.last_used = ++replies_made_;
    return found->second.queue.get();
  }

  struct ReplyHandle {
    std::unique_ptr<ResultQueue> queue;
    std::uint64_t last_used = 0;
  };

  std::string url_, name_;
  std::size_t processes_;
  TaskQueue tasks_;
  impl::Endpoint endpoint_;
  impl::Link probe_;  // keeps a pointer to endpoint_
  impl::CancelWatch cancels_;
  std::unordered_set<std::string> cancelled_ids_;  // marked on the server and not dropped here yet
  std::map<std::string, ReplyHandle> replies_;
  std::uint64_t replies_made_ = 0;
  std::map<std::int64_t, std::unique_ptr<mp::Pool>> locals_;  // one local pool per task_timeout asked for
  std::deque<Entry> running_;
  std::map<std::string, ResultBatch> outbox_;          // results ready to go, by submitter
  std::unordered_map<std::string, Average> measured_;  // by function
  Average recent_;                                     // every task
  std::shared_ptr<Wakeup> wakeup_ = std::make_shared<Wakeup>();
  std::uint64_t finished_seen_ = 0;
};

}  // namespace

}  // namespace mp::redis::detail

namespace mp::redis {

int serve(std::string_view url, std::string_view name, ServeOptions options) {
  struct sigaction stop_action {};
  stop_action.sa_handler = detail::on_stop_signal;
  sigemptyset(&stop_action.sa_mask);
  struct sigaction old_term {
  }, old_int{};
  detail::g_stop_serving.store(false, std::memory_order_relaxed);
  ::sigaction(SIGTERM, &stop_action, &old_term);
  ::sigaction(SIGINT, &stop_action, &old_int);
  struct RestoreSignals {
    struct sigaction term, interrupt;
    ~RestoreSignals() {
      ::sigaction(SIGTERM, &term, nullptr);
      ::sigaction(SIGINT, &interrupt, nullptr);
    }
  } restore{old_term, old_int};

  int processes =
      options.processes > 0 ? options.processes : static_cast<int>(std::thread::hardware_concurrency());
  if (processes < 1) processes = 1;
  detail::Host host(url, name, processes, options);
  host.serve();
  return 0;
}

}  // namespace mp::redis
