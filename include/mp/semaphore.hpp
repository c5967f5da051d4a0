// mp/semaphore.hpp — mp::Semaphore and mp::BoundedSemaphore, Python's
// multiprocessing.Semaphore / BoundedSemaphore, shared by processes and threads.
//
//   mp::Semaphore slots(2);            // at most two at a time
//   {
//     std::lock_guard hold(slots);     // acquire() ... release()
//     // at most one other holder here
//   }
//   int free_now = slots.get_value();  // 2 again
//
// A counter of tokens: acquire() takes one, waiting while there are none;
// release() puts one back and wakes the waiters. Any thread of any process may
// release (a semaphore has no owner). A BoundedSemaphore refuses a release()
// that would raise the count above its initial value (mp::ValueError). A
// process that dies holding tokens does not give them back (as in Python).
//
// Protocol (src/semaphore.cpp): a count word, and the event count every mp
// wait goes through (detail/event_count.hpp). A waiter waits until it sees a
// token (a short spin, then futex) and then competes for it with a
// compare-exchange; release() bumps the count and notifies, which makes a
// system call only when someone sleeps, so an uncontended acquire/release
// makes none. A waiter killed at any point costs at most one later release()
// one needless FUTEX_WAKE.
//
// Safety: a handle may be copied and used from any thread of any process that
// has it; all copies name one semaphore.
// It is shared by inheritance only: fork, or as an argument of a Process
// under any start method (mp/detail/handle_codec.hpp); never as a value (a
// Queue item, a Pipe message, a Pool argument).
// Visibility: what a thread wrote before release() is visible to the thread
// whose acquire() takes that token.
// Lifetime: its own shared region (a memfd, mapped MAP_SHARED) made by the
// constructor; children forked afterwards inherit it, children started by
// forkserver or spawn with the handle as an argument map it too; the kernel
// frees it with the last handle. Nothing appears in /dev/shm.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <type_traits>

#include "mp/detail/acquirable.hpp"
#include "mp/detail/clock.hpp"
#include "mp/detail/event_count.hpp"
#include "mp/detail/export.hpp"
#include "mp/detail/handle_codec.hpp"

namespace mp {

namespace detail {

// INV1  0 <= count <= max_value (max_value = INT32_MAX for an unbounded one).
// INV2  every increment of `count` is followed by waiters.notify_all().
struct SemaphoreState {
  static constexpr std::uint32_t kMagic = 0x4d53504d;  // "MPSM"
  static constexpr std::uint32_t kVersion = 2;

  SemaphoreState(std::uint32_t initial, std::uint32_t maximum) noexcept
      : max_value(maximum), count(initial) {}

  const std::uint32_t magic = kMagic;
  const std::uint32_t version = kVersion;
  const std::uint32_t max_value;
  std::atomic<std::uint32_t> count;  // INV1
  alignas(64) EventCount waiters;    // INV2; own cache line: waiters write its flag
};

static_assert(std::is_standard_layout_v<SemaphoreState>, "SemaphoreState is shared between processes");
static_assert(sizeof(SemaphoreState) == 128, "SemaphoreState layout changed: bump kVersion");
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);

}  // namespace detail

class MP_API Semaphore : public detail::Acquirable<Semaphore> {
 public:
  // Semaphore::Semaphore(value): `value` tokens to start with. mp::ValueError
  // if value < 0; mp::Error if the kernel refuses the memory.
  explicit Semaphore(int value = 1);

  // Semaphore::acquire...(), lock(), try_lock...(): from detail::Acquirable:
  // take one token, blocking (event count: a short spin, then futex) while
  // there is none, until the deadline.

  // Semaphore::release() (also unlock()): gives one token back and wakes the
  // sleepers. mp::ValueError above the bound of a BoundedSemaphore, or at INT_MAX.
  void release();

  // Semaphore::get_value(): the number of free tokens now (a snapshot).
  [[nodiscard]] int get_value() const noexcept;

 protected:
  Semaphore(int value, int max_value, const char* type_name);
  Semaphore(detail::AdoptTag, std::shared_ptr<detail::SemaphoreState> state) noexcept
      : state_(std::move(state)) {}

 private:
  friend class detail::Acquirable<Semaphore>;
  template <class T, class Enable>
  friend struct mp::codec;
  bool acquire_with(detail::AcquireWait wait, const detail::Deadline& deadline);

  std::shared_ptr<detail::SemaphoreState> state_;
};

class MP_API BoundedSemaphore : public Semaphore {
 public:
  // BoundedSemaphore::BoundedSemaphore(value): as Semaphore, and release()
  // beyond `value` free tokens throws mp::ValueError.
  explicit BoundedSemaphore(int value = 1);

 private:
  template <class T, class Enable>
  friend struct mp::codec;
  BoundedSemaphore(detail::AdoptTag tag, std::shared_ptr<detail::SemaphoreState> state) noexcept
      : Semaphore(tag, std::move(state)) {}
};

// codec<Semaphore>, codec<BoundedSemaphore>: only as Process arguments (handle_codec.hpp).
template <class S>
requires(std::is_same_v<S, Semaphore> || std::is_same_v<S, BoundedSemaphore>) struct codec<S> {
  static constexpr bool shared_by_inheritance = true;
  static constexpr const char* kType =
      std::is_same_v<S, Semaphore> ? "mp::Semaphore" : "mp::BoundedSemaphore";
  static void encode(Writer& writer, const S& semaphore) {
    detail::put_shared_object(writer, semaphore.state_, kType);
  }
  static S make(Reader& reader) {
    return S(detail::AdoptTag{}, detail::take_shared_object<detail::SemaphoreState>(reader, kType));
  }
  static void decode(Reader& reader, S& semaphore) { semaphore = make(reader); }
  static void signature(std::string& out) {
    out += std::is_same_v<S, Semaphore> ? "handle<Semaphore>" : "handle<BoundedSemaphore>";
  }
};

}  // namespace mp
