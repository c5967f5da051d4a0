// src/redis/lock.cpp — LockCore: mp::redis::Lock on one Redis primary.
//
// acquire  mp2_lock_acquire: SET lock <token> NX PX lease, and on success INCR fence
//          (the fencing token). Busy: BLPOP the wake list for at most
//          min(time left, the holder's PTTL, 1 s), so a dead holder's lease running out
//          is noticed exactly when it happens, and a release wakes one waiter at once.
// renew    while held, a LeaseKeeper (its own connection) runs mp2_lock_extend every lease/3.
// release  mp2_lock_release: DEL lock only if it still holds our token, then LPUSH wake.
//          0 means the lease ran out (and maybe someone else holds it now): LockLost.
// The token is random per process (128 bits); the lock is held by a process.
#include <sys/types.h>
#include <unistd.h>

#include <mutex>
#include <thread>

#include "lease_keeper.hpp"
#include "link_pool.hpp"
#include "mp/errors.hpp"
#include "mp/redis/core.hpp"
#include "per_process.hpp"
#include "retry.hpp"

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

// A held lock's renewal: extend if the key still holds our token; 0 means the lease is lost.
LeaseKeeper::Renew lock_renewal(std::string key, std::chrono::milliseconds lease) {
  return [key = std::move(key), lease](Link& link, const std::string& token,
                                       Deadline deadline) -> std::optional<std::string> {
    Command extend{"FCALL", "mp2_lock_extend", "1", key, token};
    extend.add(static_cast<long long>(lease.count()));
    Reply reply = link.run1(extend, deadline);
    if (integer_of(reply.get(), "renewing a lock's lease") == 0) return std::nullopt;
    return token;
  };
}

}  // namespace

struct ProcessLockState {
  explicit ProcessLockState(const Endpoint& endpoint) : pool(endpoint), token(random_hex(16)) {}
  void abandon_after_fork() noexcept {
    pool.close_after_fork();
    if (keeper) keeper->abandon_after_fork();
    keep_forever(std::shared_ptr<LeaseKeeper>(keeper.release()));
  }

  LinkPool pool;
  std::string token;
  std::mutex mutex;  // guards below
  bool held = false;
  std::thread::id holder;  // the thread whose acquire succeeded
  std::uint64_t fence = 0;
  std::unique_ptr<LeaseKeeper> keeper;  // renews the lease while held
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
  // Impl::release(state, deadline): see LockCore::release; bounded by deadline (never: the
  // outage budget).
  void release(ProcessLockState& state, Deadline deadline);

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
  try {  // a handle dropped while held: free the lock now rather than after its lease,
         // but never wait long for a frozen or lost server
    impl_->release(*state, Deadline::after(std::chrono::seconds(1)));
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
  const std::string what = "acquire() of " + impl_->described;
  auto retry = impl_->retry(deadline, "acquire()");
  auto link = state.pool.take();
  Command attempt{"FCALL", "mp2_lock_acquire", "2", impl_->lock_key, impl_->fence_key, state.token};
  attempt.add(static_cast<long long>(impl_->lease.count()));
  for (;;) {
    auto sent_at = Clock::now();
    Reply reply = retry([&] {
      sent_at = Clock::now();
      return link->run1(attempt, retry.reply_deadline());
    });
    long long won = integer_of(element_of(reply.get(), 0, what), what);
    long long value = integer_of(element_of(reply.get(), 1, what), what);
    if (won == 1) {
      if (value <= 0) unexpected_reply(what, "a fencing token > 0", reply.get());
      std::lock_guard lock(state.mutex);
      state.held = true;
      state.holder = std::this_thread::get_id();
      state.fence = static_cast<std::uint64_t>(value);
      state.keeper = std::make_unique<LeaseKeeper>(impl_->endpoint, impl_->lease, state.token, sent_at,
                                                   lock_renewal(impl_->lock_key, impl_->lease));
      return true;
    }
    if (won != 0) unexpected_reply(what, "1 (acquired) or 0 (busy)", reply.get());
    if (deadline.expired()) return false;
    Clock::duration wait = std::min<Clock::duration>(deadline.remaining(), std::chrono::seconds(1));
    if (value > 0) wait = std::min<Clock::duration>(wait, std::chrono::milliseconds(value));
    if (value == -2) continue;  // freed between the two commands
    retry([&] {
      Reply woken =
          link->run1(Command{"BLPOP", impl_->wake_key, seconds_arg(wait)}, retry.reply_deadline(wait));
      throw_if_error(woken, what);
      return 0;
    });
  }
}

void LockCore::release() { impl_->release(impl_->local(), Deadline::never()); }

void LockCore::Impl::release(ProcessLockState& state, Deadline deadline) {
  std::unique_ptr<LeaseKeeper> keeper;
  {
    std::lock_guard lock(state.mutex);
    if (!state.held) {
      throw mp::ValueError("mp::redis::Lock \"" + name +
                           "\": release() of a lock this process does not hold");
    }
    state.held = false;
    keeper = std::move(state.keeper);
  }
  bool lost = keeper ? keeper->stop() : false;  // never waits for the server
  keeper.reset();
  const std::string what = "release() of " + described;
  auto attempt = retry(deadline, "release()");
  auto link = state.pool.take();
  Reply reply = attempt([&] {
    return link->run1(Command{"FCALL", "mp2_lock_release", "2", lock_key, wake_key, state.token},
                      attempt.reply_deadline());
  });
  long long released = integer_of(reply.get(), what);
  if (released != 0 && released != 1)
    unexpected_reply(what, "1 (released) or 0 (not the holder)", reply.get());
  if (released == 0 || lost) {
    throw mp::LockLost("mp::redis::Lock \"" + name + "\" on " + endpoint.url +
                       ": released after its lease (" + std::to_string(lease.count()) +
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
