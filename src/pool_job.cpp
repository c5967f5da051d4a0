// src/pool_job.cpp — JobState: the outcomes of one Pool submission.
#include "mp/detail/pool_job.hpp"

#include <cassert>
#include <cstdio>
#include <exception>
#include <utility>

namespace mp::detail {

JobState::JobState(std::vector<std::uint32_t> item_counts, std::shared_ptr<EventCount> events)
    : item_counts_(std::move(item_counts)),
      changed_(events ? std::move(events) : std::make_shared<EventCount>()),
      chunks_(item_counts_.size()),
      remaining_(item_counts_.size()) {
  finish_order_.reserve(item_counts_.size());
}

// JobState::complete_chunk(chunk, bytes)
bool JobState::complete_chunk(std::size_t chunk, std::vector<std::byte> bytes) noexcept {
  bool notify = false;
  {
    std::lock_guard lock(mutex_);
    if (chunk >= chunks_.size() || chunks_[chunk].status != ChunkStatus::pending) return false;
    chunks_[chunk].bytes = std::move(bytes);
    chunks_[chunk].status = ChunkStatus::done;  // transition pending -> done
    finish_order_.push_back(chunk);
    --remaining_;
    notify = must_notify_locked();
  }
  return notify;
}

// JobState::fail_chunk(chunk, error)
bool JobState::fail_chunk(std::size_t chunk, FailurePtr error) noexcept {
  assert(error != nullptr);
  bool notify = false;
  {
    std::lock_guard lock(mutex_);
    if (chunk >= chunks_.size() || chunks_[chunk].status != ChunkStatus::pending) return false;
    chunks_[chunk].error = error;
    chunks_[chunk].status = ChunkStatus::failed;  // transition pending -> failed
    finish_order_.push_back(chunk);
    --remaining_;
    if (first_error_ == nullptr) first_error_ = std::move(error);
    notify = must_notify_locked();
  }
  return notify;
}

// JobState::wait_locked(lock, done, deadline)
// A waiter registers under mutex_ (job_waiters_ / chunk_waiters_) and reads
// changes_ in the same critical section in which it found done() false. A
// notifier changes the state under mutex_, sees the waiter there, and bumps
// changes_ after unlocking; so the bump comes after the waiter's read, and
// whatever the waiter sleeps on is notified after the bump (the event count
// protocol's W1 is the bump): changed_ by notify_waiters(), and the pool's
// result ring by the pool whenever it notifies a job that a leading waiter
// may be waiting for (pool_collector.cpp, "Waiting threads").
// While the pool is there, the wait goes through it (wait_for_change): the
// waiting thread takes the pool's results itself when no other thread does.
template <class Done>
bool JobState::wait_locked(std::unique_lock<std::mutex>& lock, Done done, const Deadline& deadline) const {
  bool through_pool = true;  // false once the pool said it cannot be waited through
  while (!done()) {
    struct Probe {
      const std::atomic<std::uint64_t>* changes;
      std::uint64_t seen;
      static bool changed(const void* context) noexcept {
        const auto* probe = static_cast<const Probe*>(context);
        return probe->changes->load(std::memory_order_acquire) !=
               probe->seen;  // pairs with notify_waiters()'s release: the outcome is visible
      }
    };
    // Acquire: pairs with notify_waiters()'s release increment.
    const Probe probe{&changes_, changes_.load(std::memory_order_acquire)};
    lock.unlock();
    const auto changed = [&] { return Probe::changed(&probe); };
    const std::shared_ptr<JobCanceller> pool = through_pool ? canceller_.lock() : nullptr;
    const WaitThroughPool outcome =
        pool ? pool->wait_for_change(ChangeProbe{&probe, &Probe::changed}, deadline)
             : WaitThroughPool::unavailable;
    bool moved = outcome == WaitThroughPool::changed;
    if (outcome == WaitThroughPool::unavailable) through_pool = false;
    if (outcome == WaitThroughPool::unavailable || outcome == WaitThroughPool::handed_off)
      moved = changed_->await(changed, deadline);
    lock.lock();
    if (!moved) return done();
  }
  return true;
}

// JobState::wait(deadline)
bool JobState::wait(const Deadline& deadline) const {
  std::unique_lock lock(mutex_);
  if (ready_locked()) return true;
  ++job_waiters_;
  const bool ready = wait_locked(
      lock, [&] { return ready_locked(); }, deadline);
  --job_waiters_;
  return ready;
}

bool JobState::ready() const {
  std::lock_guard lock(mutex_);
  return ready_locked();
}

FailurePtr JobState::first_error() const {
  std::lock_guard lock(mutex_);
  return first_error_;
}

// JobState::wait_chunk(chunk, deadline)
JobState::ChunkStatus JobState::wait_chunk(std::size_t chunk, const Deadline& deadline) const {
  std::unique_lock lock(mutex_);
  auto finished = [&] { return chunks_[chunk].status != ChunkStatus::pending; };
  if (finished()) return chunks_[chunk].status;
  ++chunk_waiters_;
  (void)wait_locked(lock, finished, deadline);
  --chunk_waiters_;
  return chunks_[chunk].status;
}

// JobState::wait_nth_finished(n, deadline)
std::optional<std::size_t> JobState::wait_nth_finished(std::size_t n, const Deadline& deadline) const {
  std::unique_lock lock(mutex_);
  auto arrived = [&] { return finish_order_.size() > n; };
  if (!arrived()) {
    ++chunk_waiters_;
    const bool ok = wait_locked(lock, arrived, deadline);
    --chunk_waiters_;
    if (!ok) return std::nullopt;
  }
  return finish_order_[n];
}

const std::vector<std::byte>& JobState::chunk_bytes(std::size_t chunk) const noexcept {
  return chunks_[chunk].bytes;
}

FailurePtr JobState::chunk_error(std::size_t chunk) const {
  std::lock_guard lock(mutex_);
  return chunks_[chunk].error;
}

void JobState::release_chunk(std::size_t chunk) noexcept {
  std::lock_guard lock(mutex_);
  if (chunks_[chunk].status != ChunkStatus::pending) std::vector<std::byte>().swap(chunks_[chunk].bytes);
}

bool JobState::cancel_pending() {
  std::lock_guard lock(mutex_);
  if (ready_locked()) return false;
  FailurePtr error = cancelled_failure();
  for (std::size_t chunk = 0; chunk < chunks_.size(); ++chunk) {
    if (chunks_[chunk].status != ChunkStatus::pending) continue;
    chunks_[chunk].error = error;
    chunks_[chunk].status = ChunkStatus::failed;  // transition pending -> failed
    finish_order_.push_back(chunk);
    --remaining_;
  }
  first_error_ = std::move(error);
  cancelled_ = true;
  return true;
}

bool JobState::cancelled() const {
  std::lock_guard lock(mutex_);
  return cancelled_;
}

void JobState::add_done_callback(const std::shared_ptr<JobState>& self, DoneCallback callback) {
  {
    std::lock_guard lock(self->mutex_);
    if (!self->ready_locked()) {
      self->callbacks_.push_back(std::move(callback));
      return;
    }
  }
  std::vector<DoneCallback> now;
  now.push_back(std::move(callback));
  run_callbacks(self, now);
}

std::vector<JobState::DoneCallback> JobState::take_callbacks() {
  std::lock_guard lock(mutex_);
  if (!ready_locked()) return {};
  return std::move(callbacks_);
}

bool JobState::has_callbacks() const {
  std::lock_guard lock(mutex_);
  return !callbacks_.empty();
}

void JobState::run_callbacks(const std::shared_ptr<JobState>& self,
                             std::vector<DoneCallback>& callbacks) noexcept {
  for (auto& callback : callbacks) {
    try {
      callback(self);
    } catch (const std::exception& error) {
      std::fprintf(stderr, "mp::Pool: a done callback raised (ignored): %s\n", error.what());
    } catch (...) {
      std::fprintf(stderr, "mp::Pool: a done callback raised a non-std::exception (ignored)\n");
    }
  }
  callbacks.clear();
}

bool JobState::cancel(const std::shared_ptr<JobState>& self) {
  if (auto canceller = self->canceller_.lock()) return canceller->cancel(self);
  // No pool any more: every job of a finished pool is ready.
  return false;
}

}  // namespace mp::detail
