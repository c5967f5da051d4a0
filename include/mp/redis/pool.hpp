// mp/redis/pool.hpp — mp::redis::Pool and serve(): a Pool whose workers run on any machine.
//
// A submitter puts task records (registered function name, encoded arguments,
// where to reply, attempt) on a Redis JoinableQueue; worker hosts run
// serve(url, name), which takes them and runs them in a local mp::Pool, and
// pushes each result to the submitter's own result queue.
//
//   namespace app { int square(int x) { return x * x; } }
//   MP_TASK(app::square);                                    // in both programs
//   // worker host:   return mp::redis::serve("redis://10.0.0.5:6379", "squares");
//   // submitter:
//   mp::redis::Pool pool("redis://10.0.0.5:6379", "squares");
//   std::vector<int> v = pool.map(&app::square, std::vector{1, 2, 3});   // {1, 4, 9}
//
// Delivery: at least once. A task whose worker process dies is put back with
// attempt + 1, up to PoolOptions::max_attempts, then fails with WorkerLost (and
// is kept on the queue's dead-letter list: mp-redis dead / retry); a
// task held by a host that dies goes back once the host's lease runs out. An
// exception in a task fails it at once with RemoteError (not retried). Results
// come back to the submitter only, in order for map. Make tasks idempotent.
// A task that runs past PoolOptions::task_timeout is killed and counts as an
// attempt the same way, then fails with TaskTimeout. Not yet: a limit for tasks
// whose host keeps dying (they are handed out again).
//
// Safety: a Pool may be used from several threads. Lifetime: ~Pool stops
// waiting for results (pending ones are abandoned) and deletes its result
// queue; serve() returns 0 on
// SIGTERM or SIGINT, handing back (through the queue's lease) what it has not finished.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "mp/codec.hpp"
#include "mp/detail/clock.hpp"
#include "mp/detail/export.hpp"
#include "mp/errors.hpp"
#include "mp/redis/task.hpp"

namespace mp::redis {

struct PoolOptions {
  // task_timeout: 0: none. A task still running after it: its worker process is killed and
  // replaced; the task is handed out again (an attempt), then fails with TaskTimeout.
  std::chrono::milliseconds task_timeout{0};
  int max_attempts = 3;
  std::chrono::milliseconds lease{10000};
};

struct ServeOptions {
  int processes = 0;  // 0: cpu_count()
  // The host's lease (beyond API.md): if the host dies, its tasks go back about this long after.
  std::chrono::milliseconds lease{10000};
};

// serve(url, name, options): a worker host: runs the tasks submitted to `name`
// in a local mp::Pool until SIGTERM or SIGINT; returns 0.
MP_API int serve(std::string_view url, std::string_view name, ServeOptions options = {});

namespace detail {

// The outcome of one task, filled by the submitter's receiver thread.
class MP_API TaskState {
 public:
  enum class Status : std::int32_t {
    ok = 0,
    remote_error = 1,
    worker_lost = 2,
    lost_server = 3,
    task_timeout = 4
  };
  TaskState();
  void finish(Status status, std::vector<std::byte> payload, std::string type, std::string message);
  bool wait(mp::detail::Deadline deadline);
  [[nodiscard]] bool ready();
  [[nodiscard]] bool successful();
  // TaskState::take(): the result bytes; RemoteError / WorkerLost / ConnectionError as the task ended.
  std::vector<std::byte> take();

 private:
  struct Shared;
  std::shared_ptr<Shared> shared_;
};

class MP_API PoolCore {
 public:
  PoolCore(std::string_view url, std::string_view name, PoolOptions options);
  ~PoolCore();
  PoolCore(const PoolCore&) = delete;
  PoolCore& operator=(const PoolCore&) = delete;
  // PoolCore::submit(function, arguments): queues the task; its state.
  std::shared_ptr<TaskState> submit(std::string function, std::vector<std::byte> arguments);
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace detail

// The result of one task sent through a Pool across machines.
template <class R>
class MP_API RemoteResult {
 public:
  explicit RemoteResult(std::shared_ptr<detail::TaskState> state) : state_(std::move(state)) {}
  // RemoteResult::get() / get(timeout): the value; RemoteError, WorkerLost, TaskTimeout, ConnectionError;
  // TimeoutError if not ready within timeout.
  R get() {
    (void)state_->wait(mp::detail::Deadline::never());
    return take();
  }
  template <class Rep, class Period>
  R get(std::chrono::duration<Rep, Period> timeout) {
    if (!state_->wait(mp::detail::Deadline::after(timeout))) {
      throw mp::TimeoutError("mp::redis::Pool: the result is not ready after the timeout");
    }
    return take();
  }
  void wait() { (void)state_->wait(mp::detail::Deadline::never()); }
  template <class Rep, class Period>
  bool wait(std::chrono::duration<Rep, Period> timeout) {
    return state_->wait(mp::detail::Deadline::after(timeout));
  }
  [[nodiscard]] bool ready() const { return state_->ready(); }
  [[nodiscard]] bool successful() const {
    if (!state_->ready()) throw mp::ValueError("RemoteResult::successful(): the result is not ready yet");
    return state_->successful();
  }

 private:
  R take() {
    auto bytes = state_->take();
    if constexpr (std::is_void_v<R>) {
      return;
    } else {
      return mp::decode<R>(bytes);
    }
  }
  std::shared_ptr<detail::TaskState> state_;
};

class MP_API Pool {
 public:
  // Pool(url, name, options): submits to the tasks of `name`; ValueError for a malformed url.
  Pool(std::string_view url, std::string_view name, PoolOptions options = {})
      : core_(std::make_shared<detail::PoolCore>(url, name, options)) {}

  // Pool::apply_async(f, args...): f must be registered with MP_TASK (else ValueError).
  template <class R, class... P, class... A>
  RemoteResult<R> apply_async(R (*f)(P...), A&&... args) {
    std::tuple<std::decay_t<P>...> arguments(std::forward<A>(args)...);
    return RemoteResult<R>(
        core_->submit(detail::task_name(reinterpret_cast<const void*>(f)), mp::encode(arguments)));
  }
  template <class R, class... P, class... A>
  R apply(R (*f)(P...), A&&... args) {
    return apply_async(f, std::forward<A>(args)...).get();
  }
  // Pool::map(f, items): f(item) for every item, in order; the first failure is thrown.
  template <class R, class P, class Range>
  std::vector<R> map(R (*f)(P), const Range& items) {
    std::vector<RemoteResult<R>> pending;
    for (const auto& item : items) pending.push_back(apply_async(f, item));
    std::vector<R> out;
    out.reserve(pending.size());
    for (auto& r : pending) out.push_back(r.get());
    return out;
  }
  // Pool::starmap(f, tuples): f(args...) for every tuple of arguments, in order.
  template <class R, class... P, class Range>
  std::vector<R> starmap(R (*f)(P...), const Range& tuples) {
    std::vector<RemoteResult<R>> pending;
    for (const auto& args : tuples) {
      pending.push_back(std::apply([&](const auto&... a) { return apply_async(f, a...); }, args));
    }
    std::vector<R> out;
    out.reserve(pending.size());
    for (auto& r : pending) out.push_back(r.get());
    return out;
  }
  // Pool::close(): no more submissions from this handle.
  void close() { core_->close(); }

 private:
  std::shared_ptr<detail::PoolCore> core_;
};

}  // namespace mp::redis
