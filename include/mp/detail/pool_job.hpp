// mp/detail/pool_job.hpp — the state one Pool submission (a "job") shares
// between the pool's supervisor thread and the threads waiting for it.
//
// A job is split into chunks (map: ceil(len / chunksize) chunks; apply: one).
// The supervisor stores each chunk's outcome exactly once: the raw result
// bytes (decoded later, by the waiting thread, outside every lock) or an
// exception (RemoteError, WorkerLost, ...). AsyncResult and IMapIterator read
// the outcomes; neither ever decodes under the job's lock.
//
// State table of one chunk (asserted in complete/fail: a chunk leaves pending once):
//   pending --complete_chunk--> done
//   pending --fail_chunk------> failed
//
// The job as a whole is ready when every chunk is done, or at the first failed
// chunk (as CPython's MapResult: a map raises the first error without waiting
// for the rest), or when it is cancelled (every pending chunk fails with
// Cancelled). Done callbacks run once, right after the job became ready (or at
// once, when added to a ready job).
//
// Safety: every member may be called from any thread; a mutex guards the state.
// Visibility: everything the supervisor stored for a chunk (its bytes) is
// visible to a thread that saw the chunk leave `pending` (mutex hand-off).
// Lifetime: shared_ptr-owned by the pool (while chunks are queued or running)
// and by every AsyncResult / IMapIterator handle.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "mp/detail/clock.hpp"
#include "mp/detail/event_count.hpp"
#include "mp/detail/export.hpp"
#include "mp/errors.hpp"

namespace mp::detail {

// TaskFailure: why a chunk failed, as plain immutable data. Each waiting
// thread throws a fresh exception made from it (raise()), so no exception
// object is ever shared between threads (FailurePtr's reference count
// lives inside libstdc++, where ThreadSanitizer cannot see it).
struct TaskFailure {
  enum class Kind : std::uint8_t { remote_error, worker_lost, timed_out, cancelled };
  Kind kind;
  std::string type_name;  // remote_error: the exception's type in the worker
  std::string message;
  [[noreturn]] void raise() const {
    switch (kind) {
      case Kind::remote_error: throw RemoteError(type_name, message);
      case Kind::timed_out: throw TaskTimeout(message);
      case Kind::cancelled: throw Cancelled(message);
      case Kind::worker_lost: break;
    }
    throw WorkerLost(message);
  }
};
using FailurePtr = std::shared_ptr<const TaskFailure>;

inline FailurePtr remote_failure(std::string type_name, std::string message) {
  return std::make_shared<const TaskFailure>(
      TaskFailure{TaskFailure::Kind::remote_error, std::move(type_name), std::move(message)});
}
inline FailurePtr lost_failure(std::string message) {
  return std::make_shared<const TaskFailure>(
      TaskFailure{TaskFailure::Kind::worker_lost, {}, std::move(message)});
}
inline FailurePtr timeout_failure(std::string message) {
  return std::make_shared<const TaskFailure>(
      TaskFailure{TaskFailure::Kind::timed_out, {}, std::move(message)});
}
inline FailurePtr cancelled_failure() {
  return std::make_shared<const TaskFailure>(
      TaskFailure{TaskFailure::Kind::cancelled, {}, "AsyncResult::get(): the task was cancelled"});
}

class JobState;

// ChangeProbe: "has the job I wait for changed since I looked?" as a plain
// function pointer and its argument (no allocation, callable from noexcept
// code): what a waiting thread hands the pool while the pool waits for it.
struct ChangeProbe {
  const void* context;
  bool (*changed)(const void* context) noexcept;
  [[nodiscard]] bool operator()() const noexcept { return changed(context); }
};

// WaitThroughPool: how JobCanceller::wait_for_change() ended.
enum class WaitThroughPool : std::uint8_t {
  changed,      // the probe said so
  timed_out,    // the deadline passed first
  handed_off,   // the pool's collector thread has the results now (a stream to
                // read, a broken channel): wait on the job's event count until
                // it changes, then the pool may be waited through again
  unavailable,  // the pool is gone, shut down, or not this process's: wait on
                // the job's event count from now on
};

// JobCanceller: what AsyncResult::cancel() and the waiting threads call; the
// pool implements it (and stops the job's chunks in its workers).
class JobCanceller {
 public:
  virtual ~JobCanceller() = default;
  // JobCanceller::cancel(job): true if the job will not deliver a value.
  virtual bool cancel(const std::shared_ptr<JobState>& job) = 0;
  // JobCanceller::wait_for_change(changed, deadline): blocks until changed()
  // or the deadline. Meanwhile the calling thread may be the pool's
  // collector: it waits on the pool's result channel itself and hands every
  // outcome it takes to its job (its own, and other threads' jobs), so a
  // result reaches a waiting thread with no hop through a third thread.
  virtual WaitThroughPool wait_for_change(ChangeProbe changed, const Deadline& deadline) noexcept {
    (void)changed;
    (void)deadline;
    return WaitThroughPool::unavailable;
  }
};

class MP_API JobState {
 public:
  enum class ChunkStatus : std::uint8_t { pending, done, failed };

  using DoneCallback = std::function<void(const std::shared_ptr<JobState>&)>;

  // JobState(item_counts, events): one entry per chunk, the number of items
  // in it. `events` is the event count its waiters wait on: the pool's, shared
  // by its jobs so that the spin policy learns across them (a notify wakes
  // every sleeper of that pool; each re-checks its own job). Null: its own.
  explicit JobState(std::vector<std::uint32_t> item_counts, std::shared_ptr<EventCount> events = nullptr);
  JobState(const JobState&) = delete;
  JobState& operator=(const JobState&) = delete;

  // JobState::complete_chunk(chunk, bytes): the chunk's encoded results. A
  // second outcome for the same chunk is ignored (cannot happen; defensive).
  // Returns whether a waiter must be woken: the caller then calls
  // notify_waiters() (once for a batch of chunks: one wake-up, not one each).
  [[nodiscard]] bool complete_chunk(std::size_t chunk, std::vector<std::byte> bytes) noexcept;
  // JobState::fail_chunk(chunk, error): the chunk's items all fail with error.
  // Returns as complete_chunk().
  [[nodiscard]] bool fail_chunk(std::size_t chunk, FailurePtr error) noexcept;
  // JobState::notify_waiters(): wakes the threads in wait*() to re-check
  // (called outside mutex_, after the change it announces).
  void notify_waiters() noexcept {
    changes_.fetch_add(1, std::memory_order_release);  // pairs with the acquire loads in wait_locked()
    changed_->notify_all();                            // W1 done above; see event_count.hpp
  }

  // JobState::wait(deadline): blocks until the job is ready; false on timeout.
  [[nodiscard]] bool wait(const Deadline& deadline) const;
  [[nodiscard]] bool ready() const;
  // JobState::first_error(): the first failure (completion order), or null.
  [[nodiscard]] FailurePtr first_error() const;

  [[nodiscard]] std::size_t chunk_count() const noexcept { return item_counts_.size(); }
  [[nodiscard]] std::uint32_t item_count(std::size_t chunk) const noexcept { return item_counts_[chunk]; }

  // JobState::wait_chunk(chunk, deadline): blocks until that chunk left
  // pending; returns its status (pending on timeout).
  [[nodiscard]] ChunkStatus wait_chunk(std::size_t chunk, const Deadline& deadline) const;
  // JobState::wait_nth_finished(n, deadline): blocks until n + 1 chunks have
  // finished (done or failed) and returns the index of the n-th to finish;
  // nullopt on timeout.
  [[nodiscard]] std::optional<std::size_t> wait_nth_finished(std::size_t n, const Deadline& deadline) const;

  // JobState::chunk_bytes(chunk) / chunk_error(chunk): the outcome of a chunk
  // that has left pending (the caller saw it through wait_* first); the bytes
  // are never written again once stored, so reading them needs no lock.
  [[nodiscard]] const std::vector<std::byte>& chunk_bytes(std::size_t chunk) const noexcept;
  [[nodiscard]] FailurePtr chunk_error(std::size_t chunk) const;
  // JobState::release_chunk(chunk): frees a consumed chunk's bytes (imap).
  void release_chunk(std::size_t chunk) noexcept;

  // JobState::cancel_pending(): fails every pending chunk with Cancelled.
  // Returns false (and changes nothing) if the job was ready already. The
  // caller then notifies waiters and runs the callbacks (take_callbacks).
  [[nodiscard]] bool cancel_pending();
  [[nodiscard]] bool cancelled() const;
  // JobState::add_done_callback(self, callback): runs callback(self) at once
  // if the job is ready (in this thread), else keeps it for take_callbacks().
  static void add_done_callback(const std::shared_ptr<JobState>& self, DoneCallback callback);
  // JobState::take_callbacks(): the callbacks to run now that the job is
  // ready (empty if it is not, or if they were taken already).
  [[nodiscard]] std::vector<DoneCallback> take_callbacks();
  // JobState::has_callbacks(): callbacks are waiting to be taken.
  [[nodiscard]] bool has_callbacks() const;
  // JobState::run_callbacks(self, callbacks): each, catching what they throw
  // (reported on stderr: a callback must not throw).
  static void run_callbacks(const std::shared_ptr<JobState>& self,
                            std::vector<DoneCallback>& callbacks) noexcept;

  // JobState::set_canceller(canceller) / cancel(self): AsyncResult::cancel().
  void set_canceller(std::weak_ptr<JobCanceller> canceller) { canceller_ = std::move(canceller); }
  static bool cancel(const std::shared_ptr<JobState>& self);

 private:
  bool ready_locked() const noexcept { return remaining_ == 0 || first_error_ != nullptr; }
  // wait_locked(lock, done, deadline): until done() (checked under mutex_)
  // or the deadline; returns done(). Spins briefly, then sleeps (EventCount).
  template <class Done>
  bool wait_locked(std::unique_lock<std::mutex>& lock, Done done, const Deadline& deadline) const;
  bool must_notify_locked() const noexcept {
    return chunk_waiters_ > 0 || (job_waiters_ > 0 && ready_locked());
  }

  const std::vector<std::uint32_t> item_counts_;
  mutable std::mutex mutex_;
  // Waiting: mp's one wait primitive (its spin keeps a waiter's CPU while a
  // result is likely: a sleeping thread costs ~25 us to wake on an idle VM),
  // usually the pool's (see the constructor).
  // changes_ counts notify_waiters() calls; a waiter sleeps until it moves.
  const std::shared_ptr<EventCount> changed_;
  std::atomic<std::uint64_t> changes_{0};
  // One entry per chunk (one allocation for all three).
  struct ChunkOutcome {
    ChunkStatus status = ChunkStatus::pending;  // guarded by mutex_
    std::vector<std::byte> bytes;               // written once under mutex_, then read-only
    FailurePtr error;                           // guarded by mutex_
  };
  std::vector<ChunkOutcome> chunks_;
  std::vector<std::size_t> finish_order_;  // guarded by mutex_
  std::size_t remaining_;                  // guarded by mutex_
  FailurePtr first_error_;                 // guarded by mutex_
  // Who waits on changed_, so that a chunk completion wakes nobody in vain
  // (a map of 20k chunks must not wake its waiter 20k times).
  mutable int job_waiters_ = 0;            // guarded by mutex_: threads in wait()
  mutable int chunk_waiters_ = 0;          // guarded by mutex_: threads in wait_chunk() / wait_nth_finished()
  bool cancelled_ = false;                 // guarded by mutex_
  std::vector<DoneCallback> callbacks_;    // guarded by mutex_
  std::weak_ptr<JobCanceller> canceller_;  // set once at submission, before any handle exists
};

}  // namespace mp::detail
