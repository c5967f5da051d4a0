// src/pool_core.hpp — private to the Pool: PoolCore, what an mp::Pool owns.
//
// Roles (as CPython's pool.py has one function per role):
//  - lifecycle and submission (pool_core.cpp): the constructor, submit(),
//    close(), terminate(), join(); callers' threads;
//  - dispatch (Dispatcher, pool_dispatcher.*): plain logic, which chunk goes
//    to which worker;
//  - worker channels (WorkerChannel, pool_worker_channel.*): task frames to
//    each worker's ring;
//  - the zygote link (ZygoteLink, pool_zygote_link.*): spawn requests and
//    the zygote's reports;
//  - the supervisor loop (pool_supervisor.cpp): one thread per pool, cut into
//    named steps: settle_lifecycle_locked, collect_poll_set_locked, then
//    on_zygote_reports, on_zygote_died; it posts deaths to the result ring;
//  - the collector (pool_collector.cpp): whoever has the collect right gets
//    every record of the result ring, in order (results, readiness, deaths),
//    and refills the workers' windows: a thread waiting for a result (the
//    leader, one at a time: wait_for_change) or else the collector thread,
//    which remains for callbacks, jobs nobody waits for, and deaths.
//
// Locks: mutex_ guards the pool's state (state_, broken_, zygote_alive_),
// dispatcher_, and every WorkerEntry (its channel too). The rings are shared
// memory with their own locks: only code under mutex_ puts to a task ring;
// only the holder of collect_mutex_ gets from the result ring. startup_mutex_ guards the constructor's
// hand-off with the supervisor; join_mutex_ serialises joins; collect_mutex_
// is the right to take records from the result ring (before mutex_); a
// leading waiter holds it for its whole wait (INV5 of pool_wire.hpp). zygote_ is the
// supervisor thread's alone; collector_ is started and joined by it. Order: mutex_ before a JobState's mutex
// and before mp's process-table mutex; results are delivered (JobState) outside mutex_, and nothing is
// decoded under it.
#pragma once

#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "mp/detail/fd.hpp"
#include "mp/detail/ring.hpp"
#include "mp/pool.hpp"
#include "pool_dispatcher.hpp"
#include "pool_result_watch.hpp"
#include "pool_wire.hpp"
#include "pool_worker_channel.hpp"
#include "pool_zygote_link.hpp"

namespace mp::detail {

// Completion: one chunk's outcome, delivered to its JobState outside mutex_.
struct Completion {
  std::shared_ptr<JobState> job;
  std::uint32_t chunk = 0;
  std::vector<std::byte> bytes;
  FailurePtr error;  // null: bytes are the results
};

// State table of a worker entry (only the supervisor moves it, under mutex_):
//   absent --prepare_worker_locked--> launching (spawn_due until the supervisor
//          asked the zygote) --ready frame--> running
//   launching|running --close, idle--> retiring (absent if spawn_due)
//   any --its `died` record (collector)--> absent, or launching again (replaced)
enum class WorkerState { absent, launching, running, retiring };

struct WorkerEntry {
  WorkerState state = WorkerState::absent;
  pid_t pid = 0;
  UniqueFd pidfd;  // from the zygote; for SIGKILL at terminate() and the cancel signal
  WorkerChannel channel;
  bool ready = false;              // the initializer returned
  bool cancel_signal_due = false;  // a running task was cancelled before the pidfd arrived
  bool spawn_due = false;          // launching: the supervisor has yet to ask the zygote
  std::string identity;            // the worker's identity ("3": ForkPoolWorker-3)
};

// PoolState: running --close--> closed --idle, workers gone--> finished
//            running|closed --terminate--> terminating --> finished
enum class PoolState { running, closed, terminating, finished };

class PoolCore {
 public:
  PoolCore(int processes, PoolOptions options);
  PoolCore(const PoolCore&) = delete;
  PoolCore& operator=(const PoolCore&) = delete;
  ~PoolCore();

  void submit(const char* method, const std::shared_ptr<JobState>& job, std::vector<ChunkSpec> chunks);
  // PoolCore::cancel(job): AsyncResult::cancel() (see async_result.hpp).
  bool cancel(const std::shared_ptr<JobState>& job);
  // PoolCore::canceller(): what a JobState calls to cancel itself; outlives
  // the PoolCore (it answers false once the pool is gone).
  [[nodiscard]] std::weak_ptr<JobCanceller> canceller() const;
  // PoolCore::wait_for_change(changed, deadline): JobCanceller's, for a
  // thread waiting for one of this pool's jobs (pool_collector.cpp, "Waiting
  // threads"): it leads (takes the result ring's records itself) if no other
  // waiting thread does, else it sleeps until its job changed or the lead is
  // free.
  WaitThroughPool wait_for_change(ChangeProbe changed, const Deadline& deadline) noexcept;
  void check_running(const char* method) const;
  void close();
  void terminate();
  void join();
  [[nodiscard]] int processes() const noexcept { return processes_; }
  // PoolCore::job_events(): the event count this pool's jobs wait on.
  [[nodiscard]] const std::shared_ptr<EventCount>& job_events() const noexcept { return job_events_; }
  // PoolCore::foreign(): true in a process forked from the pool's owner (a
  // copy of the Pool object exists there, but no supervisor and no workers).
  // No system call: a fork generation counted by an atfork child handler.
  [[nodiscard]] bool foreign() const noexcept;

 private:
  // ---- the supervisor loop (pool_supervisor.cpp) ----
  void supervise() noexcept;
  bool start_zygote() noexcept;
  void supervise_loop();
  bool settle_lifecycle_locked(std::vector<Completion>& done);
  void collect_poll_set_locked(std::vector<pollfd>& fds, std::vector<int>& owners);
  void on_zygote_reports(std::vector<Completion>& done);
  void on_zygote_died();
  void post_to_collector(pool_wire::FromWorker kind, int index, const void* payload,
                         std::size_t size) noexcept;
  void prepare_worker_locked(int index);

  // ---- the collector (pool_collector.cpp) ----
  void collect() noexcept;
  RingStatus collect_burst(bool on_pool_thread, bool follow_stream);
  WaitThroughPool lead(ChangeProbe changed, const Deadline& deadline) noexcept;
  void resign_lead() noexcept;
  // shut_result_ring(): shuts the result ring down and wakes every thread
  // that waits for it: the collector thread, a leader, the followers.
  void shut_result_ring() noexcept;
  [[nodiscard]] pool_wire::SlotTableHeader& slot_table() const noexcept {
    return *reinterpret_cast<pool_wire::SlotTableHeader*>(slot_region_.get());
  }
  [[nodiscard]] bool result_streaming() const noexcept;
  void on_result_frame_locked(ResultFrame& frame, std::vector<Completion>& done);
  void on_worker_exited_locked(const pool_wire::ZygoteReport& report, std::vector<Completion>& done);
  void on_zygote_died_locked(const std::string& why, std::vector<Completion>& done);
  void run_due_callbacks();
  [[nodiscard]] FailurePtr death_failure(int index, const pool_wire::ZygoteReport& report,
                                         std::uint64_t started) const;
  void finish_workers_and_zygote() noexcept;

  // ---- shared by callers and the supervisor (pool_core.cpp) ----
  void dispatch_locked();
  void fail_everything_locked(const FailurePtr& error, std::vector<Completion>& done);
  void break_pool_locked(FailurePtr error, std::vector<Completion>& done);
  void wake() noexcept;
  // deliver(done, on_pool_thread): outcomes to their jobs, outside mutex_.
  // Done callbacks run here on a pool thread; a helping caller's thread
  // hands them to the supervisor (callbacks_due_) instead.
  // Jobs notified here may have a leading waiter asleep on the result ring:
  // unless the leader itself delivers (on_pool_thread false), the ring's
  // not_empty is notified too.
  void deliver(std::vector<Completion>& done, bool on_pool_thread = true) noexcept;
  // wake_leader(): notifies the result ring's not_empty after a job changed
  // outside the leader (INV5 of pool_wire.hpp; no system call if nobody sleeps).
  void wake_leader() noexcept;
  // Cancel marks (INV3 of pool_wire.hpp): set one and signal the worker if
  // the task is running there; clear one once its chunk left the worker.
  void stop_in_worker_locked(int index, std::uint64_t task_id);
  void signal_cancel_locked(int index);
  void clear_cancel_mark_locked(int index, std::uint64_t task_id);
  void reset_slot_locked(int index);

  class CancelGate;

  const int processes_;
  const PoolOptions options_;
  const StartMethod method_;  // how the zygote starts: options_.start_method, else get_start_method()
  const pid_t owner_ = ::getpid();
  const bool counting_forks_;             // foreign() may use the fork generation
  const std::uint64_t owner_generation_;  // the fork generation at construction (foreign())
  const std::shared_ptr<EventCount> job_events_ = std::make_shared<EventCount>();
  std::shared_ptr<std::byte> slot_region_;  // the shared slot table (pool_wire.hpp)
  pool_wire::WorkerSlot* slots_ = nullptr;
  std::vector<Ring> task_rings_;  // one per worker index (pool_wire.hpp, "Channels")
  Ring result_ring_;              // every worker's results, and the supervisor's death records
  UniqueFd wake_fd_;              // eventfd: callers wake the supervisor
  ZygoteLink zygote_;             // supervisor thread only
  sigset_t creator_mask_{};
  // Prepared before the zygote's fork: it allocates nothing afterwards.
  std::vector<pollfd> zygote_poll_storage_;
  std::vector<int> zygote_pidfd_storage_;
  std::vector<pid_t> zygote_pid_storage_;
  std::vector<char> zygote_identity_storage_;

  // Startup hand-off between the constructor and the supervisor thread.
  std::mutex startup_mutex_;
  std::condition_variable startup_changed_;
  bool startup_done_ = false;         // guarded by startup_mutex_
  std::exception_ptr startup_error_;  // guarded by startup_mutex_: why the zygote did not start

  mutable std::mutex mutex_;
  PoolState state_ = PoolState::running;  // guarded by mutex_
  FailurePtr broken_;                     // guarded by mutex_: why the pool can run nothing more
  bool zygote_alive_ = false;             // guarded by mutex_ (zygote_.alive() for the callers' threads)
  int startup_deaths_ = 0;                // guarded by mutex_
  Dispatcher dispatcher_;                 // guarded by mutex_
  std::vector<WorkerEntry> workers_;      // guarded by mutex_ (a channel's inbox half: supervisor only)
  std::vector<std::shared_ptr<JobState>>
      callbacks_due_;                        // guarded by mutex_: cancelled jobs, for the supervisor
  std::shared_ptr<CancelGate> cancel_gate_;  // set in the constructor, detached in the destructor

  // Whoever holds collect_mutex_ takes records from the result ring and
  // handles them before letting go, so records are handled in ring order
  // (INV4) whether the collector thread or a leading waiter takes them. A
  // leader sets slot_table().leader before taking it and clears it after
  // letting go (INV5). collector_holds_ is true while the collector thread
  // holds it (a leader that finds it taken waits on job_events_ for false).
  std::mutex collect_mutex_;
  std::atomic<bool> collector_holds_{false};

  std::mutex join_mutex_;
  std::thread supervisor_;  // joined under join_mutex_
  std::thread collector_;   // started and joined by the supervisor thread
};

}  // namespace mp::detail
