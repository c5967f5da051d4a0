// src/pool_dispatcher.hpp — private to the Pool: which chunk goes to which
// worker, as plain logic (no fds, no processes, no threads, no clock), so it
// is tested on its own (tests/unit/pool_dispatcher_test.cpp).
//
// It holds the chunks not yet sent (`pending`, in submission order) and, per
// worker, the chunks sent to it in the order it runs them (`in_flight`). It
// decides:
//  - assign(): pending chunks go to the open workers with room, fewest in
//    flight first; a worker's room is a window sized from its measured chunk
//    time (about kWindowBudgetNs of work, 1..kMaxWindow chunks; 2 before the
//    first measurement) and never beyond maxtasksperchild;
//  - finished(): a result for a chunk in flight: take it out, measure;
//  - worker_died(): the chunk the worker had started (its slot names it) is
//    the one that died with it; the chunks it had not started go back to the
//    front of `pending`, in order (a task runs at most once);
//  - cancel(): a job's pending chunks are dropped; its chunks in flight are
//    listed (the caller stops them in the worker).
//
// Safety: not thread-safe; the pool calls it under its mutex.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <vector>

#include "mp/detail/pool_job.hpp"
#include "mp/detail/pool_task.hpp"

namespace mp::detail {

struct QueuedChunk {
  std::uint64_t task_id = 0;  // > 0, unique in the pool
  std::shared_ptr<JobState> job;
  std::uint32_t chunk_index = 0;
  ChunkRunner runner = nullptr;
  std::uint32_t item_count = 0;
  std::vector<std::byte> payload;
};

class Dispatcher {
 public:
  static constexpr double kWindowBudgetNs = 200'000;
  static constexpr std::size_t kMaxWindow = 64;

  struct Assignment {
    int worker;
    const QueuedChunk* chunk;  // valid until the chunk leaves the worker's in_flight
  };
  struct InFlight {
    int worker;
    std::uint64_t task_id;
  };

  Dispatcher(int workers, std::size_t maxtasksperchild);

  // Dispatcher::submit(job, chunk): queues one chunk; returns its task id.
  std::uint64_t submit(QueuedChunk chunk);

  // Dispatcher::open_worker(w): a new worker w takes chunks (fresh window and
  // counters). close_worker(w): it takes no more (retiring, dead, absent).
  void open_worker(int worker);
  void close_worker(int worker);

  // Dispatcher::assign(): moves pending chunks to open workers with room and
  // returns what each must be sent, in order.
  std::vector<Assignment> assign();

  // Dispatcher::finished(w, task_id, run_ns): the chunk's outcome arrived;
  // returns it (nullopt: not in flight on w, e.g. failed already).
  std::optional<QueuedChunk> finished(int worker, std::uint64_t task_id, std::uint64_t run_ns);

  // Dispatcher::drop(w, task_id): the chunk left w without an outcome (it was
  // cancelled and skipped); nothing is measured.
  void drop(int worker, std::uint64_t task_id);

  // Dispatcher::worker_died(w, started_task): w is dead and closed. Returns
  // the chunk it was running (started_task, if still in flight); the others
  // go back to the front of pending, in order, except those of cancelled
  // jobs, which are dropped.
  std::optional<QueuedChunk> worker_died(int worker, std::uint64_t started_task);

  // Dispatcher::cancel(job): drops the job's pending chunks; returns its
  // chunks in flight (they stay there until their outcome or the worker's death).
  std::vector<InFlight> cancel(const JobState* job);

  // Dispatcher::take_all(): every chunk pending or in flight (fail them all).
  std::vector<QueuedChunk> take_all();

  [[nodiscard]] bool idle() const noexcept;  // nothing pending, nothing in flight
  [[nodiscard]] bool has_pending() const noexcept { return !pending_.empty(); }
  [[nodiscard]] std::size_t in_flight(int worker) const noexcept;
  [[nodiscard]] const QueuedChunk* find_in_flight(int worker, std::uint64_t task_id) const noexcept;

 private:
  struct WorkerQueue {
    bool open = false;
    std::deque<QueuedChunk> in_flight;
    std::size_t chunks_assigned = 0;
    double average_run_ns = 0;
    bool measured = false;
  };
  [[nodiscard]] std::size_t room(const WorkerQueue& worker) const noexcept;

  const std::size_t maxtasksperchild_;
  std::deque<QueuedChunk> pending_;
  std::vector<WorkerQueue> workers_;
  std::uint64_t next_task_id_ = 1;
};

}  // namespace mp::detail
