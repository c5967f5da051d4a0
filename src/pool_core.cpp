// src/pool_core.cpp — PoolCore: lifecycle and submission (the callers'
// threads), and what callers and the supervisor share: dispatching under
// mutex_ and delivering outcomes outside it. See pool_core.hpp for the roles
// and locks.
#include "pool_core.hpp"

#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <iostream>
#include <string>

#include "mp/detail/pool_testing.hpp"
#include "mp/detail/shm.hpp"
#include "mp/detail/system_error.hpp"

namespace mp::detail {

using namespace pool_wire;

namespace {
// Read at Pool construction, set before it by a test: relaxed is enough.
std::atomic<int> g_control_buffer_for_testing{0};
}  // namespace

void set_pool_control_buffer_for_testing(int bytes) noexcept {
  g_control_buffer_for_testing.store(bytes, std::memory_order_relaxed);  // relaxed: see its definition
}

int pool_cpu_count() noexcept {
  const long online = ::sysconf(_SC_NPROCESSORS_ONLN);
  return online < 1 ? 1 : static_cast<int>(online);
}

PoolCore::PoolCore(int processes, PoolOptions options)
    : processes_(processes),
      options_(options),
      zygote_(g_control_buffer_for_testing.load(std::memory_order_relaxed)),  // relaxed: see its definition
      dispatcher_(processes, options.maxtasksperchild),
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

// PoolCore::dispatch_locked(): hands queued chunks to the workers with room
// (Dispatcher::assign) and writes what the sockets take without blocking.
void PoolCore::dispatch_locked() {
  if (broken_ || !zygote_alive_ || state_ == PoolState::terminating || state_ == PoolState::finished) return;
  for (const Dispatcher::Assignment& sent : dispatcher_.assign()) {
    workers_[static_cast<std::size_t>(sent.worker)].channel.send_chunk(*sent.chunk);
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
      // A write that would block is the supervisor's to finish (POLLOUT).
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
