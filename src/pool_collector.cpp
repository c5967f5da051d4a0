// src/pool_collector.cpp — PoolCore's collector thread: gets every record of
// the result ring, in the order they were committed (pool_wire.hpp,
// "Channels"), and acts on it under the pool's mutex:
//   ready / initializer_failed   a worker's start
//   result / error / skipped     a chunk's outcome; the worker's window is refilled
//   died                         the zygote reported a worker's exit (INV4):
//                                its running chunk fails, the others go back
//   zygote_died                  every worker is gone: fail everything
// Outcomes are delivered outside the mutex. The collector waits on the ring
// through its event count: it spins briefly while results are likely, then
// sleeps (mp/detail/event_count.hpp). It stops when the supervisor shuts the
// ring down (finish_workers_and_zygote) and nothing is left in it.
// A thread waiting for a job's outcome may do the same work while it spins
// (help_collect): so on a two-CPU machine a result goes from the worker to
// its waiter directly, without waking a third thread. collect_mutex_ makes
// the records handled in ring order whoever takes them (INV4).
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "pool_core.hpp"

namespace mp::detail {

using namespace pool_wire;

namespace {

constexpr int kMaxStartupDeaths = 3;
// Records taken per turn of the mutex: a burst of small results is handled
// under one lock, one dispatch and one delivery.
constexpr int kBurst = 64;

std::string describe_exit(pid_t pid, int code, int status) {
  std::string text = "pool worker (pid " + std::to_string(pid) + ") ";
  if (code == CLD_KILLED || code == CLD_DUMPED) {
    const char* name = ::sigabbrev_np(status);
    text += "was killed by signal " + std::to_string(status);
    if (name != nullptr) text += std::string(" (SIG") + name + ")";
  } else {
    text += "exited with code " + std::to_string(status);
  }
  return text;
}

std::uint64_t monotonic_now_ns() noexcept {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<std::uint64_t>(now.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(now.tv_nsec);
}

Completion completion_of(QueuedChunk& chunk) {
  Completion completion;
  completion.job = std::move(chunk.job);
  completion.chunk = chunk.chunk_index;
  return completion;
}

// parse(bytes, frame): a record as a frame; false if it is not one.
bool parse(std::vector<std::byte>& bytes, ResultFrame& frame) {
  if (bytes.size() < sizeof(ResultHeader)) return false;
  std::memcpy(&frame.header, bytes.data(), sizeof frame.header);
  if (bytes.size() - sizeof(ResultHeader) != frame.header.payload_size) return false;
  frame.payload.assign(bytes.begin() + sizeof(ResultHeader), bytes.end());
  return true;
}

}  // namespace

// PoolCore::collect_burst(on_pool_thread): the caller holds collect_mutex_.
// Takes what the result ring holds now (up to kBurst records), handles it
// under mutex_, refills windows, delivers. Returns the last get's status
// (ok: there may be more).
RingStatus PoolCore::collect_burst(bool on_pool_thread, bool follow_stream) {
  std::vector<ResultFrame> frames;
  std::vector<std::byte> bytes;
  RingStatus status = RingStatus::ok;
  for (int taken = 0; taken < kBurst; ++taken) {
    GetTarget target;
    target.buffer = &bytes;
    bytes.clear();
    // A large result streams through the ring and counts only when whole
    // (the ring's INV4): a non-blocking get leaves it alone, and its worker
    // would wait for a reader. The collector reads it as it comes, without
    // a deadline (a worker killed half-way is repaired, its stream aborted,
    // by the next put: the supervisor's `died` record at the latest).
    const bool read_stream = follow_stream && taken == 0 && result_streaming();
    status = result_ring_.get(target, Deadline::never(), !read_stream);
    if (status != RingStatus::ok) break;
    ResultFrame frame;
    if (parse(bytes, frame)) frames.push_back(std::move(frame));
  }
  if (frames.empty()) return status;
  std::vector<Completion> done;
  bool wake_supervisor = false;
  {
    std::lock_guard lock(mutex_);
    for (ResultFrame& frame : frames) {
      const auto kind = static_cast<FromWorker>(frame.header.kind);
      if (kind == FromWorker::died || kind == FromWorker::zygote_died) wake_supervisor = true;
      on_result_frame_locked(frame, done);
    }
    dispatch_locked();
    // A closed pool that ran out of work retires its workers, and a dead
    // worker is replaced: the supervisor does both (settle_lifecycle_locked).
    if (state_ == PoolState::closed && dispatcher_.idle()) wake_supervisor = true;
  }
  if (wake_supervisor) wake();
  deliver(done, on_pool_thread);
  return status;
}

void PoolCore::collect() noexcept {
  // The ring notifies not_empty after every commit and at shutdown (its
  // INV7), so waiting there for "something to take" loses no record.
  EventCount& arrivals = result_ring_.header()->not_empty;
  for (;;) {
    try {
      // Spin briefly (results are likely soon after a dispatch), then sleep.
      (void)arrivals.await(
          [&] { return result_ring_.size() > 0 || result_ring_.is_shut_down() || result_streaming(); },
          Deadline::never());
      std::lock_guard turn(collect_mutex_);
      RingStatus status;
      while ((status = collect_burst(true, true)) == RingStatus::ok) {
      }
      if (status == RingStatus::would_block) continue;
      if (status == RingStatus::shut_down) return;
      // lock_error / corrupted: the ring cannot be read any more.
      std::vector<Completion> failed;
      {
        std::lock_guard lock(mutex_);
        break_pool_locked(lost_failure("the pool's result channel is broken; the pool can run nothing more"),
                          failed);
      }
      deliver(failed);
      return;
    } catch (...) {
      // Out of memory while handling a record: fail what is unfinished.
      std::vector<Completion> failed;
      try {
        std::lock_guard lock(mutex_);
        break_pool_locked(lost_failure("Pool result collector ran out of memory"), failed);
      } catch (...) {
      }
      deliver(failed);
      return;
    }
  }
}

// PoolCore::result_streaming(): a worker is streaming a large result into
// the result ring and nothing whole is before it.
bool PoolCore::result_streaming() const noexcept {
  // acquire: pairs with the ring's release stores of stream_state (its INV9)
  const std::uint64_t open = result_ring_.header()->stream_state.load(std::memory_order_acquire);
  return (open & kStreamIdMask) != 0 && result_ring_.size() == 0;
}

bool PoolCore::help_collect() noexcept {
  std::unique_lock turn(collect_mutex_, std::try_to_lock);
  if (!turn.owns_lock()) return false;  // the collector (or another waiter) is at it
  try {
    return collect_burst(false, false) == RingStatus::ok || result_ring_.size() == 0;
  } catch (...) {
    return false;  // the collector will meet the same and fail the pool
  }
}

// PoolCore::on_result_frame_locked(frame, done): one record of the result ring.
void PoolCore::on_result_frame_locked(ResultFrame& frame, std::vector<Completion>& done) {
  const auto kind = static_cast<FromWorker>(frame.header.kind);
  if (kind == FromWorker::zygote_died) {
    on_zygote_died_locked(
        std::string(reinterpret_cast<const char*>(frame.payload.data()), frame.payload.size()), done);
    return;
  }
  const int index = frame.header.worker;
  if (index < 0 || index >= processes_) return;
  WorkerEntry& worker = workers_[static_cast<std::size_t>(index)];
  if (kind == FromWorker::died) {
    ZygoteReport report{};
    if (frame.payload.size() == sizeof report) {
      std::memcpy(&report, frame.payload.data(), sizeof report);
      on_worker_exited_locked(report, done);
    }
    return;
  }
  if (kind == FromWorker::ready) {
    worker.ready = true;
    if (worker.state == WorkerState::launching) worker.state = WorkerState::running;
    startup_deaths_ = 0;
    return;
  }
  if (kind == FromWorker::initializer_failed) {
    break_pool_locked(decode_failure(frame.payload, "Pool initializer raised in worker pid " +
                                                        std::to_string(worker.pid) + ": "),
                      done);
    return;
  }
  clear_cancel_mark_locked(index, frame.header.task_id);
  if (kind == FromWorker::skipped) {  // cancelled before it started: it never ran
    dispatcher_.drop(index, frame.header.task_id);
    return;
  }
  std::optional<QueuedChunk> chunk = dispatcher_.finished(index, frame.header.task_id, frame.header.run_ns);
  if (!chunk) return;  // failed already (terminate, broken pool)
  Completion completion = completion_of(*chunk);
  if (kind == FromWorker::result) {
    completion.bytes = std::move(frame.payload);
  } else {
    completion.error = decode_failure(frame.payload, "");
  }
  done.push_back(std::move(completion));
}

// PoolCore::on_worker_exited_locked(report, done): the heart of "nothing ever
// hangs". Every result the worker committed came before this record (INV4),
// so only the chunk it was running is left without one.
void PoolCore::on_worker_exited_locked(const ZygoteReport& report, std::vector<Completion>& done) {
  const int index = report.worker_index;
  WorkerEntry& worker = workers_[static_cast<std::size_t>(index)];
  // The worker is dead: its slot holds its final value (INV1).
  const std::uint64_t started = slots_[index].started_task.load(
      std::memory_order_acquire);  // pairs with the worker's release store before it ran the task
  const std::string how = describe_exit(report.pid, report.code, report.status);
  // INV4: what it had not taken yet goes back through the dispatcher only.
  worker.channel.discard();
  if (std::optional<QueuedChunk> running = dispatcher_.worker_died(index, started)) {
    Completion lost = completion_of(*running);
    lost.error = death_failure(index, report, started);  // ignored by a cancelled job
    done.push_back(std::move(lost));
  }
  const bool was_ready = worker.ready;
  worker = WorkerEntry{};
  if (!was_ready && !broken_ && state_ != PoolState::terminating) {
    if (++startup_deaths_ >= kMaxStartupDeaths) {
      break_pool_locked(
          lost_failure("pool workers keep dying before their initializer returned (last: " + how + ")"),
          done);
    }
  }
  const bool replace = !broken_ && zygote_alive_ &&
                       (state_ == PoolState::running || (state_ == PoolState::closed && !dispatcher_.idle()));
  // The replacement takes chunks at once; the supervisor asks the zygote.
  if (replace) prepare_worker_locked(index);
}

// PoolCore::death_failure(index, report, started): how the task that was
// running in a dead worker fails: TaskTimeout if its timer killed it (SIGKILL
// at or after the task's deadline, INV2), else WorkerLost.
FailurePtr PoolCore::death_failure(int index, const ZygoteReport& report, std::uint64_t started) const {
  const std::string how = describe_exit(report.pid, report.code, report.status);
  const WorkerSlot& slot = slots_[index];
  const std::uint64_t deadline = slot.timeout_at_ns.load(
      std::memory_order_acquire);  // pairs with the worker's release store before arming
  const bool killed = report.code == CLD_KILLED && report.status == SIGKILL;
  const bool inside =
      slot.running_task.load(std::memory_order_seq_cst) == started;  // INV2: it died in that task
  if (options_.task_timeout.count() > 0 && killed && inside && deadline != 0 &&
      monotonic_now_ns() >= deadline) {
    return timeout_failure("pool task ran longer than its task_timeout of " +
                           std::to_string(options_.task_timeout.count()) + " ms; its worker (pid " +
                           std::to_string(report.pid) + ") was killed and replaced");
  }
  return lost_failure(how + " while running the task");
}

// PoolCore::on_zygote_died_locked(why, done): every worker died with the
// zygote (their results came before this record); nothing can run any more.
void PoolCore::on_zygote_died_locked(const std::string& why, std::vector<Completion>& done) {
  for (int i = 0; i < processes_; ++i) {
    workers_[static_cast<std::size_t>(i)].channel.discard();
    workers_[static_cast<std::size_t>(i)] = WorkerEntry{};
    dispatcher_.close_worker(i);
  }
  break_pool_locked(lost_failure(why), done);
}

}  // namespace mp::detail
