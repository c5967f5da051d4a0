// src/pool_collector.cpp — the pool's collector role: gets every record of
// the result ring, in the order they were committed (pool_wire.hpp,
// "Channels"), and acts on it under the pool's mutex:
//   ready / initializer_failed   a worker's start
//   result / error / skipped     a chunk's outcome; the worker's window is refilled
//   died                         the zygote reported a worker's exit (INV4):
//                                its running chunk fails, the others go back
//   zygote_died                  every worker is gone: fail everything
// Outcomes are delivered outside the mutex. collect_mutex_ is the right to
// take records, so they are handled in ring order whoever takes them (INV4).
//
// Waiting threads (leader/follower). A round trip is two sleeping hand-offs
// (the task to its worker, the result to its waiter), not three: a thread
// waiting for a job's outcome (JobState::wait_locked -> wait_for_change)
// takes the lead if no other waiting thread has it: it sets the shared
// `leader` word (INV5 of pool_wire.hpp), takes collect_mutex_, takes what
// the ring holds, and sleeps on the ring's own not_empty (spinning first, by
// the event count's policy) until its job changed, its deadline, or the
// ring's end. Every outcome it takes goes to its job (other threads' jobs
// too: they are woken through the pool's job event count); callbacks go to
// the supervisor thread (deliver(done, false)). Then it lets go of
// collect_mutex_ and resigns (resign_lead). The other waiting threads
// follow: they sleep on the pool's job event count until their job changed
// or the lead is free, and then try to take it.
// The collector thread collects when no waiter leads: it sleeps on the
// slot table's collector_wake, which producers notify only while `leader`
// is 0 (announce_result), so results a leader takes wake nobody else. A
// worker about to stream a large result announces it first
// (streams_announced): the collector thread then watches the ring's
// not_empty for a while, so that it reads the stream as it comes (a leader
// never reads a stream: it hands the ring to the collector thread).
//
// Memory ordering of the lead (each pairing is also at its line):
//  - leader: a seq_cst CAS 0 -> 1 makes a waiter the leader; the resigning
//    leader's seq_cst store of 0 after unlocking collect_mutex_ lets the next
//    one in (the mutex, not the word, carries the pool's data between them).
//  - producers vs. a resigning leader: a producer commits (release store in
//    the ring), fences, loads `leader`; the leader stores 0, fences, loads
//    the ring's size. Both fences are seq_cst (Dekker), so either the
//    producer sees 0 and wakes the collector thread, or the leader sees the
//    record and wakes it; a record is never left with nobody watching.
//  - a leader's sleep: its condition reads the ring's size (acquire, the
//    ring's INV7) and its job's change count (acquire, pairs with
//    notify_waiters()); every commit notifies not_empty (the ring's INV7),
//    and every change of a job made outside the leader (a delivery by the
//    collector or supervisor thread, cancel()) is followed by
//    wake_leader(), a notify of the same event count: its protocol loses
//    no wake-up.
//  - followers sleep on job_events_ for "my job changed or leader == 0":
//    deliveries notify it (notify_waiters), and resign_lead() notifies it
//    after its store of 0 (the event count's W1).
// The collector thread's condition reads `leader` (seq_cst), the ring's
// size and state (acquire) and streams_announced; each is notified on
// collector_wake after it changes in the direction that wakes: a commit
// while no waiter leads (announce_result), a resign that leaves records
// (resign_lead), an announced stream, the ring's shutdown (shut_result_ring).
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include <algorithm>
#include <array>
#include <chrono>
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

// parse(bytes, frame): a record as a frame (its payload moved from bytes,
// no copy to a second buffer); false if it is not one.
bool parse(std::vector<std::byte>& bytes, ResultFrame& frame) {
  if (bytes.size() < sizeof(ResultHeader)) return false;
  std::memcpy(&frame.header, bytes.data(), sizeof frame.header);
  if (bytes.size() - sizeof(ResultHeader) != frame.header.payload_size) return false;
  bytes.erase(bytes.begin(), bytes.begin() + sizeof(ResultHeader));
  frame.payload = std::move(bytes);
  bytes = {};
  return true;
}

// How long the collector thread watches the ring itself after a worker
// announced a stream (INV5): the stream opens right after the announcement,
// unless its worker dies first (then its `died` record comes).
constexpr auto kStreamWatch = std::chrono::milliseconds(20);

// The pool whose collect_mutex_ this thread holds (the collector thread, or
// a leader), if any: a done callback that waits for another result of the
// same pool from inside a delivery must not try to take it again.
thread_local const void* t_collecting_for = nullptr;

struct CollectingFor {
  explicit CollectingFor(const void* pool) noexcept : previous(t_collecting_for) { t_collecting_for = pool; }
  ~CollectingFor() { t_collecting_for = previous; }
  CollectingFor(const CollectingFor&) = delete;
  CollectingFor& operator=(const CollectingFor&) = delete;
  const void* previous;
};

}  // namespace

// PoolCore::collect_burst(on_pool_thread): the caller holds collect_mutex_.
// Takes what the result ring holds now (up to kBurst records), handles it
// under mutex_, refills windows, delivers. Returns the last get's status
// (ok: there may be more).
RingStatus PoolCore::collect_burst(bool on_pool_thread, bool follow_stream) {
  std::array<ResultFrame, kBurst> frames;  // on the stack: no allocation per burst
  std::size_t frame_count = 0;
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
    if (parse(bytes, frames[frame_count])) ++frame_count;
  }
  if (frame_count == 0) return status;
  std::vector<Completion> done;
  bool wake_supervisor = false;
  {
    std::lock_guard lock(mutex_);
    for (std::size_t i = 0; i < frame_count; ++i) {
      ResultFrame& frame = frames[i];
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
  SlotTableHeader& table = slot_table();
  EventCount& arrivals = result_ring_.header()->not_empty;
  // Relaxed: a count, no data travels with it (see streams_announced).
  std::uint32_t streams_seen = table.streams_announced.load(std::memory_order_relaxed);
  // Our turn: the ring's end, or something to take while no waiter leads.
  const auto due = [&] {
    return result_ring_.is_shut_down() ||
           (table.leader.load(std::memory_order_seq_cst) == 0 &&  // INV5: pairs with the leader's CAS / store
            (result_ring_.size() > 0 || result_streaming()));
  };
  const auto stream_announced = [&] {
    return table.streams_announced.load(std::memory_order_relaxed) != streams_seen;  // relaxed: see above
  };
  for (;;) {
    try {
      if (stream_announced()) {
        // A worker is about to stream a result: watch the ring itself (a
        // stream needs its reader as it comes; INV5).
        streams_seen = table.streams_announced.load(std::memory_order_relaxed);  // relaxed: see above
        (void)arrivals.await(due, Deadline::after(kStreamWatch));
      } else {
        // Spin briefly (results are likely soon after a dispatch), then sleep.
        (void)table.collector_wake.await([&] { return due() || stream_announced(); }, Deadline::never());
      }
      if (!due()) continue;
      const bool shut = result_ring_.is_shut_down();
      std::unique_lock turn(collect_mutex_, std::defer_lock);
      if (shut) {
        turn.lock();  // a leader sees the shutdown too and lets go
      } else if (!turn.try_lock()) {
        continue;  // a waiter took the lead since due(): it takes the records
      }
      // A leader that finds collect_mutex_ taken sleeps on job_events_
      // until this is false again (lead()).
      collector_holds_.store(true, std::memory_order_relaxed);  // relaxed: the mutex orders it for a leader
      struct Release {
        PoolCore& core;
        std::unique_lock<std::mutex>& turn;
        ~Release() {
          turn.unlock();
          core.collector_holds_.store(false, std::memory_order_release);  // pairs with lead()'s acquire load
          core.job_events_->notify_all();                                 // W1: the store above
        }
      } release{*this, turn};
      const CollectingFor collecting(this);
      RingStatus status = RingStatus::would_block;
      // A waiter that wants the lead (leader == 1) waits for collect_mutex_:
      // let go between bursts.
      while (shut ||
             table.leader.load(std::memory_order_seq_cst) == 0) {  // INV5: pairs with the leader's CAS
        status = collect_burst(true, true);
        if (status != RingStatus::ok) break;
      }
      if (status == RingStatus::would_block || status == RingStatus::ok) continue;
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

// PoolCore::wait_for_change(changed, deadline): see "Waiting threads".
WaitThroughPool PoolCore::wait_for_change(ChangeProbe changed, const Deadline& deadline) noexcept {
  SlotTableHeader& table = slot_table();
  // A done callback run while this thread collects (deliver() on the
  // collector thread) waits on the job's event count: the collect right is
  // ours already, and the records are handled once the callback returns.
  if (t_collecting_for == this) return WaitThroughPool::unavailable;
  for (;;) {
    if (changed()) return WaitThroughPool::changed;
    if (result_ring_.is_shut_down()) return WaitThroughPool::unavailable;
    std::uint32_t free = 0;
    // INV5: seq_cst, so that the producers' fenced loads see it (Dekker,
    // file comment); the mutex taken next carries the data.
    if (table.leader.compare_exchange_strong(free, 1, std::memory_order_seq_cst))
      return lead(changed, deadline);
    // Follow: sleep until our job changed or the lead is free. W1 of the
    // lead's release is resign_lead()'s store of 0.
    const bool woke = job_events_->await(
        [&] {
          return changed() ||
                 table.leader.load(std::memory_order_seq_cst) == 0;  // INV5: pairs with resign_lead()
        },
        deadline);
    if (!woke) return changed() ? WaitThroughPool::changed : WaitThroughPool::timed_out;
  }
}

// PoolCore::lead(changed, deadline): the caller set `leader`; it takes
// collect_mutex_ and collects until its job changed (see "Waiting threads").
WaitThroughPool PoolCore::lead(ChangeProbe changed, const Deadline& deadline) noexcept {
  std::unique_lock turn(collect_mutex_, std::try_to_lock);
  while (!turn.owns_lock()) {
    // The collector thread is in a burst (a long one if it reads a stream):
    // it lets go between bursts once it sees `leader`, then clears
    // collector_holds_ and notifies job_events_. Not a blocking lock: our
    // deadline holds even if a stream's producer stalls.
    const bool woke = job_events_->await(
        [&] {
          return changed() || !collector_holds_.load(
                                  std::memory_order_acquire);  // pairs with the collector's release store
        },
        deadline);
    if (!woke || changed()) {
      resign_lead();
      return changed() ? WaitThroughPool::changed : WaitThroughPool::timed_out;
    }
    (void)turn.try_lock();
  }
  EventCount& arrivals = result_ring_.header()->not_empty;
  WaitThroughPool outcome = WaitThroughPool::changed;
  try {
    const CollectingFor collecting(this);
    for (;;) {
      RingStatus status = RingStatus::ok;
      while (status == RingStatus::ok && !changed()) status = collect_burst(false, false);
      if (changed()) break;
      if (status == RingStatus::shut_down) {
        outcome = WaitThroughPool::unavailable;
        break;
      }
      if (status != RingStatus::would_block || result_streaming()) {
        // A stream (the collector thread reads it as it comes), or a broken
        // ring (the collector thread fails the pool): not for a leader.
        outcome = WaitThroughPool::handed_off;
        break;
      }
      // Sleep on the ring itself: every commit notifies not_empty (the
      // ring's INV7), every change of our job made elsewhere is followed by
      // wake_leader(). Acquire loads throughout (size(), the probe).
      const bool woke = arrivals.await(
          [&] {
            return result_ring_.size() > 0 || result_ring_.is_shut_down() || result_streaming() || changed();
          },
          deadline);
      if (!woke) {
        outcome = changed() ? WaitThroughPool::changed : WaitThroughPool::timed_out;
        break;
      }
    }
  } catch (...) {
    outcome =
        WaitThroughPool::handed_off;  // out of memory: the collector thread meets it too and fails the pool
  }
  turn.unlock();
  resign_lead();
  return outcome;
}

// PoolCore::resign_lead(): after letting go of collect_mutex_ (INV5).
void PoolCore::resign_lead() noexcept {
  SlotTableHeader& table = slot_table();
  table.leader.store(0, std::memory_order_seq_cst);  // INV5: pairs with the CAS of the next leader
  full_fence();  // INV5: pairs with the producers' fence in announce_result() (Dekker)
  if (result_ring_.size() > 0 || result_streaming() || result_ring_.is_shut_down()) {
    // Records we left, or a stream: the collector thread's turn (whether it
    // sleeps on collector_wake or watches the ring for an announced stream).
    table.collector_wake.notify_all();
    result_ring_.header()->not_empty.notify_all();
  }
  job_events_->notify_all();  // followers: the lead is free (W1: the store above)
}

void PoolCore::shut_result_ring() noexcept {
  result_ring_.shutdown();                   // notifies not_empty: a leader sees it
  slot_table().collector_wake.notify_all();  // W1: the shutdown bit (is_shut_down() in the condition)
  job_events_->notify_all();                 // followers: they try the lead and find the ring shut
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
