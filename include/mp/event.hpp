// mp/event.hpp — mp::Event, Python's multiprocessing.Event: a flag processes
// and threads can wait for.
//
//   mp::Event ready;
//   mp::Process p([](mp::Event ready) { ready.set(); }, ready);
//   p.start();
//   bool was_set = ready.wait(std::chrono::seconds(5));  // true once the child set it
//   p.join();
//
// set() raises the flag and wakes every waiter; clear() lowers it; wait()
// returns at once while it is up. wait(timeout) returns whether the flag was
// raised (true) or the timeout ran out first (false); a set() followed at once
// by clear() still wakes, and returns true to, every thread already waiting
// (as threading.Event), because set() also advances a generation number.
//
// Protocol: one 32-bit word `state` = generation << 1 | flag, and the event
// count every mp wait goes through (detail/event_count.hpp: spins briefly,
// then sleeps; notify makes a system call only when someone sleeps). A waiter
// waits until the flag is up or the generation moved; set() stores a new
// generation with the flag up, then notifies. So set()/is_set()/clear()
// without waiters make no system call, and a waiter killed at any point
// costs at most one later set() one needless FUTEX_WAKE.
//
// Safety: a handle may be copied and used from any thread of any process that
// has it; all copies name one event.
// It is shared by inheritance only: fork, or as an argument of a Process
// under any start method (mp/detail/handle_codec.hpp); never as a value (a
// Queue item, a Pipe message, a Pool argument).
// Visibility: what a thread wrote before set() is visible to a thread whose
// wait() returned true because of that set(), or whose is_set() saw it.
// Lifetime: its own shared region (a memfd, mapped MAP_SHARED) made by the
// constructor; children forked afterwards inherit it, children started by
// forkserver or spawn with the handle as an argument map it too; the kernel
// frees it with the last handle. Nothing appears in /dev/shm.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <type_traits>

#include "mp/detail/clock.hpp"
#include "mp/detail/event_count.hpp"
#include "mp/detail/export.hpp"
#include "mp/detail/handle_codec.hpp"

namespace mp {

namespace detail {

// INV1  state = generation << 1 | flag; the generation grows (mod 2^31) at
//       every set() that raises the flag, and never otherwise.
// INV2  every change of `state` that a waiter waits for (a set() that raises
//       the flag) is followed by waiters.notify_all().
struct EventState {
  static constexpr std::uint32_t kMagic = 0x5645504d;  // "MPEV"
  static constexpr std::uint32_t kVersion = 2;
  static constexpr std::uint32_t kFlag = 1;

  const std::uint32_t magic = kMagic;
  const std::uint32_t version = kVersion;
  std::atomic<std::uint32_t> state{0};  // INV1
  std::uint32_t reserved = 0;
  EventCount waiters;  // INV2
};

static_assert(std::is_standard_layout_v<EventState>, "EventState is shared between processes");
static_assert(sizeof(EventState) == 32, "EventState layout changed: bump kVersion");
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);

}  // namespace detail

class MP_API Event {
 public:
  // Event::Event(): a new event, flag down. mp::Error if no memory.
  Event();

  // Event::set(): raises the flag and wakes every waiter.
  void set() noexcept;

  // Event::clear(): lowers the flag.
  void clear() noexcept;

  // Event::is_set(): the flag now.
  [[nodiscard]] bool is_set() const noexcept;

  // Event::wait(): blocks (event count: a short spin, then futex) until the
  // flag is raised.
  void wait() { (void)wait_until(detail::Deadline::never()); }

  // Event::wait(timeout): blocks until the flag is raised (true) or the
  // timeout runs out (false: the flag as it is then).
  template <class Rep, class Period>
  bool wait(std::chrono::duration<Rep, Period> timeout) {
    return wait_until(detail::Deadline::after(timeout));
  }

 private:
  bool wait_until(const detail::Deadline& deadline) noexcept;

  template <class T, class Enable>
  friend struct mp::codec;
  Event(detail::AdoptTag, std::shared_ptr<detail::EventState> state) noexcept : state_(std::move(state)) {}

  std::shared_ptr<detail::EventState> state_;
};

// codec<Event>: an Event travels only as a Process argument (handle_codec.hpp).
template <>
struct codec<Event> {
  static constexpr bool shared_by_inheritance = true;
  static void encode(Writer& writer, const Event& event) {
    detail::put_shared_object(writer, event.state_, "mp::Event");
  }
  static Event make(Reader& reader) {
    return Event(detail::AdoptTag{}, detail::take_shared_object<detail::EventState>(reader, "mp::Event"));
  }
  static void decode(Reader& reader, Event& event) { event = make(reader); }
  static void signature(std::string& out) { out += "handle<Event>"; }
};

}  // namespace mp
