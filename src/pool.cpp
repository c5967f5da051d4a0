// src/pool.cpp — mp::Pool: the public members and the supervisor (PoolCore).
//
// Threads: the callers (submit, close, terminate, join) and one supervisor
// thread per pool. mutex_ guards the pool's state, the queue of chunks not yet
// sent, and the worker table (except each worker's inbox, which only the
// supervisor touches). Callers send chunks to workers themselves when a worker
// has room (one hop less for apply_async().get()); the supervisor reads every
// result, handles the zygote's reports, replaces workers and sends the rest.
// Result bytes are handed to the JobState outside mutex_; nobody decodes here.
#include <fcntl.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "mp/detail/fd.hpp"
#include "mp/detail/pool_testing.hpp"
#include "mp/detail/shm.hpp"
#include "mp/detail/system_error.hpp"
#include "mp/pool.hpp"
#include "pool_wire.hpp"
#include "pool_zygote_link.hpp"
#include "process_table.hpp"

namespace mp {
namespace detail {

namespace {
std::atomic<int> g_control_buffer_for_testing{
    0};  // relaxed: read at Pool construction, set before it by the test
}  // namespace

void set_pool_control_buffer_for_testing(int bytes) noexcept {
  g_control_buffer_for_testing.store(bytes, std::memory_order_relaxed);  // relaxed: see above
}

int pool_cpu_count() noexcept {
  const long online = ::sysconf(_SC_NPROCESSORS_ONLN);
  return online < 1 ? 1 : static_cast<int>(online);
}

namespace {

using namespace pool_wire;

struct QueuedChunk {
  std::uint64_t task_id = 0;
  std::shared_ptr<JobState> job;
  std::uint32_t chunk_index = 0;
  ChunkRunner runner = nullptr;
  std::uint32_t item_count = 0;
  std::vector<std::byte> payload;
};

struct Completion {
  std::shared_ptr<JobState> job;
  std::uint32_t chunk = 0;
  std::vector<std::byte> bytes;
  FailurePtr error;  // null: bytes are the results
};

// State table of a worker entry (only the supervisor moves it, under mutex_):
//   absent --request_spawn--> launching --first frame / report--> running
//   launching|running --close, idle--> retiring
//   any --zygote reports its exit--> absent
enum class WorkerState { absent, launching, running, retiring };

struct WorkerEntry {
  WorkerState state = WorkerState::absent;
  pid_t pid = 0;
  UniqueFd pidfd;    // from the zygote; for SIGKILL at terminate()
  UniqueFd channel;  // our end of the worker's socket (non-blocking)
  bool channel_eof = false;
  bool ready = false;                 // the initializer returned
  std::deque<QueuedChunk> in_flight;  // sent (or being sent), in order
  std::vector<std::byte> outbox;      // frames not yet written
  std::size_t outbox_sent = 0;
  std::vector<std::byte> inbox;  // supervisor thread only
  std::size_t chunks_assigned = 0;
  double average_run_ns = 0;
  bool measured = false;
};

// PoolState: running --close--> closed --idle, workers gone--> finished
//            running|closed --terminate--> terminating --> finished
enum class PoolState { running, closed, terminating, finished };

constexpr double kWindowBudgetNs = 200'000;  // queue about this much work per worker
constexpr std::size_t kMaxWindow = 64;
constexpr int kMaxStartupDeaths = 3;

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

}  // namespace

class PoolCore {
 public:
  PoolCore(int processes, PoolOptions options);
  PoolCore(const PoolCore&) = delete;
  PoolCore& operator=(const PoolCore&) = delete;
  ~PoolCore();

  void submit(const char* method, const std::shared_ptr<JobState>& job, std::vector<ChunkSpec> chunks);
  void check_running(const char* method) const;
  void close();
  void terminate();
  void join();
  [[nodiscard]] int processes() const noexcept { return processes_; }
  // PoolCore::foreign(): true in a process forked from the pool's owner (a
  // copy of the Pool object exists there, but no supervisor and no workers).
  [[nodiscard]] bool foreign() const noexcept { return ::getpid() != owner_; }

 private:
  void supervise() noexcept;
  bool start_zygote() noexcept;
  void supervise_loop();
  void request_spawn_locked(int index, std::vector<Completion>& done);
  void dispatch_locked();
  void flush_locked(WorkerEntry& worker);
  [[nodiscard]] std::size_t room_locked(const WorkerEntry& worker) const;
  void read_worker(int index, std::vector<Completion>& done);
  void parse_frames(int index, std::vector<Completion>& done);
  void read_reports(std::vector<Completion>& done);
  void worker_exited(const ZygoteReport& report, std::vector<Completion>& done);
  void fail_everything_locked(const FailurePtr& error, std::vector<Completion>& done);
  void break_pool_locked(FailurePtr error, std::vector<Completion>& done);
  void finish_workers_and_zygote() noexcept;
  void wake() noexcept;
  static void deliver(std::vector<Completion>& done) noexcept;

  const int processes_;
  const PoolOptions options_;
  const pid_t owner_ = ::getpid();
  std::shared_ptr<std::byte> slot_region_;
  WorkerSlot* slots_ = nullptr;
  UniqueFd wake_fd_;
  ZygoteLink zygote_;          // supervisor thread only
  bool zygote_alive_ = false;  // guarded by mutex_ (a copy of zygote_.alive() for the callers' threads)
  sigset_t creator_mask_{};
  std::vector<pollfd> zygote_poll_storage_;
  std::vector<int> zygote_pidfd_storage_;
  std::vector<pid_t> zygote_pid_storage_;
  std::vector<char> zygote_identity_storage_;

  // Startup hand-off between the constructor and the supervisor thread.
  std::mutex startup_mutex_;
  std::condition_variable startup_changed_;
  bool startup_done_ = false;
  int startup_error_ = 0;

  mutable std::mutex mutex_;
  PoolState state_ = PoolState::running;  // guarded by mutex_
  FailurePtr broken_;                     // guarded by mutex_: why the pool can run nothing more
  std::deque<QueuedChunk> pending_;       // guarded by mutex_
  std::vector<WorkerEntry> workers_;      // guarded by mutex_ (inbox: supervisor only)
  std::uint64_t next_task_id_ = 1;        // guarded by mutex_
  int startup_deaths_ = 0;                // guarded by mutex_

  std::mutex join_mutex_;
  std::thread supervisor_;
};

PoolCore::PoolCore(int processes, PoolOptions options)
    : processes_(processes),
      options_(options),
      zygote_(g_control_buffer_for_testing.load(std::memory_order_relaxed)),  // relaxed: see its definition
      workers_(static_cast<std::size_t>(processes)) {
  const std::size_t region_size =
      sizeof(SlotTableHeader) + sizeof(WorkerSlot) * static_cast<std::size_t>(processes);
  slot_region_ = map_shared_bytes(region_size, "pool worker slots");
  auto* header = ::new (static_cast<void*>(slot_region_.get())) SlotTableHeader{};
  header->magic = kSlotMagic;
  header->version = kSlotVersion;
  header->slot_count = static_cast<std::uint32_t>(processes);
  slots_ = reinterpret_cast<WorkerSlot*>(slot_region_.get() + sizeof(SlotTableHeader));
  for (int i = 0; i < processes; ++i) {
    ::new (static_cast<void*>(&slots_[i])) WorkerSlot{};
    slots_[i].started_task.store(0, std::memory_order_relaxed);  // published to the zygote by fork()
  }

  wake_fd_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_fd_) throw_system_error("eventfd", "pool", errno);
  zygote_poll_storage_.resize(static_cast<std::size_t>(processes) + 1);
  zygote_pidfd_storage_.assign(static_cast<std::size_t>(processes), -1);
  zygote_pid_storage_.assign(static_cast<std::size_t>(processes), 0);
  zygote_identity_storage_.assign(static_cast<std::size_t>(processes) * kIdentitySize, '\0');
  ::pthread_sigmask(SIG_BLOCK, nullptr, &creator_mask_);

  // Whatever is buffered now is the parent's to print, never a worker's.
  std::cout.flush();
  std::cerr.flush();
  std::clog.flush();
  std::fflush(nullptr);

  supervisor_ = std::thread([this] { supervise(); });
  std::unique_lock lock(startup_mutex_);
  startup_changed_.wait(lock, [&] { return startup_done_; });
  if (startup_error_ != 0) {
    lock.unlock();
    supervisor_.join();
    throw_system_error("fork", "pool zygote", startup_error_);
  }
}

PoolCore::~PoolCore() {
  try {
    terminate();
  } catch (...) {
  }
}

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
      for (int i = 0; i < processes_; ++i) request_spawn_locked(i, done);
    }
    deliver(done);
  }
  std::vector<pollfd> fds;
  std::vector<int> owners;  // -1 wake, -2 control, -3 zygote pidfd, i: worker i
  for (;;) {
    std::vector<Completion> done;
    fds.clear();
    owners.clear();
    bool stop = false;
    {
      std::lock_guard lock(mutex_);
      if (state_ == PoolState::terminating) {
        fail_everything_locked(
            lost_failure("Pool.terminate() was called before the task finished; the task was cancelled"),
            done);
        for (auto& worker : workers_) {
          if (worker.pidfd) ::syscall(SYS_pidfd_send_signal, worker.pidfd.get(), SIGKILL, nullptr, 0);
        }
        stop = true;
      }
      const bool idle = !stop && pending_.empty() &&
                        std::all_of(workers_.begin(), workers_.end(),
                                    [](const WorkerEntry& w) { return w.in_flight.empty(); });
      if (state_ == PoolState::closed && idle) {
        for (auto& worker : workers_) {
          if (worker.state == WorkerState::launching || worker.state == WorkerState::running) {
            TaskHeader header{static_cast<std::uint32_t>(ToWorker::exit), 0, 0, 0, 0};
            const auto* raw = reinterpret_cast<const std::byte*>(&header);
            worker.outbox.insert(worker.outbox.end(), raw, raw + sizeof header);
            worker.state = WorkerState::retiring;
            flush_locked(worker);
          }
        }
        const bool all_gone = std::all_of(workers_.begin(), workers_.end(), [](const WorkerEntry& w) {
          return w.state == WorkerState::absent;
        });
        if (all_gone || !zygote_alive_) stop = true;
      }
      fds.push_back({wake_fd_.get(), POLLIN, 0});
      owners.push_back(-1);
      if (zygote_.alive()) {
        fds.push_back(
            {zygote_.control_fd(), static_cast<short>(POLLIN | (zygote_.wants_write() ? POLLOUT : 0)), 0});
        owners.push_back(-2);
        fds.push_back({zygote_.pidfd(), POLLIN, 0});
        owners.push_back(-3);
      }
      for (int i = 0; i < processes_; ++i) {
        const WorkerEntry& worker = workers_[static_cast<std::size_t>(i)];
        if (!worker.channel) continue;
        short events = worker.channel_eof ? 0 : POLLIN;
        if (worker.outbox_sent < worker.outbox.size()) events |= POLLOUT;
        if (events == 0) continue;
        fds.push_back({worker.channel.get(), events, 0});
        owners.push_back(i);
      }
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
      if (owner == -1) {
        std::uint64_t count;
        while (::read(wake_fd_.get(), &count, sizeof count) > 0) {
        }
      } else if (owner >= 0) {
        if ((fds[k].revents & (POLLIN | POLLHUP | POLLERR)) != 0) read_worker(owner, done);
        if ((fds[k].revents & POLLOUT) != 0) {
          std::lock_guard lock(mutex_);
          flush_locked(workers_[static_cast<std::size_t>(owner)]);
        }
      }
    }
    // Reports after the channels: a worker's last results are read before its
    // exit is handled (worker_exited drains the channel again anyway).
    for (std::size_t k = 0; k < fds.size(); ++k) {
      if (fds[k].revents == 0 || owners[k] != -2) continue;
      read_reports(done);
      if ((fds[k].revents & POLLOUT) != 0) zygote_.flush();
    }
    for (std::size_t k = 0; k < fds.size(); ++k) {
      if (fds[k].revents == 0 || owners[k] != -3) continue;
      // The zygote died (someone killed it): its workers die with it
      // (PDEATHSIG). Read what they sent, then fail everything unfinished.
      read_reports(done);
      for (int i = 0; i < processes_; ++i) {
        if (workers_[static_cast<std::size_t>(i)].channel) read_worker(i, done);
      }
      const std::string why =
          zygote_.reap_dead() + "; its workers died with it and the pool can run nothing more";
      std::lock_guard lock(mutex_);
      zygote_alive_ = false;
      for (auto& worker : workers_) {
        worker.state = WorkerState::absent;
        worker.channel.reset();
        worker.pidfd.reset();
      }
      break_pool_locked(lost_failure(why), done);
    }
    {
      std::lock_guard lock(mutex_);
      dispatch_locked();
    }
    deliver(done);
  }
}

// PoolCore::finish_workers_and_zygote(): the supervisor's last act: ask the
// zygote to kill and reap what is left, reap the zygote, close everything.
void PoolCore::finish_workers_and_zygote() noexcept {
  zygote_.shutdown_and_reap();
  std::lock_guard lock(mutex_);
  zygote_alive_ = false;
  for (auto& worker : workers_) {
    worker.state = WorkerState::absent;
    worker.channel.reset();
    worker.pidfd.reset();
    worker.outbox.clear();
    worker.inbox.clear();
  }
  state_ = PoolState::finished;
}

void PoolCore::request_spawn_locked(int index, std::vector<Completion>& done) {
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
  // INV1: a new worker starts with a clean slot. The zygote forks it after
  // receiving our request, so this store is visible to it.
  slots_[index].started_task.store(
      0, std::memory_order_relaxed);  // ordered before the fork by the sendmsg below
  // Named as Python names a forked pool worker (ForkPoolWorker-N), numbered
  // with the owner's other children.
  const ProcessInfo info = next_child_info("ForkPoolWorker");
  zygote_.request_spawn(index, std::move(theirs),
                        ProcessInfoAccess::identity(info));  // never blocks (defect 11)
  worker = WorkerEntry{};
  worker.state = WorkerState::launching;
  worker.channel = std::move(ours);
}

std::size_t PoolCore::room_locked(const WorkerEntry& worker) const {
  if (worker.state != WorkerState::launching && worker.state != WorkerState::running) return 0;
  if (!worker.channel || worker.channel_eof) return 0;
  std::size_t window = 2;
  if (worker.measured) {
    const double average = std::max(worker.average_run_ns, 1.0);
    window =
        static_cast<std::size_t>(std::clamp(kWindowBudgetNs / average, 1.0, static_cast<double>(kMaxWindow)));
  }
  if (options_.maxtasksperchild != 0) {
    const std::size_t left = options_.maxtasksperchild > worker.chunks_assigned
                                 ? options_.maxtasksperchild - worker.chunks_assigned
                                 : 0;
    window = std::min(window, left);
  }
  return worker.in_flight.size() >= window ? 0 : window - worker.in_flight.size();
}

// PoolCore::dispatch_locked(): moves queued chunks to the workers with room,
// fewest in flight first, then writes what it can without blocking.
void PoolCore::dispatch_locked() {
  if (broken_ || !zygote_alive_ || state_ == PoolState::terminating || state_ == PoolState::finished) return;
  bool any = false;
  while (!pending_.empty()) {
    WorkerEntry* best = nullptr;
    for (auto& worker : workers_) {
      if (room_locked(worker) == 0) continue;
      if (best == nullptr || worker.in_flight.size() < best->in_flight.size()) best = &worker;
    }
    if (best == nullptr) break;
    QueuedChunk& chunk = pending_.front();
    TaskHeader header{static_cast<std::uint32_t>(ToWorker::run_chunk), chunk.item_count, chunk.task_id,
                      static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(chunk.runner)),
                      chunk.payload.size()};
    const auto* raw = reinterpret_cast<const std::byte*>(&header);
    best->outbox.insert(best->outbox.end(), raw, raw + sizeof header);
    best->outbox.insert(best->outbox.end(), chunk.payload.begin(), chunk.payload.end());
    ++best->chunks_assigned;
    best->in_flight.push_back(std::move(chunk));
    pending_.pop_front();
    any = true;
  }
  if (!any) return;
  for (auto& worker : workers_) {
    if (worker.outbox_sent < worker.outbox.size()) flush_locked(worker);
  }
}

// PoolCore::flush_locked(worker): writes the worker's outbox without blocking.
void PoolCore::flush_locked(WorkerEntry& worker) {
  while (worker.outbox_sent < worker.outbox.size()) {
    const ssize_t n = ::send(worker.channel.get(), worker.outbox.data() + worker.outbox_sent,
                             worker.outbox.size() - worker.outbox_sent, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      worker.outbox_sent += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;  // the loop polls for POLLOUT
    // EPIPE/ECONNRESET: the worker is dead; its exit report requeues or fails its chunks.
    break;
  }
  worker.outbox.clear();
  worker.outbox_sent = 0;
}

// PoolCore::read_worker(index, done): everything the worker has sent so far.
void PoolCore::read_worker(int index, std::vector<Completion>& done) {
  WorkerEntry& worker = workers_[static_cast<std::size_t>(index)];
  const int fd = worker.channel.get();
  if (fd < 0 || worker.channel_eof) return;
  constexpr std::size_t kReadSize = std::size_t{1} << 16;
  std::size_t budget = std::size_t{8} << 20;  // then let the other workers have a turn
  while (budget > 0) {
    const std::size_t old_size = worker.inbox.size();
    worker.inbox.resize(old_size + kReadSize);
    const ssize_t n = ::read(fd, worker.inbox.data() + old_size, kReadSize);
    worker.inbox.resize(old_size + static_cast<std::size_t>(std::max<ssize_t>(n, 0)));
    if (n > 0) {
      budget -= std::min(budget, static_cast<std::size_t>(n));
      if (static_cast<std::size_t>(n) < kReadSize) break;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
      std::lock_guard lock(mutex_);
      worker.channel_eof = true;  // read by room_locked() in callers
    }
    break;
  }
  parse_frames(index, done);
}

// PoolCore::parse_frames(index, done): the complete frames in the inbox.
void PoolCore::parse_frames(int index, std::vector<Completion>& done) {
  WorkerEntry& worker = workers_[static_cast<std::size_t>(index)];
  struct Frame {
    ResultHeader header;
    std::size_t offset;
  };
  std::vector<Frame> frames;
  std::size_t at = 0;
  while (worker.inbox.size() - at >= sizeof(ResultHeader)) {
    ResultHeader header;
    std::memcpy(&header, worker.inbox.data() + at, sizeof header);
    if (worker.inbox.size() - at - sizeof header < header.payload_size) break;
    frames.push_back({header, at + sizeof header});
    at += sizeof header + header.payload_size;
  }
  if (frames.empty()) return;
  auto payload_of = [&](const Frame& frame) {
    return std::vector<std::byte>(
        worker.inbox.begin() + static_cast<std::ptrdiff_t>(frame.offset),
        worker.inbox.begin() + static_cast<std::ptrdiff_t>(frame.offset + frame.header.payload_size));
  };
  auto remote_error = [&](const Frame& frame, const std::string& prefix) {
    std::vector<std::byte> bytes = payload_of(frame);
    std::uint32_t type_size = 0;
    std::string type = "unknown exception";
    std::string message;
    if (bytes.size() >= sizeof type_size) {
      std::memcpy(&type_size, bytes.data(), sizeof type_size);
      if (bytes.size() - sizeof type_size >= type_size) {
        const char* text = reinterpret_cast<const char*>(bytes.data()) + sizeof type_size;
        type.assign(text, type_size);
        message.assign(text + type_size, bytes.size() - sizeof type_size - type_size);
      }
    }
    return remote_failure(type, prefix + message);
  };
  {
    std::lock_guard lock(mutex_);
    for (const Frame& frame : frames) {
      const auto kind = static_cast<FromWorker>(frame.header.kind);
      if (kind == FromWorker::ready) {
        worker.ready = true;
        if (worker.state == WorkerState::launching) worker.state = WorkerState::running;
        startup_deaths_ = 0;
        continue;
      }
      if (kind == FromWorker::initializer_failed) {
        break_pool_locked(
            remote_error(frame, "Pool initializer raised in worker pid " + std::to_string(worker.pid) + ": "),
            done);
        continue;
      }
      auto it = std::find_if(worker.in_flight.begin(), worker.in_flight.end(),
                             [&](const QueuedChunk& c) { return c.task_id == frame.header.task_id; });
      if (it == worker.in_flight.end()) continue;  // failed already (terminate, broken pool)
      const double run_ns = static_cast<double>(frame.header.run_ns);
      worker.average_run_ns = worker.measured ? 0.75 * worker.average_run_ns + 0.25 * run_ns : run_ns;
      worker.measured = true;
      Completion completion;
      completion.job = std::move(it->job);
      completion.chunk = it->chunk_index;
      if (kind == FromWorker::result) {
        completion.bytes = payload_of(frame);
      } else {
        completion.error = remote_error(frame, "");
      }
      done.push_back(std::move(completion));
      worker.in_flight.erase(it);
    }
  }
  worker.inbox.erase(worker.inbox.begin(), worker.inbox.begin() + static_cast<std::ptrdiff_t>(at));
}

// PoolCore::read_reports(done): what the zygote said (spawned, failed, exited).
void PoolCore::read_reports(std::vector<Completion>& done) {
  ZygoteReport report{};
  UniqueFd passed;
  while (zygote_.read_report(report, passed)) {
    if (report.worker_index < 0 || report.worker_index >= processes_) continue;
    const auto kind = static_cast<ZygoteReportKind>(report.kind);
    if (kind == ZygoteReportKind::exited) {
      worker_exited(report, done);
      continue;
    }
    std::lock_guard lock(mutex_);
    WorkerEntry& worker = workers_[static_cast<std::size_t>(report.worker_index)];
    if (kind == ZygoteReportKind::spawned) {
      worker.pid = report.pid;
      worker.pidfd = std::move(passed);
    } else {
      // The zygote could not fork. Nothing ran there; put its chunks back and
      // stop: the system is out of processes or memory.
      for (auto it = worker.in_flight.rbegin(); it != worker.in_flight.rend(); ++it) {
        pending_.push_front(std::move(*it));
      }
      worker = WorkerEntry{};
      break_pool_locked(lost_failure(system_message("fork", "pool worker", report.error)), done);
    }
  }
}

// PoolCore::worker_exited(report, done): the heart of "nothing ever hangs".
void PoolCore::worker_exited(const ZygoteReport& report, std::vector<Completion>& done) {
  const int index = report.worker_index;
  // Everything the dead worker wrote is in its socket: read it all first, so
  // that only the chunk it was running is left without a result.
  read_worker(index, done);
  std::lock_guard lock(mutex_);
  WorkerEntry& worker = workers_[static_cast<std::size_t>(index)];
  // The worker is dead: its slot holds its final value (INV1).
  const std::uint64_t started = slots_[index].started_task.load(
      std::memory_order_acquire);  // pairs with the worker's release store before it ran the task
  const std::string how = describe_exit(report.pid, report.code, report.status);
  std::deque<QueuedChunk> unstarted;
  for (auto& chunk : worker.in_flight) {
    if (chunk.task_id == started) {
      Completion lost;
      lost.job = std::move(chunk.job);
      lost.chunk = chunk.chunk_index;
      lost.error = lost_failure(how + " while running the task");
      done.push_back(std::move(lost));
    } else {
      unstarted.push_back(std::move(chunk));
    }
  }
  for (auto it = unstarted.rbegin(); it != unstarted.rend(); ++it) pending_.push_front(std::move(*it));
  const bool was_ready = worker.ready;
  worker = WorkerEntry{};
  if (!was_ready && !broken_ && state_ != PoolState::terminating) {
    if (++startup_deaths_ >= kMaxStartupDeaths) {
      break_pool_locked(
          lost_failure("pool workers keep dying before their initializer returned (last: " + how + ")"),
          done);
    }
  }
  const bool work_left =
      !pending_.empty() || std::any_of(workers_.begin(), workers_.end(),
                                       [](const WorkerEntry& w) { return !w.in_flight.empty(); });
  const bool replace = !broken_ && zygote_alive_ &&
                       (state_ == PoolState::running || (state_ == PoolState::closed && work_left));
  if (replace) request_spawn_locked(index, done);
}

void PoolCore::fail_everything_locked(const FailurePtr& error, std::vector<Completion>& done) {
  auto fail = [&](QueuedChunk& chunk) {
    Completion failed;
    failed.job = std::move(chunk.job);
    failed.chunk = chunk.chunk_index;
    failed.error = error;
    done.push_back(std::move(failed));
  };
  for (auto& chunk : pending_) fail(chunk);
  pending_.clear();
  for (auto& worker : workers_) {
    for (auto& chunk : worker.in_flight) fail(chunk);
    worker.in_flight.clear();
  }
}

void PoolCore::break_pool_locked(FailurePtr error, std::vector<Completion>& done) {
  if (!broken_) broken_ = std::move(error);
  fail_everything_locked(broken_, done);
}

void PoolCore::deliver(std::vector<Completion>& done) noexcept {
  // One wake-up per job per batch: an imap consumer reads every chunk that
  // finished since it last looked.
  std::vector<JobState*> to_notify;
  for (auto& completion : done) {
    const bool notify = completion.error
                            ? completion.job->fail_chunk(completion.chunk, completion.error)
                            : completion.job->complete_chunk(completion.chunk, std::move(completion.bytes));
    if (notify && std::find(to_notify.begin(), to_notify.end(), completion.job.get()) == to_notify.end()) {
      to_notify.push_back(completion.job.get());
    }
  }
  for (JobState* job : to_notify) job->notify_waiters();  // `done` still owns every job
  done.clear();
}

void PoolCore::wake() noexcept {
  const std::uint64_t one = 1;
  (void)!::write(wake_fd_.get(), &one, sizeof one);
}

void PoolCore::check_running(const char* method) const {
  std::lock_guard lock(mutex_);
  if (state_ != PoolState::running) {
    throw ValueError(std::string(method) +
                     ": the Pool is not running (close() or terminate() was called); make a new Pool");
  }
}

void PoolCore::submit(const char* method, const std::shared_ptr<JobState>& job,
                      std::vector<ChunkSpec> chunks) {
  std::vector<Completion> done;
  {
    std::lock_guard lock(mutex_);
    if (state_ != PoolState::running) {
      throw ValueError(std::string(method) +
                       ": the Pool is not running (close() or terminate() was called); make a new Pool");
    }
    for (std::size_t i = 0; i < chunks.size(); ++i) {
      QueuedChunk chunk;
      chunk.task_id = next_task_id_++;
      chunk.job = job;
      chunk.chunk_index = static_cast<std::uint32_t>(i);
      chunk.runner = chunks[i].runner;
      chunk.item_count = chunks[i].item_count;
      chunk.payload = std::move(chunks[i].payload);
      pending_.push_back(std::move(chunk));
    }
    if (broken_) {
      fail_everything_locked(broken_, done);
    } else {
      dispatch_locked();
      // A write that would block is the supervisor's to finish (POLLOUT).
      const bool stalled = std::any_of(workers_.begin(), workers_.end(),
                                       [](const WorkerEntry& w) { return w.outbox_sent < w.outbox.size(); });
      if (stalled) wake();
    }
  }
  deliver(done);
}

void PoolCore::close() {
  std::lock_guard lock(mutex_);
  if (state_ == PoolState::running) state_ = PoolState::closed;
  wake();
}

void PoolCore::terminate() {
  {
    std::lock_guard lock(mutex_);
    if (state_ == PoolState::running || state_ == PoolState::closed) state_ = PoolState::terminating;
    wake();
  }
  join();
}

void PoolCore::join() {
  {
    std::lock_guard lock(mutex_);
    if (state_ == PoolState::running) {
      throw ValueError("Pool::join(): call close() or terminate() first (the pool is still running)");
    }
  }
  std::lock_guard lock(join_mutex_);
  if (supervisor_.joinable()) supervisor_.join();
}

}  // namespace detail

// ---- mp::Pool ---------------------------------------------------------------------------------

Pool::Pool(int processes, PoolOptions options) {
  if (processes < 0) {
    throw ValueError("Pool(processes): processes must be at least 1 (or 0 for cpu_count()), not " +
                     std::to_string(processes));
  }
  if (processes == 0) processes = detail::pool_cpu_count();
  core_ = std::make_unique<detail::PoolCore>(processes, options);
}

Pool::Pool(Pool&& other) noexcept = default;

Pool::~Pool() {
  if (!core_) return;
  if (core_->foreign()) {
    // A forked copy of the owner's Pool: the supervisor thread and the
    // workers belong to the owner. Nothing here to close, join or free safely.
    (void)core_.release();
    return;
  }
  try {
    core_->close();
    core_->join();
  } catch (...) {
  }
}

namespace {
void check_usable(const char* method, const std::unique_ptr<detail::PoolCore>& core) {
  if (!core) throw ValueError(std::string(method) + ": this Pool was moved from");
  if (core->foreign()) {
    throw ValueError(std::string(method) +
                     ": this Pool belongs to the process that created it; a forked child cannot use it");
  }
}
}  // namespace

void Pool::check_running(const char* method) const {
  check_usable(method, core_);
  core_->check_running(method);
}

std::shared_ptr<detail::JobState> Pool::submit(const char* method, std::vector<detail::ChunkSpec> chunks) {
  check_usable(method, core_);
  std::vector<std::uint32_t> counts;
  counts.reserve(chunks.size());
  for (const auto& chunk : chunks) counts.push_back(chunk.item_count);
  auto job = std::make_shared<detail::JobState>(std::move(counts));
  if (!chunks.empty()) core_->submit(method, job, std::move(chunks));
  return job;
}

void Pool::close() {
  check_usable("Pool::close()", core_);
  core_->close();
}

void Pool::terminate() {
  check_usable("Pool::terminate()", core_);
  core_->terminate();
}

void Pool::join() {
  check_usable("Pool::join()", core_);
  core_->join();
}

int Pool::processes() const noexcept { return core_ ? core_->processes() : 0; }

}  // namespace mp
