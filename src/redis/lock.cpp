// src/redis/lock.cpp — LockCore: mp::redis::Lock on one Redis primary.
//
// acquire  mp1_lock_acquire: SET lock <token> NX PX lease, and on success INCR fence
//          (the fencing token). Busy: BLPOP the wake list for at most
//          min(time left, the holder's PTTL, 1 s), so a dead holder's lease running out
//          is noticed exactly when it happens, and a release wakes one waiter at once.
// renew    while held, a thread with its own connection runs mp1_lock_extend every lease/3.
// release  mp1_lock_release: DEL lock only if it still holds our token, then LPUSH wake.
//          0 means the lease ran out (and maybe someone else holds it now): LockLost.
// The token is random per process (128 bits); the lock is held by a process.
#include <sys/types.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "link.hpp"
#include "mp/errors.hpp"
#include "mp/redis/core.hpp"
#include "session.hpp"

namespace mp::redis::detail {

using namespace mp::redis::impl;  // NOLINT(google-build-using-namespace): this file implements impl's users

namespace {

std::string seconds_arg(Clock::duration d) {
  double s = std::chrono::duration<double>(d).count();
  if (s < 0.001) s = 0.001;  // 0 would mean "forever" to BLPOP
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", s);
  return buf;
}

// Renews a held lock's lease in the background until stopped or lost.
class Renewer {
 public:
  Renewer(const Endpoint& endpoint, std::string key, std::string token, std::chrono::milliseconds lease)
      : link_(endpoint), key_(std::move(key)), token_(std::move(token)), lease_(lease) {
    thread_ = std::thread([this] { loop(); });
  }
  Renewer(const Renewer&) = delete;
  Renewer& operator=(const Renewer&) = delete;
  ~Renewer() { stop(); }

  // Renewer::stop(): ends the renewals; true if the lease was lost meanwhile.
  bool stop() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
    std::lock_guard lock(mutex_);
    return lost_;
  }
  void abandon_after_fork() noexcept {
    if (link_.fd() >= 0) ::close(link_.fd());
  }

 private:
  void loop() {
    std::unique_lock lock(mutex_);
    while (!stop_ && !lost_) {
      wake_.wait_for(lock, lease_ / 3, [this] { return stop_; });
      if (stop_) break;
      lock.unlock();
      bool ok = true;
      try {
        Command extend{"FCALL", "mp1_lock_extend", "1", key_, token_};
        extend.add(static_cast<long long>(lease_.count()));
        Reply reply = link_.run1(extend, Deadline::after(lease_ / 3));
        ok = !(reply && reply->type == REDIS_REPLY_INTEGER && reply->integer == 0);
      } catch (const LinkFailure&) {  // NOLINT(bugprone-empty-catch): try again next tick
      }
      lock.lock();
      if (!ok) lost_ = true;
    }
  }

  Link link_;
  std::string key_;
  std::string token_;
  std::chrono::milliseconds lease_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;  // guarded by mutex_
  bool lost_ = false;  // guarded by mutex_
  std::thread thread_;
};

}  // namespace

struct ProcessLockState {
  explicit ProcessLockState(const Endpoint& endpoint) : pool(endpoint), token(random_hex(16)) {}
  void abandon_after_fork() noexcept {
    pool.close_after_fork();
    if (renewer) renewer->abandon_after_fork();
    keep_forever(std::shared_ptr<Renewer>(renewer.release()));
  }

  LinkPool pool;
  std::string token;
  std::mutex mutex;  // guards below
  bool held = false;
  std::thread::id holder;  // the thread whose acquire succeeded
  std::uint64_t fence = 0;
  std::unique_ptr<Renewer> renewer;
};

struct LockCore::Impl {
  Impl(std::string_view url, std::string_view lock_name, std::chrono::milliseconds lease_ms, Options opts)
      : endpoint(parse_url(url)),
        name(lock_name),
        lock_key("mpl:{" + name + "}:lock"),
        fence_key("mpl:{" + name + "}:fence"),
        wake_key("mpl:{" + name + "}:wake"),
        lease(lease_ms),
        options(opts),
        described("lock \"" + name + "\""),
        per_process(std::make_shared<ProcessLockState>(endpoint)) {}

  ProcessLockState& local() {
    return per_process.get([this] { return std::make_shared<ProcessLockState>(endpoint); });
  }
  Retry retry(Deadline deadline, const char* what) const {
    return Retry(endpoint, options.server_timeout, deadline, what, described);
  }

  Endpoint endpoint;
  std::string name, lock_key, fence_key, wake_key;
  std::chrono::milliseconds lease;
  Options options;
  std::string described;  // lock "name", for messages
  PerProcess<ProcessLockState> per_process;
};

LockCore::LockCore(std::string_view url, std::string_view name, std::chrono::milliseconds lease,
                   Options options) {
  if (name.empty()) throw mp::ValueError("mp::redis::Lock: the name must not be empty");
  if (lease < std::chrono::milliseconds(30)) {
    throw mp::ValueError("mp::redis::Lock \"" + std::string(name) + "\": the lease must be at least 30 ms");
  }
  impl_ = std::make_unique<Impl>(url, name, lease, options);
}

LockCore::~LockCore() {
  ProcessLockState* state = impl_->per_process.owned();
  if (state == nullptr) return;
  bool held = false;
  {
    std::lock_guard lock(state->mutex);
    held = state->held;
  }
  if (!held) return;
  try {  // a handle dropped while held: free the lock now rather than after its lease
    release();
  } catch (...) {  // NOLINT(bugprone-empty-catch): the lease runs out on its own
  }
}

bool LockCore::acquire(Deadline deadline) {
  auto& state = impl_->local();
  if (deadline.is_never()) {
    std::lock_guard lock(state.mutex);
    if (state.held && state.holder == std::this_thread::get_id()) {
      throw mp::ValueError(
          "mp::redis::Lock \"" + impl_->name +
          "\": acquire() without timeout by the thread that holds it would wait for itself forever");
    }
  }
  auto retry = impl_->retry(deadline, "acquire()");
  auto link = state.pool.take();
  Command attempt{"FCALL", "mp1_lock_acquire", "2", impl_->lock_key, impl_->fence_key, state.token};
  attempt.add(static_cast<long long>(impl_->lease.count()));
  for (;;) {
    auto [won, value] = retry([&] {
      Reply reply = link->run1(attempt, retry.reply_deadline());
      throw_if_error(reply, "acquire() of lock \"" + impl_->name + "\"");
      if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
        throw mp::Error("acquire() of lock \"" + impl_->name + "\": unexpected reply from the server");
      }
      return std::pair<long long, long long>{reply->element[0]->integer, reply->element[1]->integer};
    });
    if (won == 1) {
      std::lock_guard lock(state.mutex);
      state.held = true;
      state.holder = std::this_thread::get_id();
      state.fence = static_cast<std::uint64_t>(value);
      state.renewer = std::make_unique<Renewer>(impl_->endpoint, impl_->lock_key, state.token, impl_->lease);
      return true;
    }
    if (deadline.expired()) return false;
    Clock::duration wait = std::min<Clock::duration>(deadline.remaining(), std::chrono::seconds(1));
    if (value > 0) wait = std::min<Clock::duration>(wait, std::chrono::milliseconds(value));
    if (value == -2) continue;  // freed between the two commands
    retry([&] {
      Reply reply =
          link->run1(Command{"BLPOP", impl_->wake_key, seconds_arg(wait)}, retry.reply_deadline(wait));
      throw_if_error(reply, "acquire() of lock \"" + impl_->name + "\"");
      return 0;
    });
  }
}

void LockCore::release() {
  auto& state = impl_->local();
  std::unique_ptr<Renewer> renewer;
  {
    std::lock_guard lock(state.mutex);
    if (!state.held) {
      throw mp::ValueError("mp::redis::Lock \"" + impl_->name +
                           "\": release() of a lock this process does not hold");
    }
    state.held = false;
    renewer = std::move(state.renewer);
  }
  bool lost = renewer ? renewer->stop() : false;
  renewer.reset();
  auto retry = impl_->retry(Deadline::never(), "release()");
  auto link = state.pool.take();
  long long released = retry([&] {
    Reply reply =
        link->run1(Command{"FCALL", "mp1_lock_release", "2", impl_->lock_key, impl_->wake_key, state.token},
                   retry.reply_deadline());
    throw_if_error(reply, "release() of lock \"" + impl_->name + "\"");
    return reply->integer;
  });
  if (released != 1 || lost) {
    throw mp::LockLost("mp::redis::Lock \"" + impl_->name + "\" on " + impl_->endpoint.url +
                       ": released after its lease (" + std::to_string(impl_->lease.count()) +
                       " ms) had run out; another holder may have had it meanwhile (check fencing_token())");
  }
}

std::uint64_t LockCore::fencing_token() const {
  auto* state = impl_->per_process.owned();
  if (state == nullptr) return 0;
  std::lock_guard lock(state->mutex);
  return state->fence;
}

}  // namespace mp::redis::detail
