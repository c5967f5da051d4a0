// src/pool_core.cpp — PoolCore: lifecycle and submission (the callers'
// threads), and what callers and the supervisor share: dispatching under
// mutex_ and delivering outcomes outside it. See pool_core.hpp for the roles
// and locks.
#include "pool_core.hpp"

#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <iostream>
#include <string>

#include "mp/detail/pool_testing.hpp"
#include "mp/detail/shm.hpp"
#include "mp/detail/system_error.hpp"
#include "start_methods.hpp"

namespace mp::detail {

using namespace pool_wire;

namespace {
// Read at Pool construction, set before it by a test: relaxed is enough.
std::atomic<int> g_control_buffer_for_testing{0};

// Forks since the first Pool, counted in each child by an atfork handler
// (mp forks only with fork(), which runs them; see thread_identity.hpp), so
// PoolCore::foreign() costs a load instead of a getpid() system call.
// Relaxed: a process reads its own count; a child starts from the parent's
// copy, incremented once in the child by the handler before it returns.
std::atomic<std::uint64_t> g_fork_generation{0};
void count_fork_in_child() noexcept { g_fork_generation.fetch_add(1, std::memory_order_relaxed); }

// counting_forks(): registers the handler once; false if the C library
// refused (then foreign() asks getpid()).
bool counting_forks() noexcept {
  static const bool registered = (::pthread_atfork(nullptr, nullptr, &count_fork_in_child) == 0);
  return registered;
}
std::uint64_t fork_generation() noexcept {
  return g_fork_generation.load(std::memory_order_relaxed);  // relaxed: see g_fork_generation
}
}  // namespace

bool PoolCore::foreign() const noexcept {
  return counting_forks_ ? fork_generation() != owner_generation_ : ::getpid() != owner_;
}

void set_pool_control_buffer_for_testing(int bytes) noexcept {
  g_control_buffer_for_testing.store(bytes, std::memory_order_relaxed);  // relaxed: see its definition
}

int pool_cpu_count() noexcept {
  const long online = ::sysconf(_SC_NPROCESSORS_ONLN);
  return online < 1 ? 1 : static_cast<int>(online);
}

// PoolCore::CancelGate: AsyncResult::cancel() and waiting threads reach the
// pool through it. The destructor detaches the pool first (gate mutex, then
// collect_mutex_, then mutex_); detach() waits for the threads that are
// waiting through the pool to leave it (they do once the pool's result ring
// is shut down, which terminate() has done by then).
class PoolCore::CancelGate final : public JobCanceller {
 public:
  explicit CancelGate(PoolCore* core) : core_(core) {}
  bool cancel(const std::shared_ptr<JobState>& job) override {
    std::lock_guard lock(mutex_);
    // In a process forked from the owner the pool is not ours to touch.
    return core_ != nullptr && !core_->foreign() && core_->cancel(job);
  }
  WaitThroughPool wait_for_change(ChangeProbe changed, const Deadline& deadline) noexcept override {
    PoolCore* core = nullptr;
    {
      std::lock_guard lock(mutex_);
      if (core_ == nullptr || core_->foreign()) return WaitThroughPool::unavailable;
      core = core_;
      ++inside_;
    }
    const WaitThroughPool outcome = core->wait_for_change(changed, deadline);
    std::lock_guard lock(mutex_);
    if (--inside_ == 0) left_.notify_all();
    return outcome;
  }
  void detach() {
    std::unique_lock lock(mutex_);
    core_ = nullptr;
    left_.wait(lock, [&] { return inside_ == 0; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable left_;  // inside_ reached 0
  PoolCore* core_;                // guarded by mutex_
  int inside_ = 0;                // guarded by mutex_: threads in core_->wait_for_change()
};

PoolCore::PoolCore(int processes, PoolOptions options)
    : processes_(processes),
      options_(options),
      method_(options.start_method.value_or(get_start_method())),
      counting_forks_(counting_forks()),
      owner_generation_(fork_generation()),
      result_ring_(Ring::create(0, kDefaultRingCapacity, RingPacing::closed_loop)),
      zygote_(g_control_buffer_for_testing.load(std::memory_order_relaxed)),  // relaxed: see its definition
      dispatcher_(processes, options.maxtasksperchild),
      workers_(static_cast<std::size_t>(processes)),
      cancel_gate_(std::make_shared<CancelGate>(this)) {
  if (options.task_timeout.count() < 0) {
    throw ValueError("Pool(options): task_timeout must be 0 (none) or positive, not " +
                     std::to_string(options.task_timeout.count()) + " ms");
  }
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
    reset_slot_locked(i);  // no other thread yet
  }
  // Made before the zygote's fork: every worker inherits them (pool_wire.hpp).
  task_rings_.reserve(static_cast<std::size_t>(processes));
  for (int i = 0; i < processes; ++i)
    task_rings_.push_back(Ring::create(0, kDefaultRingCapacity, RingPacing::closed_loop));

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

  note_process_started();  // set_start_method() now needs force (API.md)
  if (method_ == StartMethod::fork) warn_if_forking_with_threads(options.start_method.has_value());
  supervisor_ = std::thread([this] { supervise(); });
  std::unique_lock lock(startup_mutex_);
  startup_changed_.wait(lock, [&] { return startup_done_; });
  if (startup_error_ != nullptr) {
    lock.unlock();
    supervisor_.join();
    std::rethrow_exception(startup_error_);
  }
}

PoolCore::~PoolCore() {
  try {
    terminate();
  } catch (...) {
  }
  cancel_gate_->detach();
}

// PoolCore::reset_slot_locked(index): a clean slot for a new worker (INV1-3).
// The zygote forks it after receiving the spawn request, so these stores are
// visible to it.
void PoolCore::reset_slot_locked(int index) {
  WorkerSlot& slot = slots_[index];
  slot.started_task.store(0, std::memory_order_relaxed);   // ordered before the fork by the request's sendmsg
  slot.running_task.store(0, std::memory_order_relaxed);   // same
  slot.timeout_at_ns.store(0, std::memory_order_relaxed);  // same
  for (auto& entry : slot.cancelled) entry.store(0, std::memory_order_relaxed);  // same
  slot.cancel_count.store(0, std::memory_order_relaxed);                         // same
}

std::weak_ptr<JobCanceller> PoolCore::canceller() const {
  return std::shared_ptr<JobCanceller>(cancel_gate_);
}

// PoolCore::cancel(job)
bool PoolCore::cancel(const std::shared_ptr<JobState>& job) {
  {
    std::lock_guard lock(mutex_);
    if (!job->cancel_pending()) return false;  // ready already: it delivers (or failed) as it is
    for (const Dispatcher::InFlight& chunk : dispatcher_.cancel(job.get())) {
      stop_in_worker_locked(chunk.worker, chunk.task_id);
    }
    callbacks_due_.push_back(job);  // callbacks run on the supervisor thread
    wake();
  }
  job->notify_waiters();
  wake_leader();  // a leading waiter may wait for this job (INV5)
  return true;
}

void PoolCore::stop_in_worker_locked(int index, std::uint64_t task_id) {
  WorkerSlot& slot = slots_[index];
  for (auto& entry : slot.cancelled) {
    if (entry.load(std::memory_order_relaxed) != 0) continue;   // relaxed: only we write entries (mutex_)
    entry.store(task_id, std::memory_order_seq_cst);            // INV3: pairs with the worker's seq_cst loads
    slot.cancel_count.fetch_add(1, std::memory_order_seq_cst);  // INV3: pairs with the worker's seq_cst load
    break;
  }
  if (slot.running_task.load(std::memory_order_seq_cst) ==
      task_id)  // INV3: pairs with the worker's seq_cst store
    signal_cancel_locked(index);
}

void PoolCore::signal_cancel_locked(int index) {
  WorkerEntry& worker = workers_[static_cast<std::size_t>(index)];
  if (!worker.pidfd) {
    worker.cancel_signal_due = true;  // sent when the zygote hands us its pidfd
    return;
  }
  ::syscall(SYS_pidfd_send_signal, worker.pidfd.get(), cancel_signal(), nullptr, 0);
}

void PoolCore::clear_cancel_mark_locked(int index, std::uint64_t task_id) {
  WorkerSlot& slot = slots_[index];
  if (slot.cancel_count.load(std::memory_order_relaxed) == 0) return;  // relaxed: only we write it (mutex_)
  for (auto& entry : slot.cancelled) {
    if (entry.load(std::memory_order_relaxed) != task_id)
      continue;                                                 // relaxed: only we write entries (mutex_)
    entry.store(0, std::memory_order_relaxed);                  // relaxed: the worker is done with this task
    slot.cancel_count.fetch_sub(1, std::memory_order_relaxed);  // relaxed: a stale nonzero only costs a scan
  }
}

// PoolCore::dispatch_locked(): hands queued chunks to the workers with room
// (Dispatcher::assign) and puts each worker's batch into its ring as one
// record (never blocking).
void PoolCore::dispatch_locked() {
  if (broken_ || !zygote_alive_ || state_ == PoolState::terminating || state_ == PoolState::finished) return;
  const std::vector<Dispatcher::Assignment> assigned = dispatcher_.assign();
  if (assigned.empty()) return;
  for (const Dispatcher::Assignment& sent : assigned) {
    workers_[static_cast<std::size_t>(sent.worker)].channel.send_chunk(*sent.chunk);
  }
  for (auto& worker : workers_) {
    if (worker.channel.wants_write()) worker.channel.flush();  // one record per worker for the batch
  }
}

void PoolCore::fail_everything_locked(const FailurePtr& error, std::vector<Completion>& done) {
  for (QueuedChunk& chunk : dispatcher_.take_all()) {
    Completion failed;
    failed.job = std::move(chunk.job);
    failed.chunk = chunk.chunk_index;
    failed.error = error;
    done.push_back(std::move(failed));
  }
}

void PoolCore::break_pool_locked(FailurePtr error, std::vector<Completion>& done) {
  if (!broken_) broken_ = std::move(error);
  fail_everything_locked(broken_, done);
}

namespace {
// IndexList: indices into a delivery's completions, the first few without
// allocating (a round trip delivers one completion).
class IndexList {
 public:
  void add(std::size_t index) {
    if (count_ < inline_.size()) {
      inline_[count_] = index;
    } else {
      more_.push_back(index);
    }
    ++count_;
  }
  [[nodiscard]] std::size_t size() const noexcept { return count_; }
  [[nodiscard]] std::size_t operator[](std::size_t i) const noexcept {
    return i < inline_.size() ? inline_[i] : more_[i - inline_.size()];
  }

 private:
  std::array<std::size_t, 8> inline_{};
  std::size_t count_ = 0;
  std::vector<std::size_t> more_;
};

// add_job_once(list, done, index): adds index unless list has a completion of the same job.
void add_job_once(IndexList& list, const std::vector<Completion>& done, std::size_t index) {
  const JobState* job = done[index].job.get();
  for (std::size_t i = list.size(); i-- > 0;) {
    if (done[list[i]].job.get() == job) return;
  }
  list.add(index);
}
}  // namespace

void PoolCore::deliver(std::vector<Completion>& done, bool on_pool_thread) noexcept {
  // One wake-up per job per batch: an imap consumer reads every chunk that
  // finished since it last looked.
  IndexList to_notify;  // the first completion of each job to wake
  IndexList touched;    // the first completion of each job
  for (std::size_t i = 0; i < done.size(); ++i) {
    Completion& completion = done[i];
    const bool notify = completion.error
                            ? completion.job->fail_chunk(completion.chunk, completion.error)
                            : completion.job->complete_chunk(completion.chunk, std::move(completion.bytes));
    if (notify) add_job_once(to_notify, done, i);
    add_job_once(touched, done, i);
  }
  for (std::size_t i = 0; i < to_notify.size(); ++i)
    done[to_notify[i]].job->notify_waiters();  // `done` still owns every job
  if (on_pool_thread && to_notify.size() > 0) wake_leader();
  // Done callbacks of the jobs that became ready, once each (take_callbacks
  // empties the list).
  bool handed_over = false;
  for (std::size_t i = 0; i < touched.size(); ++i) {
    const std::shared_ptr<JobState>& job = done[touched[i]].job;
    if (!on_pool_thread) {
      if (!job->has_callbacks()) continue;
      try {
        std::lock_guard lock(mutex_);
        callbacks_due_.push_back(job);  // run_due_callbacks(), on the supervisor
        handed_over = true;
      } catch (...) {
      }
      continue;
    }
    std::vector<JobState::DoneCallback> callbacks = job->take_callbacks();
    if (!callbacks.empty()) JobState::run_callbacks(job, callbacks);
  }
  if (handed_over) wake();
  done.clear();
}

void PoolCore::wake_leader() noexcept {
  // W1 was the jobs' notify_waiters() (their changes_ increment), which a
  // leader's wait condition reads with acquire loads (pool_collector.cpp).
  result_ring_.header()->not_empty.notify_all();
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
      chunk.job = job;
      chunk.chunk_index = static_cast<std::uint32_t>(i);
      chunk.runner = chunks[i].runner;
      chunk.item_count = chunks[i].item_count;
      chunk.payload = std::move(chunks[i].payload);
      (void)dispatcher_.submit(std::move(chunk));
    }
    if (broken_) {
      fail_everything_locked(broken_, done);
    } else {
      dispatch_locked();
      // A batch its ring cannot take now is the supervisor's to retry.
      const bool stalled = std::any_of(workers_.begin(), workers_.end(),
                                       [](const WorkerEntry& w) { return w.channel.wants_write(); });
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

}  // namespace mp::detail
