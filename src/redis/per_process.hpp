// src/redis/per_process.hpp — the state a handle keeps for the process using it (private).
//
// PerProcess<State>: sockets, consumer identity, background threads. A child
// forked after the handle was made must not use the parent's sockets or
// threads, so the first call in a new process abandons the inherited state
// (State::abandon_after_fork() closes what it safely can; the rest is leaked on
// purpose: the threads behind it do not exist in the child) and builds a fresh one.
#pragma once

#include <unistd.h>

#include <atomic>
#include <memory>
#include <mutex>

namespace mp::redis::impl {

// Objects abandoned in a forked child: kept reachable (so leak checkers stay
// quiet) and never destroyed (their threads live only in the parent).
void keep_forever(std::shared_ptr<void> object);

template <class State>
class PerProcess {
 public:
  explicit PerProcess(std::shared_ptr<State> state) : state_(std::move(state)), pid_(::getpid()) {}
  PerProcess(const PerProcess&) = delete;
  PerProcess& operator=(const PerProcess&) = delete;
  ~PerProcess() {
    if (pid_.load(std::memory_order_relaxed) != ::getpid() && state_) abandon();
  }

  // PerProcess::get(make): this process's state; builds one with make() in a new process.
  template <class Make>
  State& get(Make&& make) {
    pid_t me = ::getpid();
    // pairs with the release store below: a thread that sees its own pid sees the state built for it
    if (pid_.load(std::memory_order_acquire) == me) return *state_;
    std::lock_guard lock(mutex_);
    if (pid_.load(std::memory_order_relaxed) != me) {
      if (state_) abandon();
      state_ = make();
      pid_.store(me, std::memory_order_release);  // pairs with the acquire load above
    }
    return *state_;
  }
  // PerProcess::owned(): the state, if it was built by this process.
  [[nodiscard]] State* owned() noexcept {
    // pairs with the release store in get(): the state built for this pid is visible
    return pid_.load(std::memory_order_acquire) == ::getpid() ? state_.get() : nullptr;
  }

 private:
  void abandon() {
    state_->abandon_after_fork();
    keep_forever(std::move(state_));
  }

  std::mutex mutex_;
  std::shared_ptr<State> state_;
  std::atomic<pid_t> pid_;
};

}  // namespace mp::redis::impl
