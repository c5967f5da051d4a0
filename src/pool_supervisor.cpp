// src/pool_supervisor.cpp — PoolCore's supervisor thread: starts the zygote
// and the workers, reads every result, handles the zygote's reports, replaces
// dead workers, sends what callers could not, and ends the pool. One loop,
// cut into named steps (see pool_core.hpp for the roles and locks):
//   settle_lifecycle_locked   terminate / close: fail, kill, retire, or stop
//   collect_poll_set_locked   what to wait for
//   on_worker_readable        a worker's result frames
//   on_zygote_reports         spawned, spawn failed, exited (on_worker_exited)
//   on_zygote_died            someone killed the zygote: fail everything
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <string>
#include <thread>

#include "mp/detail/system_error.hpp"
#include "pool_core.hpp"
#include "process_table.hpp"

namespace mp::detail {

using namespace pool_wire;

namespace {

constexpr int kMaxStartupDeaths = 3;
constexpr int kOwnerWake = -1;
constexpr int kOwnerZygoteControl = -2;
constexpr int kOwnerZygotePidfd = -3;

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

}  // namespace

// PoolCore::start_zygote(): runs on the supervisor thread, so that the
// zygote's PR_SET_PDEATHSIG is tied to a thread that lives as long as the pool.
bool PoolCore::start_zygote() noexcept {
  ZygoteLaunch launch{};
  launch.expected_parent = ::getpid();
  launch.signal_mask = creator_mask_;
  launch.slots = slots_;
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
  const int error = zygote_.start(launch, parent_only, 1);
  {
    std::lock_guard lock(mutex_);
    zygote_alive_ = error == 0;
  }
  {
    std::lock_guard lock(startup_mutex_);
    startup_done_ = true;
    startup_error_ = error;
  }
  startup_changed_.notify_all();
  return error == 0;
}

void PoolCore::supervise() noexcept {
  // mp's thread takes no signal meant for the program's own threads.
  sigset_t all;
  ::sigfillset(&all);
  ::pthread_sigmask(SIG_BLOCK, &all, nullptr);
  if (!start_zygote()) return;
  try {
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
    std::vector<Completion> done;
    {
      std::lock_guard lock(mutex_);
      for (int i = 0; i < processes_; ++i) spawn_worker_locked(i, done);
    }
    deliver(done);
  }
  std::vector<pollfd> fds;
  std::vector<int> owners;  // kOwner*, or i: worker i
  for (;;) {
    std::vector<Completion> done;
    bool stop = false;
    {
      std::lock_guard lock(mutex_);
      stop = settle_lifecycle_locked(done);
      collect_poll_set_locked(fds, owners);
    }
    deliver(done);
    if (stop) break;

    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      // poll cannot fail otherwise with valid fds; do not spin.
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      continue;
    }
    for (std::size_t k = 0; k < fds.size(); ++k) {
      if (fds[k].revents == 0) continue;
      const int owner = owners[k];
      if (owner == kOwnerWake) {
        std::uint64_t count;
        while (::read(wake_fd_.get(), &count, sizeof count) > 0) {
        }
      } else if (owner >= 0) {
        if ((fds[k].revents & (POLLIN | POLLHUP | POLLERR)) != 0) on_worker_readable(owner, done);
        if ((fds[k].revents & POLLOUT) != 0) {
          std::lock_guard lock(mutex_);
          workers_[static_cast<std::size_t>(owner)].channel.flush();
        }
      }
    }
    // Reports after the channels: a worker's last results are read before its
    // exit is handled (on_worker_exited drains the channel again anyway).
    for (std::size_t k = 0; k < fds.size(); ++k) {
      if (fds[k].revents == 0 || owners[k] != kOwnerZygoteControl) continue;
      on_zygote_reports(done);
      if ((fds[k].revents & POLLOUT) != 0) zygote_.flush();
    }
    for (std::size_t k = 0; k < fds.size(); ++k) {
      if (fds[k].revents != 0 && owners[k] == kOwnerZygotePidfd) on_zygote_died(done);
    }
    {
      std::lock_guard lock(mutex_);
      dispatch_locked();
    }
    deliver(done);
    run_due_callbacks();
  }
  run_due_callbacks();
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

// PoolCore::collect_poll_set_locked(fds, owners): the wake-up eventfd, the
// zygote (reports, room for requests, death) and each worker's channel.
void PoolCore::collect_poll_set_locked(std::vector<pollfd>& fds, std::vector<int>& owners) {
  fds.clear();
  owners.clear();
  fds.push_back({wake_fd_.get(), POLLIN, 0});
  owners.push_back(kOwnerWake);
  if (zygote_.alive()) {
    fds.push_back(
        {zygote_.control_fd(), static_cast<short>(POLLIN | (zygote_.wants_write() ? POLLOUT : 0)), 0});
    owners.push_back(kOwnerZygoteControl);
    fds.push_back({zygote_.pidfd(), POLLIN, 0});
    owners.push_back(kOwnerZygotePidfd);
  }
  for (int i = 0; i < processes_; ++i) {
    const WorkerChannel& channel = workers_[static_cast<std::size_t>(i)].channel;
    if (!channel.is_open()) continue;
    short events = channel.eof() ? 0 : POLLIN;
    if (channel.wants_write()) events |= POLLOUT;
    if (events == 0) continue;
    fds.push_back({channel.fd(), events, 0});
    owners.push_back(i);
  }
}

// PoolCore::on_worker_readable(index, done): everything worker `index` sent so far.
void PoolCore::on_worker_readable(int index, std::vector<Completion>& done) {
  WorkerChannel& channel = workers_[static_cast<std::size_t>(index)].channel;
  std::vector<ResultFrame> frames = channel.read();  // inbox half: supervisor only, no lock
  std::lock_guard lock(mutex_);
  if (channel.eof()) dispatcher_.close_worker(index);
  on_result_frames_locked(index, frames, done);
}

void PoolCore::on_result_frames_locked(int index, std::vector<ResultFrame>& frames,
                                       std::vector<Completion>& done) {
  WorkerEntry& worker = workers_[static_cast<std::size_t>(index)];
  for (ResultFrame& frame : frames) {
    const auto kind = static_cast<FromWorker>(frame.header.kind);
    if (kind == FromWorker::ready) {
      worker.ready = true;
      if (worker.state == WorkerState::launching) worker.state = WorkerState::running;
      startup_deaths_ = 0;
      continue;
    }
    if (kind == FromWorker::initializer_failed) {
      break_pool_locked(decode_failure(frame.payload, "Pool initializer raised in worker pid " +
                                                          std::to_string(worker.pid) + ": "),
                        done);
      continue;
    }
    clear_cancel_mark_locked(index, frame.header.task_id);
    if (kind == FromWorker::skipped) {  // cancelled before it started: it never ran
      dispatcher_.drop(index, frame.header.task_id);
      continue;
    }
    std::optional<QueuedChunk> chunk = dispatcher_.finished(index, frame.header.task_id, frame.header.run_ns);
    if (!chunk) continue;  // failed already (terminate, broken pool)
    Completion completion = completion_of(*chunk);
    if (kind == FromWorker::result) {
      completion.bytes = std::move(frame.payload);
    } else {
      completion.error = decode_failure(frame.payload, "");
    }
    done.push_back(std::move(completion));
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
      on_worker_exited(report, done);
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
      worker = WorkerEntry{};
      break_pool_locked(lost_failure(system_message("fork", "pool worker", report.error)), done);
    }
  }
}

// PoolCore::on_worker_exited(report, done): the heart of "nothing ever hangs".
void PoolCore::on_worker_exited(const ZygoteReport& report, std::vector<Completion>& done) {
  const int index = report.worker_index;
  // Everything the dead worker wrote is in its socket: read it all first, so
  // that only the chunk it was running is left without a result.
  on_worker_readable(index, done);
  std::lock_guard lock(mutex_);
  WorkerEntry& worker = workers_[static_cast<std::size_t>(index)];
  // The worker is dead: its slot holds its final value (INV1).
  const std::uint64_t started = slots_[index].started_task.load(
      std::memory_order_acquire);  // pairs with the worker's release store before it ran the task
  const std::string how = describe_exit(report.pid, report.code, report.status);
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
  if (replace) spawn_worker_locked(index, done);
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

// PoolCore::on_zygote_died(done): the zygote died (someone killed it): its
// workers died with it (PDEATHSIG). Read what they sent, then fail
// everything unfinished; the pool can run nothing more.
void PoolCore::on_zygote_died(std::vector<Completion>& done) {
  on_zygote_reports(done);
  for (int i = 0; i < processes_; ++i) {
    if (workers_[static_cast<std::size_t>(i)].channel.is_open()) on_worker_readable(i, done);
  }
  const std::string why =
      zygote_.reap_dead() + "; its workers died with it and the pool can run nothing more";
  std::lock_guard lock(mutex_);
  zygote_alive_ = false;
  for (int i = 0; i < processes_; ++i) {
    workers_[static_cast<std::size_t>(i)] = WorkerEntry{};
    dispatcher_.close_worker(i);
  }
  break_pool_locked(lost_failure(why), done);
}

// PoolCore::spawn_worker_locked(index, done): a socket for worker `index`,
// and a request to the zygote to fork it (queued: never blocks).
void PoolCore::spawn_worker_locked(int index, std::vector<Completion>& done) {
  WorkerEntry& worker = workers_[static_cast<std::size_t>(index)];
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair) != 0) {
    break_pool_locked(lost_failure(system_message("socketpair", "pool worker", errno)), done);
    return;
  }
  UniqueFd ours(pair[0]);
  UniqueFd theirs(pair[1]);
  // The worker's end must block: make it so before handing it over (the flag
  // lives on the shared open file description).
  const int flags = ::fcntl(theirs.get(), F_GETFL);
  ::fcntl(theirs.get(), F_SETFL, flags & ~O_NONBLOCK);
  reset_slot_locked(index);  // INV1-3: a new worker starts with a clean slot
  // Named as Python names a forked pool worker (ForkPoolWorker-N), numbered
  // with the owner's other children.
  const ProcessInfo info = next_child_info("ForkPoolWorker");
  zygote_.request_spawn(index, std::move(theirs),
                        ProcessInfoAccess::identity(info));  // never blocks (defect 11)
  worker = WorkerEntry{};
  worker.state = WorkerState::launching;
  worker.channel = WorkerChannel(std::move(ours));
  dispatcher_.open_worker(index);
}

// PoolCore::finish_workers_and_zygote(): the supervisor's last act: ask the
// zygote to kill and reap what is left, reap the zygote, close everything.
void PoolCore::finish_workers_and_zygote() noexcept {
  zygote_.shutdown_and_reap();
  std::lock_guard lock(mutex_);
  zygote_alive_ = false;
  for (int i = 0; i < processes_; ++i) {
    workers_[static_cast<std::size_t>(i)] = WorkerEntry{};
    dispatcher_.close_worker(i);
  }
  state_ = PoolState::finished;
}

}  // namespace mp::detail
