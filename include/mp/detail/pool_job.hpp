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
// for the rest).
//
// Safety: every member may be called from any thread; a mutex guards the state.
// Visibility: everything the supervisor stored for a chunk (its bytes) is
// visible to a thread that saw the chunk leave `pending` (mutex hand-off).
// Lifetime: shared_ptr-owned by the pool (while chunks are queued or running)
// and by every AsyncResult / IMapIterator handle.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "mp/detail/clock.hpp"
#include "mp/detail/export.hpp"
#include "mp/errors.hpp"

namespace mp::detail {

// TaskFailure: why a chunk failed, as plain immutable data. Each waiting
// thread throws a fresh exception made from it (raise()), so no exception
// object is ever shared between threads (FailurePtr's reference count
// lives inside libstdc++, where ThreadSanitizer cannot see it).
struct TaskFailure {
  enum class Kind : std::uint8_t { remote_error, worker_lost };
  Kind kind;
  std::string type_name;  // remote_error: the exception's type in the worker
  std::string message;
  [[noreturn]] void raise() const {
    if (kind == Kind::remote_error) throw RemoteError(type_name, message);
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

class MP_API JobState {
 public:
  enum class ChunkStatus : std::uint8_t { pending, done, failed };

  // JobState(item_counts): one entry per chunk, the number of items in it.
  explicit JobState(std::vector<std::uint32_t> item_counts);
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
  // JobState::notify_waiters(): wakes the threads in wait*() to re-check.
  void notify_waiters() noexcept { changed_.notify_all(); }

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

 private:
  bool ready_locked() const noexcept { return remaining_ == 0 || first_error_ != nullptr; }
  bool must_notify_locked() const noexcept {
    return chunk_waiters_ > 0 || (job_waiters_ > 0 && ready_locked());
  }

  const std::vector<std::uint32_t> item_counts_;
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::vector<ChunkStatus> status_;            // guarded by mutex_
  std::vector<std::vector<std::byte>> bytes_;  // written once under mutex_, then read-only
  std::vector<FailurePtr> errors_;             // guarded by mutex_
  std::vector<std::size_t> finish_order_;      // guarded by mutex_
  std::size_t remaining_;                      // guarded by mutex_
  FailurePtr first_error_;                     // guarded by mutex_
  // Who sleeps on changed_, so that a chunk completion wakes nobody in vain
  // (a map of 20k chunks must not wake its waiter 20k times).
  mutable int job_waiters_ = 0;    // guarded by mutex_: threads in wait()
  mutable int chunk_waiters_ = 0;  // guarded by mutex_: threads in wait_chunk() / wait_nth_finished()
};

}  // namespace mp::detail
