// mp/redis/pool.hpp — mp::redis::Pool and serve(): a Pool whose workers run on any machine.
//
// A submitter puts task records (registered function name, encoded arguments,
// where to reply, limits) on a Redis JoinableQueue; worker hosts run
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
// Calls, as mp::Pool: apply / apply_async, map / map_async, starmap /
// starmap_async, imap (results in input order, each as soon as it and those
// before it arrived), imap_unordered (in the order they arrive), close,
// terminate, join. chunksize: items per task; 0 (map's default) means 1, not
// CPython's rule, because the pool cannot know how many workers there are. A
// task (one item, or one chunk) is what is handed out, retried and failed as a
// whole. All the tasks of a call are put on the queue at once.
//
// Delivery: at least once. A task is handed out again when its worker
// process dies or runs past PoolOptions::task_timeout (it is killed), and when
// the host holding it dies (SIGKILL, power, network: its lease runs out, about
// one to two leases later) -- whether or not it had started. Each counts as an
// attempt, in one count kept by the task queue; after max_attempts the task
// fails for the submitter with TaskTimeout (its last attempt timed out) or
// WorkerLost (its worker or host died), and is kept on the queue's dead-letter
// list (mp-redis dead / retry / purge). A host stopped with SIGTERM hands its
// unfinished tasks back at once, and that is not an attempt. An exception in a
// task fails it at once with RemoteError (not retried). Results come back to
// the submitter only (a duplicate from a re-delivered task is dropped), in
// order for map and imap. So a task may run more than once: make tasks
// idempotent. max_attempts is kept per pool name (the queue's limit): the
// last Pool made under a name sets it for every task waiting there.
//
// Errors: ValueError for a function not registered with MP_TASK, a submission
// after close() / terminate(), join() before either; the task's own failure
// (RemoteError, WorkerLost, TaskTimeout) from get() / next(); Cancelled for a
// task that cancel() stopped; ConnectionError for every result still awaited
// when the server stayed away for 10 s.
//
// Cancel: AsyncResult::cancel() removes a task still waiting on the server (it
// never runs); a host holding it drops it unstarted or kills the local worker
// running it; it is not retried. mp-redis stats counts cancelled tasks.
//
// Safety: a Pool may be used from several threads; a result from any thread.
// serve() installs SIGTERM and SIGINT handlers while it runs (restored when it
// returns): one serve() per process at a time.
// Visibility: a task sees its arguments as they were encoded at submission;
// its effects reach the submitter only through its result.
// Lifetime: ~Pool stops waiting for results: every result not in yet fails
// with WorkerLost (a handle may outlive its Pool; nothing waits forever), and
// deletes the submitter's result queue. terminate() does the same without
// deleting. serve() returns 0 on SIGTERM or SIGINT, handing back at once what
// it has not finished (a clean stop is not an attempt).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
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
  // Deliveries a task may use (worker or host deaths, timeouts), then it fails; >= 1.
  int max_attempts = 3;
  // The submitter's lease on the task queue. Hosts hold tasks under their own lease
  // (ServeOptions::lease); this one sets how often the submitter, while it waits, reaps hosts
  // whose lease ran out and looks for its tasks among the dead letters (every lease / 2).
  std::chrono::milliseconds lease{10000};
};

struct ServeOptions {
  int processes = 0;  // 0: cpu_count()
  // The host's lease (beyond API.md): if the host dies, its tasks go back about this long after.
  std::chrono::milliseconds lease{10000};
};

// serve(url, name, options): a worker host: runs the tasks submitted to `name`
// in a local mp::Pool until SIGTERM or SIGINT; returns 0. It rides out a slow,
// restarting or absent server while it waits for tasks; it throws
// ConnectionError (its local workers killed, what it held going back to the
// queue after its lease) if the server stays away longer than 10 s while it
// reports a result or acknowledges a task, and ValueError / AuthenticationError
// for a malformed url or a refused login.
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
    task_timeout = 4,
    cancelled = 5
  };
  // Told once, from the thread that finishes the task, which task of a group finished.
  class Listener {
   public:
    virtual ~Listener() = default;
    virtual void finished(std::size_t index) noexcept = 0;
  };
  // What cancel_all() asks to keep tasks from running: the Pool that submitted them.
  class Canceller {
   public:
    virtual ~Canceller() = default;
    // Canceller::cancel(ids): no host runs these tasks from now on (see RemoteResult::cancel), and
    // their results are no longer awaited. ConnectionError if the server could not be told.
    virtual void cancel(const std::vector<std::string>& ids) = 0;
  };
  // TaskState(items): items = 0: one call; n > 0: a chunk of n calls (its result is the n
  // results, each encoded, as a codec vector).
  explicit TaskState(std::uint32_t items = 0);
  [[nodiscard]] std::uint32_t items() const noexcept { return items_; }
  // TaskState::bind(id, canceller): set once at submission, before any handle exists.
  void bind(std::string id, std::weak_ptr<Canceller> canceller) {
    id_ = std::move(id);
    canceller_ = std::move(canceller);
  }
  [[nodiscard]] const std::string& id() const noexcept { return id_; }
  [[nodiscard]] const std::weak_ptr<Canceller>& canceller() const noexcept { return canceller_; }
  // TaskState::finish(...): the first call decides the outcome (true); later ones are ignored.
  bool finish(Status status, std::vector<std::byte> payload, std::string type, std::string message);
  bool wait(mp::detail::Deadline deadline);
  [[nodiscard]] bool ready();
  [[nodiscard]] bool successful();
  [[nodiscard]] bool cancelled();
  // TaskState::take(): the result bytes; RemoteError / WorkerLost / TaskTimeout / ConnectionError /
  // Cancelled as the task ended.
  std::vector<std::byte> take();
  // TaskState::listen(listener, index): listener->finished(index) once the task is finished (at
  // once, from this thread, if it already is).
  void listen(std::shared_ptr<Listener> listener, std::size_t index);

 private:
  struct Shared;
  std::shared_ptr<Shared> shared_;
  std::uint32_t items_ = 0;
  std::string id_;
  std::weak_ptr<Canceller> canceller_;
};

// cancel_all(states): RemoteResult::cancel(). True if the result will not be delivered (some
// task is cancelled now or was before), false if every task had finished already.
MP_API bool cancel_all(const std::vector<std::shared_ptr<TaskState>>& states);

// Runs `done` once every one of `tasks` tasks has finished (a done callback). An exception from
// it is reported on stderr and ignored.
class MP_API DoneCountdown final : public TaskState::Listener {
 public:
  DoneCountdown(std::size_t tasks, std::function<void()> done) : left_(tasks), done_(std::move(done)) {}
  void finished(std::size_t index) noexcept override;

 private:
  std::atomic<std::size_t> left_;  // acq_rel in finished(): the last decrement sees every finish before it
  std::function<void()> done_;     // called once, by the thread whose decrement reached 0, then released
};

// Tasks in the order they finished (imap_unordered): a Listener on each task of one call.
class MP_API FinishOrder final : public TaskState::Listener {
 public:
  explicit FinishOrder(std::size_t tasks) { order_.reserve(tasks); }
  void finished(std::size_t index) noexcept override;
  // FinishOrder::nth(n, deadline): the index of the n-th task to finish (0-based); nullopt if it
  // has not finished by deadline.
  std::optional<std::size_t> nth(std::size_t n, mp::detail::Deadline deadline);

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::size_t> order_;  // guarded by mutex_
};

class MP_API PoolCore {
 public:
  PoolCore(std::string_view url, std::string_view name, PoolOptions options);
  ~PoolCore();
  PoolCore(const PoolCore&) = delete;
  PoolCore& operator=(const PoolCore&) = delete;
  // PoolCore::submit(function, arguments, items): queues the task (items: see TaskState); its
  // state. ValueError after close().
  std::shared_ptr<TaskState> submit(std::string function, std::vector<std::byte> arguments,
                                    std::uint32_t items = 0);
  // PoolCore::Call: one task's arguments and items (as submit's).
  struct Call {
    std::vector<std::byte> arguments;
    std::uint32_t items = 0;
  };
  // PoolCore::submit_many(function, calls): submit() of each, in order, sent in pipelined
  // batches (one round trip per batch); their states. ValueError after close().
  std::vector<std::shared_ptr<TaskState>> submit_many(const std::string& function, std::vector<Call> calls);
  void close();
  // PoolCore::terminate(): no more submissions; every unfinished task fails with WorkerLost now.
  void terminate();
  // PoolCore::join(): waits until every submitted task has finished. ValueError unless closed.
  void join();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;  // shared: each task's state holds it weakly (TaskState::Canceller)
};

using TaskStates = std::vector<std::shared_ptr<TaskState>>;

// wait_all(states, deadline): every task finished by deadline.
inline bool wait_all(const TaskStates& states, mp::detail::Deadline deadline) {
  for (const auto& state : states) {
    if (!state->wait(deadline)) return false;
  }
  return true;
}

template <class R>
R take_as(TaskState& state) {
  auto bytes = state.take();
  if constexpr (std::is_void_v<R>) {
    return;
  } else {
    return mp::decode<R>(bytes);
  }
}

template <class R>
R assemble_one(const TaskStates& states) {
  return take_as<R>(*states.front());
}

// take_into<R>(state, out): the task's value(s) appended to out (a chunk gives several);
// the task's failure is thrown.
template <class R, class Out>
void take_into(TaskState& state, Out& out) {
  if (state.items() == 0) {
    out.push_back(take_as<R>(state));
    return;
  }
  auto bytes = state.take();
  for (const auto& part : mp::decode<std::vector<std::vector<std::byte>>>(bytes))
    out.push_back(mp::decode<R>(part));
}

// assemble_all<R>(states): every result in order (map); the first failure in order is thrown.
template <class R>
auto assemble_all(const TaskStates& states) {
  if constexpr (std::is_void_v<R>) {
    for (const auto& state : states) (void)state->take();
  } else {
    std::vector<R> out;
    out.reserve(states.size());
    for (const auto& state : states) take_into<R>(*state, out);
    return out;
  }
}

}  // namespace detail

// The result of one call sent through a Pool across machines: one task (apply_async) or
// all the tasks of a map_async. mp::redis::AsyncResult<R> is the same type.
template <class R>
class RemoteResult {
 public:
  using Assemble = R (*)(const detail::TaskStates&);
  RemoteResult(detail::TaskStates states, Assemble assemble)
      : states_(std::move(states)), assemble_(assemble) {}
  // RemoteResult::get() / get(timeout): the value (map_async: every value, in order);
  // RemoteError, WorkerLost, TaskTimeout, ConnectionError from the (first failed) task;
  // TimeoutError if not ready within timeout.
  // (const: a done callback, given the result as const&, may read it.)
  R get() const {
    wait();
    return assemble_(states_);
  }
  template <class Rep, class Period>
  R get(std::chrono::duration<Rep, Period> timeout) const {
    if (!wait(timeout)) throw mp::TimeoutError("mp::redis::Pool: the result is not ready after the timeout");
    return assemble_(states_);
  }
  void wait() const { (void)detail::wait_all(states_, mp::detail::Deadline::never()); }
  template <class Rep, class Period>
  bool wait(std::chrono::duration<Rep, Period> timeout) const {
    return detail::wait_all(states_, mp::detail::Deadline::after(timeout));
  }
  [[nodiscard]] bool ready() const {
    for (const auto& state : states_) {
      if (!state->ready()) return false;
    }
    return true;
  }
  // RemoteResult::successful(): every task succeeded; ValueError if not ready yet.
  [[nodiscard]] bool successful() const {
    if (!ready()) throw mp::ValueError("RemoteResult::successful(): the result is not ready yet");
    for (const auto& state : states_) {
      if (!state->successful()) return false;
    }
    return true;
  }
  // RemoteResult::cancel(): stops the task (map_async: every task not finished yet), as
  // mp::AsyncResult::cancel(). Still waiting on the server: removed there, it never runs. Taken
  // by a worker host: the host drops it if it has not started it, or kills the local worker
  // process running it (the host replaces it and keeps serving); either way it is acknowledged,
  // not retried. Returns true if the result will not be delivered (get() throws Cancelled),
  // false if every task had finished already. ConnectionError (nothing cancelled) if the server
  // cannot be reached within its server timeout. A task that a host takes in the instant before
  // the cancel reaches the server may start before the host hears of it: it is then killed.
  bool cancel() { return detail::cancel_all(states_); }
  // RemoteResult::cancelled(): cancel() stopped it (get() throws Cancelled).
  [[nodiscard]] bool cancelled() const {
    for (const auto& state : states_) {
      if (state->cancelled()) return true;
    }
    return false;
  }
  // RemoteResult::add_done_callback(callback): callback(result) once, when ready (success,
  // failure, cancel); at once, in this thread, if it is ready already; otherwise on the Pool's
  // receiver thread (or the thread that cancels or terminates): it must not block. An exception
  // it throws is reported on stderr and ignored.
  void add_done_callback(std::function<void(const RemoteResult&)> callback) {
    auto countdown = std::make_shared<detail::DoneCountdown>(
        states_.size(), [callback = std::move(callback), result = *this] { callback(result); });
    if (states_.empty()) countdown->finished(0);
    for (std::size_t i = 0; i < states_.size(); ++i) states_[i]->listen(countdown, i);
  }

 private:
  detail::TaskStates states_;
  Assemble assemble_;
};

template <class R>
using AsyncResult = RemoteResult<R>;

// The results of imap / imap_unordered: a single-pass input range, and next().
template <class R>
class IMapIterator {
  struct Cursor {
    explicit Cursor(detail::TaskStates all) : states(std::move(all)) {}
    detail::TaskStates states;
    std::shared_ptr<detail::FinishOrder> order;  // imap_unordered only
    std::size_t position = 0;                    // tasks taken
    std::deque<R> buffer;                        // the rest of a chunk's values
    std::exception_ptr failed;                   // a failed chunk's error, thrown once per item:
    std::size_t failed_left = 0;                 // this many times more
    std::optional<R> advance(mp::detail::Deadline deadline) {
      for (;;) {
        if (failed_left > 0) {
          --failed_left;  // a failed item is passed: the next call moves on
          std::rethrow_exception(failed);
        }
        if (!buffer.empty()) {
          R value = std::move(buffer.front());
          buffer.pop_front();
          return value;
        }
        if (position == states.size()) return std::nullopt;
        std::size_t index = position;
        if (order) {
          auto finished = order->nth(position, deadline);
          if (!finished) throw_timeout();
          index = *finished;
        } else if (!states[index]->wait(deadline)) {
          throw_timeout();
        }
        ++position;
        try {
          detail::take_into<R>(*states[index], buffer);
        } catch (...) {
          failed = std::current_exception();
          failed_left = std::max<std::size_t>(states[index]->items(), 1);
        }
      }
    }
    [[noreturn]] static void throw_timeout() {
      throw mp::TimeoutError(
          "mp::redis::IMapIterator::next(timeout): the next result is not ready after the timeout");
    }
  };

 public:
  IMapIterator(detail::TaskStates states, bool ordered)
      : cursor_(std::make_shared<Cursor>(std::move(states))) {
    if (!ordered) {
      cursor_->order = std::make_shared<detail::FinishOrder>(cursor_->states.size());
      for (std::size_t i = 0; i < cursor_->states.size(); ++i) cursor_->states[i]->listen(cursor_->order, i);
    }
  }
  // IMapIterator::next() / next(timeout): the next result (in input order for imap, in the order
  // they finished for imap_unordered); nullopt after the last. Throws the item's error (then
  // moves past it); TimeoutError if the next result is not there in time (stays where it was).
  std::optional<R> next() { return cursor_->advance(mp::detail::Deadline::never()); }
  template <class Rep, class Period>
  std::optional<R> next(std::chrono::duration<Rep, Period> timeout) {
    return cursor_->advance(mp::detail::Deadline::after(timeout));
  }

  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = R;
    using difference_type = std::ptrdiff_t;
    using pointer = const R*;
    using reference = const R&;
    iterator() = default;
    const R& operator*() const { return *current_; }
    const R* operator->() const { return &*current_; }
    iterator& operator++() {
      current_ = cursor_->advance(mp::detail::Deadline::never());
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) { return !it.current_.has_value(); }

   private:
    friend class IMapIterator;
    explicit iterator(std::shared_ptr<Cursor> cursor)
        : cursor_(std::move(cursor)), current_(cursor_->advance(mp::detail::Deadline::never())) {}
    std::shared_ptr<Cursor> cursor_;
    std::optional<R> current_;
  };
  // begin(): fetches the first result (blocks for it). Single pass.
  iterator begin() { return iterator(cursor_); }
  std::default_sentinel_t end() const noexcept { return {}; }

 private:
  std::shared_ptr<Cursor> cursor_;
};

class MP_API Pool {
 public:
  // Pool(url, name, options): submits to the tasks of `name`; ValueError for a malformed url or
  // max_attempts < 1; AuthenticationError / ConnectionError as for a queue.
  Pool(std::string_view url, std::string_view name, PoolOptions options = {})
      : core_(std::make_shared<detail::PoolCore>(url, name, options)) {}

  // Pool::apply_async(f, args...): f must be registered with MP_TASK (else ValueError);
  // ValueError after close() / terminate().
  template <class R, class... P, class... A>
  RemoteResult<R> apply_async(R (*f)(P...), A&&... args) {
    return RemoteResult<R>({submit_one(f, std::forward<A>(args)...)}, &detail::assemble_one<R>);
  }
  template <class R, class... P, class... A>
  R apply(R (*f)(P...), A&&... args) {
    return apply_async(f, std::forward<A>(args)...).get();
  }
  // Pool::map_async(f, items, chunksize = 0): f(item) for every item; the result's get() is every
  // value in order (std::vector<R>; nothing for a void f) or the first failure in order.
  // chunksize: items per task (0 or 1: one each); a chunk is handed out, retried and failed as
  // one task (one item's exception fails its whole chunk).
  template <class R, class P, class Range>
  auto map_async(R (*f)(P), const Range& items, std::size_t chunksize = 0) {
    auto states = submit_calls(
        f, items, chunksize, [](const auto& item) { return mp::encode(std::tuple<std::decay_t<P>>(item)); });
    using Out = decltype(detail::assemble_all<R>(states));
    return RemoteResult<Out>(std::move(states), &detail::assemble_all<R>);
  }
  // Pool::map(f, items, chunksize = 0): map_async(...).get().
  template <class R, class P, class Range>
  auto map(R (*f)(P), const Range& items, std::size_t chunksize = 0) {
    return map_async(f, items, chunksize).get();
  }
  // Pool::starmap_async / starmap(f, tuples, chunksize = 0): f(args...) for every tuple of arguments.
  template <class R, class... P, class Range>
  auto starmap_async(R (*f)(P...), const Range& tuples, std::size_t chunksize = 0) {
    auto states = submit_calls(f, tuples, chunksize, [](const auto& args) {
      return std::apply([](const auto&... a) { return mp::encode(std::tuple<std::decay_t<P>...>(a...)); },
                        args);
    });
    using Out = decltype(detail::assemble_all<R>(states));
    return RemoteResult<Out>(std::move(states), &detail::assemble_all<R>);
  }
  template <class R, class... P, class Range>
  auto starmap(R (*f)(P...), const Range& tuples, std::size_t chunksize = 0) {
    return starmap_async(f, tuples, chunksize).get();
  }
  // Pool::imap(f, items, chunksize = 1): every item is submitted now; the results come in input
  // order, each as soon as it (and those before it) arrived. Each item of a failed chunk
  // throws its error. ValueError for chunksize 0.
  template <class R, class P, class Range>
  IMapIterator<R> imap(R (*f)(P), const Range& items, std::size_t chunksize = 1) {
    static_assert(!std::is_void_v<R>,
                  "mp::redis::Pool::imap: the task returns void; use map() or map_async()");
    return IMapIterator<R>(submit_iterated("imap", f, items, chunksize), true);
  }
  // Pool::imap_unordered(f, items, chunksize = 1): as imap, in the order the results arrive.
  template <class R, class P, class Range>
  IMapIterator<R> imap_unordered(R (*f)(P), const Range& items, std::size_t chunksize = 1) {
    static_assert(!std::is_void_v<R>,
                  "mp::redis::Pool::imap_unordered: the task returns void; use map() or map_async()");
    return IMapIterator<R>(submit_iterated("imap_unordered", f, items, chunksize), false);
  }
  // Pool::close(): no more submissions from this handle (ValueError); results still come.
  void close() { core_->close(); }
  // Pool::terminate(): no more submissions, and every result not in yet fails with WorkerLost
  // now. Tasks already on the queue may still run on a worker host; their results are dropped.
  void terminate() { core_->terminate(); }
  // Pool::join(): waits until every task submitted here has its result (or failure).
  // ValueError unless close() or terminate() was called first.
  void join() { core_->join(); }

 private:
  template <class R, class... P, class... A>
  std::shared_ptr<detail::TaskState> submit_one(R (*f)(P...), A&&... args) {
    std::tuple<std::decay_t<P>...> arguments(std::forward<A>(args)...);
    return core_->submit(detail::task_name(reinterpret_cast<const void*>(f)), mp::encode(arguments));
  }
  // submit_calls(f, calls, chunksize, encode_call): one task per call, or per chunk of calls.
  template <class F, class Range, class EncodeCall>
  detail::TaskStates submit_calls(F f, const Range& calls, std::size_t chunksize, EncodeCall encode_call) {
    const std::string function = detail::task_name(reinterpret_cast<const void*>(f));
    detail::TaskStates states;
    // Tasks go out in batches of kBatch (one round trip each), the first before the rest are encoded.
    constexpr std::size_t kBatch = 256;
    std::vector<detail::PoolCore::Call> batch;
    auto flush = [&] {
      for (auto& state : core_->submit_many(function, std::move(batch))) states.push_back(std::move(state));
      batch.clear();
    };
    auto add = [&](std::vector<std::byte> arguments, std::uint32_t items) {
      batch.push_back(detail::PoolCore::Call{std::move(arguments), items});
      if (batch.size() == kBatch) flush();
    };
    if (chunksize <= 1) {
      for (const auto& call : calls) add(encode_call(call), 0);
    } else {
      std::vector<std::vector<std::byte>> chunk;
      for (const auto& call : calls) {
        chunk.push_back(encode_call(call));
        if (chunk.size() == chunksize) {
          add(mp::encode(chunk), static_cast<std::uint32_t>(chunk.size()));
          chunk.clear();
        }
      }
      if (!chunk.empty()) add(mp::encode(chunk), static_cast<std::uint32_t>(chunk.size()));
    }
    if (!batch.empty()) flush();
    return states;
  }
  template <class R, class P, class Range>
  detail::TaskStates submit_iterated(const char* method, R (*f)(P), const Range& items,
                                     std::size_t chunksize) {
    if (chunksize == 0) {
      throw mp::ValueError(std::string("mp::redis::Pool::") + method +
                           ": chunksize must be 1 or more, not 0");
    }
    return submit_calls(f, items, chunksize,
                        [](const auto& item) { return mp::encode(std::tuple<std::decay_t<P>>(item)); });
  }

  std::shared_ptr<detail::PoolCore> core_;
};

}  // namespace mp::redis
