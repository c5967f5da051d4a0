// src/pool_supervisor.cpp — PoolCore's supervisor thread: starts the zygote,
// the collector and the workers, handles the zygote's reports, posts deaths
// to the collector, replaces dead workers, retries what the rings could not
// take, and ends the pool. One loop, cut into named steps (see pool_core.hpp
// for the roles and locks):
//   settle_lifecycle_locked   terminate / close: fail, kill, retire, or stop
//   collect_poll_set_locked   what to wait for
//   on_zygote_reports         spawned, spawn failed, exited (posted: `died`)
//   on_zygote_died            someone killed the zygote (posted: `zygote_died`)
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>
#include <optional>
#include <string>
#include <thread>

#include "mp/detail/system_error.hpp"
#include "pool_core.hpp"
#include "process_table.hpp"

namespace mp::detail {

using namespace pool_wire;

namespace {

constexpr int kOwnerWake = -1;
constexpr int kOwnerZygoteControl = -2;
constexpr int kOwnerZygotePidfd = -3;

}  // namespace

// PoolCore::start_zygote(): runs on the supervisor thread, so that a zygote
// forked (fork) or spawned (spawn) by us has its PR_SET_PDEATHSIG tied to a
// thread that lives as long as the pool (under forkserver the server is its
// parent). Hands the outcome to the constructor (startup_error_).
bool PoolCore::start_zygote() noexcept {
  ZygoteLaunch launch{};
  launch.expected_parent = ::getpid();
  launch.signal_mask = creator_mask_;
  launch.slots = slots_;
  launch.task_rings = task_rings_.data();
  launch.result_ring = &result_ring_;
  launch.worker_count = processes_;
  launch.initializer = options_.initializer;
  launch.maxtasksperchild = options_.maxtasksperchild;
  launch.task_timeout_ns = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(options_.task_timeout).count());
  launch.poll_storage = zygote_poll_storage_.data();
  launch.pidfd_storage = zygote_pidfd_storage_.data();
  launch.pid_storage = zygote_pid_storage_.data();
  launch.identity_storage = zygote_identity_storage_.data();
  const int parent_only[1] = {wake_fd_.get()};
  std::exception_ptr error;
  try {
    const std::optional<RegionMapping> slot_table = region_of(slot_region_);
    zygote_.start(launch, parent_only, 1, method_, *slot_table);  // map_shared_bytes: always a region
  } catch (...) {
    error = std::current_exception();
  }
  {
    std::lock_guard lock(mutex_);
    zygote_alive_ = error == nullptr;
  }
  {
    std::lock_guard lock(startup_mutex_);
    startup_done_ = true;
    startup_error_ = error;
  }
  startup_changed_.notify_all();
  return error == nullptr;
}

void PoolCore::supervise() noexcept {
  // mp's thread takes no signal meant for the program's own threads.
  sigset_t all;
  ::sigfillset(&all);
  ::pthread_sigmask(SIG_BLOCK, &all, nullptr);
  if (!start_zygote()) return;
  try {
    collector_ = std::thread([this] { collect(); });
    supervise_loop();
  } catch (...) {
    // Only std::bad_alloc can get here. Fail what we can, then stop.
    std::vector<Completion> done;
    {
      std::lock_guard lock(mutex_);
      fail_everything_locked(lost_failure("Pool supervisor ran out of memory"), done);
      state_ = PoolState::terminating;
    }
    deliver(done);
  }
  finish_workers_and_zygote();
}

void PoolCore::supervise_loop() {
  {
    std::lock_guard lock(mutex_);
    for (int i = 0; i < processes_; ++i) prepare_worker_locked(i);
  }
  std::vector<pollfd> fds;
  std::vector<int> owners;  // kOwner*
  for (;;) {
    std::vector<Completion> done;
    bool stop = false;
    bool retry_puts = false;
    {
      std::lock_guard lock(mutex_);
      stop = settle_lifecycle_locked(done);
      if (!stop) {
        for (int i = 0; i < processes_; ++i) {
          WorkerEntry& worker = workers_[static_cast<std::size_t>(i)];
          if (!worker.spawn_due) continue;
          worker.spawn_due = false;
          zygote_.request_spawn(i, worker.identity);  // never blocks (defect 11)
        }
        dispatch_locked();
        for (auto& worker : workers_) {
          if (worker.channel.wants_write()) worker.channel.flush();
          retry_puts = retry_puts || worker.channel.wants_write();
        }
      }
      collect_poll_set_locked(fds, owners);
    }
    deliver(done);
    run_due_callbacks();
    if (stop) break;

    // A batch a full ring could not take is retried soon (rare: a 2 GiB backlog).
    if (::poll(fds.data(), fds.size(), retry_puts ? 1 : -1) < 0) {
      if (errno == EINTR) continue;
      // poll cannot fail otherwise with valid fds; do not spin.
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      continue;
    }
    for (std::size_t k = 0; k < fds.size(); ++k) {
      if (fds[k].revents == 0) continue;
      if (owners[k] == kOwnerWake) {
        std::uint64_t count;
        while (::read(wake_fd_.get(), &count, sizeof count) > 0) {
        }
      } else if (owners[k] == kOwnerZygoteControl) {
        on_zygote_reports(done);
        if ((fds[k].revents & POLLOUT) != 0) zygote_.flush();
      }
    }
    for (std::size_t k = 0; k < fds.size(); ++k) {
      if (fds[k].revents != 0 && owners[k] == kOwnerZygotePidfd) on_zygote_died();
    }
    deliver(done);
  }
}

// PoolCore::run_due_callbacks(): the done callbacks of jobs cancelled by
// callers (they run on this thread, as every done callback does).
void PoolCore::run_due_callbacks() {
  std::vector<std::shared_ptr<JobState>> due;
  {
    std::lock_guard lock(mutex_);
    due.swap(callbacks_due_);
  }
  for (const auto& job : due) {
    std::vector<JobState::DoneCallback> callbacks = job->take_callbacks();
    if (!callbacks.empty()) JobState::run_callbacks(job, callbacks);
  }
}

// PoolCore::settle_lifecycle_locked(done): terminate fails everything and
// kills the workers; a closed pool with nothing left retires its workers.
// Returns true when the loop is over.
bool PoolCore::settle_lifecycle_locked(std::vector<Completion>& done) {
  if (state_ == PoolState::terminating) {
    fail_everything_locked(
        lost_failure("Pool.terminate() was called before the task finished; the task was cancelled"), done);
    for (auto& worker : workers_) {
      if (worker.pidfd) ::syscall(SYS_pidfd_send_signal, worker.pidfd.get(), SIGKILL, nullptr, 0);
    }
    return true;
  }
  if (state_ != PoolState::closed || !dispatcher_.idle()) return false;
  for (int i = 0; i < processes_; ++i) {
    WorkerEntry& worker = workers_[static_cast<std::size_t>(i)];
    if (worker.spawn_due) {  // not asked of the zygote yet, and nothing left to run
      worker = WorkerEntry{};
      dispatcher_.close_worker(i);
      continue;
    }
    if (worker.state == WorkerState::launching || worker.state == WorkerState::running) {
      worker.channel.send_exit();
      worker.state = WorkerState::retiring;
      dispatcher_.close_worker(i);
    }
  }
  const bool all_gone = std::all_of(workers_.begin(), workers_.end(),
                                    [](const WorkerEntry& w) { return w.state == WorkerState::absent; });
  return all_gone || !zygote_alive_;
}

// PoolCore::collect_poll_set_locked(fds, owners): the wake-up eventfd and the
// zygote (reports, room for requests, death). Results come through the
// result ring, which the collector thread waits on.
void PoolCore::collect_poll_set_locked(std::vector<pollfd>& fds, std::vector<int>& owners) {
  fds.clear();
  owners.clear();
  fds.push_back({wake_fd_.get(), POLLIN, 0});
  owners.push_back(kOwnerWake);
  if (zygote_.alive()) {
    fds.push_back(
        {zygote_.control_fd(), static_cast<short>(POLLIN | (zygote_.wants_write() ? POLLOUT : 0)), 0});
    owners.push_back(kOwnerZygoteControl);
    fds.push_back({zygote_.watch_fd(), POLLIN, 0});
    owners.push_back(kOwnerZygotePidfd);
  }
}

// PoolCore::post_to_collector(kind, index, payload, size): a record in the
// result ring, after every result the workers committed so far (INV4).
void PoolCore::post_to_collector(FromWorker kind, int index, const void* payload, std::size_t size) noexcept {
  try {
    std::vector<std::byte> record(sizeof(ResultHeader) + size);
    const ResultHeader header{static_cast<std::uint32_t>(kind), index, 0, 0, size};
    std::memcpy(record.data(), &header, sizeof header);
    if (size > 0) std::memcpy(record.data() + sizeof header, payload, size);
    // Blocking: a dead worker's producer lock is repaired here; the ring
    // is a sparse 2 GiB reservation, so it is never full in practice.
    (void)result_ring_.put(record, Deadline::never(), false);
    announce_result(slot_table());  // INV5 of pool_wire.hpp: the collector thread, unless a waiter leads
  } catch (...) {
    // Out of memory: the pool can do nothing sensible; terminate() still works.
  }
}

// PoolCore::on_zygote_reports(done): what the zygote said (spawned, failed, exited).
void PoolCore::on_zygote_reports(std::vector<Completion>& done) {
  ZygoteReport report{};
  UniqueFd passed;
  while (zygote_.read_report(report, passed)) {
    if (report.worker_index < 0 || report.worker_index >= processes_) continue;
    const auto kind = static_cast<ZygoteReportKind>(report.kind);
    if (kind == ZygoteReportKind::exited) {
      // The collector handles it after the worker's last results (INV4).
      post_to_collector(FromWorker::died, report.worker_index, &report, sizeof report);
      continue;
    }
    std::lock_guard lock(mutex_);
    WorkerEntry& worker = workers_[static_cast<std::size_t>(report.worker_index)];
    if (kind == ZygoteReportKind::spawned) {
      worker.pid = report.pid;
      worker.pidfd = std::move(passed);
      if (worker.cancel_signal_due) {
        worker.cancel_signal_due = false;
        signal_cancel_locked(report.worker_index);
      }
    } else {
      // The zygote could not fork. Nothing ran there; put its chunks back and
      // stop: the system is out of processes or memory.
      (void)dispatcher_.worker_died(report.worker_index, 0);
      worker.channel.discard();
      worker = WorkerEntry{};
      break_pool_locked(lost_failure(system_message("fork", "pool worker", report.error)), done);
    }
  }
}

// PoolCore::on_zygote_died(): the zygote died (someone killed it): its
// workers die with it (PDEATHSIG). The collector fails everything
// unfinished once it has read what they sent; the pool can run nothing more.
void PoolCore::on_zygote_died() {
  std::vector<Completion> ignored;  // exits reported before the death are posted, not completed here
  on_zygote_reports(ignored);
  const std::string why =
      zygote_.reap_dead() + "; its workers died with it and the pool can run nothing more";
  {
    std::lock_guard lock(mutex_);
    zygote_alive_ = false;
  }
  post_to_collector(FromWorker::zygote_died, -1, why.data(), why.size());
  deliver(ignored);
}

// PoolCore::prepare_worker_locked(index): a clean slot for worker `index`,
// an entry that takes chunks at once (they wait in its ring, empty by INV4,
// until the worker runs), and spawn_due: the supervisor asks the zygote to
// fork it (zygote_ is the supervisor's alone). Any thread, under mutex_.
void PoolCore::prepare_worker_locked(int index) {
  WorkerEntry& worker = workers_[static_cast<std::size_t>(index)];
  reset_slot_locked(index);  // INV1-3: a new worker starts with a clean slot
  // Named as Python names a forked pool worker (ForkPoolWorker-N), numbered
  // with the owner's other children.
  const ProcessInfo info = next_child_info("ForkPoolWorker");
  worker = WorkerEntry{};
  worker.state = WorkerState::launching;
  worker.channel = WorkerChannel(&task_rings_[static_cast<std::size_t>(index)]);
  worker.identity = ProcessInfoAccess::identity(info);
  worker.spawn_due = true;
  dispatcher_.open_worker(index);
}

// PoolCore::finish_workers_and_zygote(): the supervisor's last act: ask the
// zygote to kill and reap what is left, reap the zygote, stop the collector
// (every worker is gone: nothing more comes), close everything.
void PoolCore::finish_workers_and_zygote() noexcept {
  zygote_.shutdown_and_reap();
  {
    std::lock_guard lock(mutex_);
    zygote_alive_ = false;
  }
  shut_result_ring();  // the collector drains what is left, then returns
  if (collector_.joinable()) collector_.join();
  std::lock_guard lock(mutex_);
  for (int i = 0; i < processes_; ++i) {
    workers_[static_cast<std::size_t>(i)] = WorkerEntry{};
    dispatcher_.close_worker(i);
  }
  state_ = PoolState::finished;
}

}  // namespace mp::detail
