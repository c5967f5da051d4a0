// mp/async_result.hpp — the future of a Pool submission: AsyncResult<R>
// (apply_async, map_async) and IMapIterator<R> (imap, imap_unordered).
//
//   mp::Pool pool(2);
//   mp::AsyncResult<int> r = pool.apply_async([](int x) { return x * x; }, 7);
//   if (!r.wait(std::chrono::seconds(1))) { /* still running */ }
//   int v = r.get();                                   // 49
//   for (int y : pool.imap([](int x) { return x + 1; }, std::vector{1, 2, 3})) use(y);
//   r.add_done_callback([](const mp::AsyncResult<int>& done) { /* done.ready() */ });
//   bool stopped = r.cancel();                         // false: it had finished
//
// Safety: a handle is a cheap copyable value; copies share one result, and any
// thread may wait on or read it (the state is mutex-guarded). An IMapIterator
// is a single-pass cursor: use one copy from one thread at a time.
// Visibility: everything the task computed is in the value get() returns; the
// bytes are decoded in the calling thread, outside every lock.
// Lifetime: a result outlives its Pool. Once the pool is gone, a result that
// was not finished has failed (terminate: WorkerLost; ~Pool finishes every
// task first, as close() + join() does).
#pragma once

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "mp/detail/clock.hpp"
#include "mp/detail/pool_job.hpp"
#include "mp/detail/pool_task.hpp"
#include "mp/errors.hpp"

namespace mp {

class Pool;

template <class R>
class AsyncResult {
 public:
  // AsyncResult::get(): blocks until the task (all of a map's chunks) ended.
  // Returns its value; rethrows the task's RemoteError, or WorkerLost when the
  // worker running it died, or CodecError when the result bytes do not decode.
  R get() {
    (void)state_->wait(detail::Deadline::never());
    return take();
  }
  // AsyncResult::get(timeout): as get(); TimeoutError if not ready in time.
  template <class Rep, class Period>
  R get(std::chrono::duration<Rep, Period> timeout) {
    if (!state_->wait(detail::Deadline::after(timeout))) {
      throw TimeoutError("AsyncResult::get(timeout): the result is not ready after the timeout");
    }
    return take();
  }
  // AsyncResult::wait(): blocks until ready.
  void wait() const { (void)state_->wait(detail::Deadline::never()); }
  // AsyncResult::wait(timeout): true once ready, false if the timeout ran out.
  template <class Rep, class Period>
  bool wait(std::chrono::duration<Rep, Period> timeout) const {
    return state_->wait(detail::Deadline::after(timeout));
  }
  // AsyncResult::ready(): the call has completed (a map: all chunks, or one failed).
  [[nodiscard]] bool ready() const { return state_->ready(); }
  // AsyncResult::successful(): completed without raising; ValueError if not
  // ready yet (as Python).
  [[nodiscard]] bool successful() const {
    if (!state_->ready()) throw ValueError("AsyncResult::successful(): the result is not ready yet");
    return state_->first_error() == nullptr;
  }

  // AsyncResult::cancel(): stops the task (every chunk of a map). Not started
  // yet: it never runs. Running: its worker is killed and replaced (the
  // pool keeps its size). Returns true if the result will not be delivered
  // (get() throws mp::Cancelled), false if it was ready already. Other tasks
  // are not affected.
  bool cancel() { return detail::JobState::cancel(state_); }
  // AsyncResult::cancelled(): cancel() returned true for this result.
  [[nodiscard]] bool cancelled() const { return state_->cancelled(); }
  // AsyncResult::add_done_callback(callback): callback(*this-like handle)
  // once the result is ready (success, failure, cancel); at once, in this
  // thread, if it is ready already. Otherwise it runs on a pool thread: it
  // must not block, and an exception it throws is reported on stderr and
  // ignored. Python's apply_async(callback=, error_callback=) in one.
  void add_done_callback(std::function<void(const AsyncResult&)> callback) {
    detail::JobState::add_done_callback(state_, [callback = std::move(callback), assemble = assemble_](
                                                    const std::shared_ptr<detail::JobState>& state) {
      callback(AsyncResult(state, assemble));
    });
  }

 private:
  friend class Pool;
  using Assembler = R (*)(const detail::JobState&);
  AsyncResult(std::shared_ptr<detail::JobState> state, Assembler assemble)
      : state_(std::move(state)), assemble_(assemble) {}

  R take() {
    if (auto failure = state_->first_error()) failure->raise();
    return assemble_(*state_);
  }

  std::shared_ptr<detail::JobState> state_;
  Assembler assemble_;
};

// IMapIterator<R>: the results of imap (in input order) or imap_unordered (in
// completion order), produced lazily: each result is available as soon as its
// chunk finished, before the rest. Items of a failed chunk throw that chunk's
// error (RemoteError / WorkerLost) when reached; iteration may then go on.
// Copies of an IMapIterator, and the iterators begin() returns, share one
// cursor, which lives as long as any of them: `auto it = pool.imap(f,
// xs).begin();` is safe (the temporary IMapIterator may go away).
template <class R>
class IMapIterator {
  class Cursor;

 public:
  // IMapIterator::next(): the next result; nullopt after the last one.
  // Throws the item's error (its chunk failed).
  std::optional<R> next() { return cursor_->advance(detail::Deadline::never()); }
  // IMapIterator::next(timeout): as next(); TimeoutError if the next result
  // is not there in time (the iterator stays where it was).
  template <class Rep, class Period>
  std::optional<R> next(std::chrono::duration<Rep, Period> timeout) {
    return cursor_->advance(detail::Deadline::after(timeout));
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
      current_ = cursor_->advance(detail::Deadline::never());
      return *this;
    }
    void operator++(int) { ++*this; }
    friend bool operator==(const iterator& it, std::default_sentinel_t) { return !it.current_.has_value(); }

   private:
    friend class IMapIterator;
    explicit iterator(std::shared_ptr<Cursor> cursor)
        : cursor_(std::move(cursor)), current_(cursor_->advance(detail::Deadline::never())) {}
    std::shared_ptr<Cursor> cursor_;  // shared with the IMapIterator it came from
    std::optional<R> current_;
  };

  // begin(): fetches the first result (blocks for it). Single pass.
  iterator begin() { return iterator(cursor_); }
  std::default_sentinel_t end() const noexcept { return {}; }

 private:
  friend class Pool;
  IMapIterator(std::shared_ptr<detail::JobState> state, bool ordered)
      : cursor_(std::make_shared<Cursor>(std::move(state), ordered)) {}

  // Cursor: where the iteration is; shared by the IMapIterator and its iterators.
  class Cursor {
   public:
    Cursor(std::shared_ptr<detail::JobState> state, bool ordered)
        : state_(std::move(state)), ordered_(ordered) {}

    std::optional<R> advance(const detail::Deadline& deadline) {
      while (position_ >= buffer_.size() || buffer_chunk_failed_) {
        if (buffer_chunk_failed_ && position_ < failed_items_left_) {
          // Still inside a failed chunk: each item throws its error.
          ++position_;
          failed_error_->raise();
        }
        buffer_chunk_failed_ = false;
        if (chunks_taken_ == state_->chunk_count()) return std::nullopt;
        std::size_t chunk = 0;
        if (ordered_) {
          chunk = chunks_taken_;
          if (state_->wait_chunk(chunk, deadline) == detail::JobState::ChunkStatus::pending) throw_timeout();
        } else {
          auto finished = state_->wait_nth_finished(chunks_taken_, deadline);
          if (!finished) throw_timeout();
          chunk = *finished;
        }
        ++chunks_taken_;
        buffer_.clear();
        position_ = 0;
        if (auto error = state_->chunk_error(chunk)) {
          buffer_chunk_failed_ = true;
          failed_error_ = error;
          failed_items_left_ = state_->item_count(chunk);
          continue;
        }
        detail::take_results(state_->chunk_bytes(chunk), state_->item_count(chunk), buffer_);
        state_->release_chunk(chunk);
      }
      return std::move(buffer_[position_++]);
    }

   private:
    [[noreturn]] static void throw_timeout() {
      throw TimeoutError("IMapIterator::next(timeout): the next result is not ready after the timeout");
    }

    std::shared_ptr<detail::JobState> state_;
    bool ordered_;
    std::size_t chunks_taken_ = 0;
    std::vector<R> buffer_;
    std::size_t position_ = 0;
    bool buffer_chunk_failed_ = false;
    std::size_t failed_items_left_ = 0;
    detail::FailurePtr failed_error_;
  };

  std::shared_ptr<Cursor> cursor_;
};

}  // namespace mp
