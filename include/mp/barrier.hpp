// mp/barrier.hpp — mp::Barrier, Python's multiprocessing.Barrier: `parties`
// processes or threads meet, then all go on together.
//
//   mp::Barrier meet(3);
//   // in each of three processes:
//   int index = meet.wait();                  // 0, 1 or 2: distinct in each round
//   if (index == 0) std::puts("all three are here");
//   meet.wait(std::chrono::seconds(5));       // BrokenBarrier if not met in time
//
// wait() returns once `parties` callers have arrived in the current round,
// giving each a distinct arrival index 0..parties-1; the barrier then starts a
// new round by itself. A wait(timeout) that runs out breaks the barrier;
// abort() breaks it at will; every waiter of a broken barrier, and every later
// caller, gets mp::BrokenBarrier until reset(). reset() also throws
// mp::BrokenBarrier into the waiters of the current round and starts afresh.
// Barrier(parties <= 0) throws mp::ValueError.
//
// Processes that die: a waiter killed while waiting still counts as arrived
// in its round (it cannot be told from a slow one), so that round completes
// with one live party fewer; nothing hangs and later rounds are whole. A
// process killed inside the barrier's own short critical section (a robust
// mutex) leaves a consistent state: each change is one store, and the next
// caller wakes every sleeper so that they look again.
//
// Safety: a handle may be copied and used from any thread of any process that
// has it; all copies name one barrier.
// It is shared by inheritance only: fork, or as an argument of a Process
// under any start method (mp/detail/handle_codec.hpp); never as a value (a
// Queue item, a Pipe message, a Pool argument).
// Visibility: what each party wrote before its wait() of a round is visible to
// every party after that round's wait() returns.
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
#include "mp/detail/robust_mutex.hpp"

namespace mp {

namespace detail {

// States (under `mutex`):
//   filling  not broken; `arrived` < parties callers wait in round `round`
//   broken   `broken` == 1: every wait() throws until reset()
// Transitions: arrive (arrived + 1), complete (round + 1, arrived = 0,
// history bit cleared), break (broken = 1), reset (round + 1 if anyone
// waits, with its history bit set; broken = 0).
// INV1  round_and_arrived = round << 32 | arrived, changed by single stores,
//       so a process killed between them leaves a state from the table above.
// INV2  history bit (r % 64) tells how round r ended: 0 completed, 1 reset;
//       valid for a waiter of round r while fewer than 64 rounds have ended
//       since (a waiter wakes long before that).
// INV3  `waiters` is notified after every change a waiter must see: round
//       end, break, reset, and repair after a holder died.
struct BarrierState {
  static constexpr std::uint32_t kMagic = 0x5242504d;  // "MPBR"
  static constexpr std::uint32_t kVersion = 2;

  explicit BarrierState(std::uint32_t n) noexcept : parties(n) {}

  const std::uint32_t magic = kMagic;
  const std::uint32_t version = kVersion;
  const std::uint32_t parties;
  std::atomic<std::uint32_t> broken{0};
  EventCount waiters;                               // INV3
  std::atomic<std::uint64_t> round_and_arrived{0};  // INV1
  std::atomic<std::uint64_t> history{0};            // INV2
  RobustMutex mutex;                                // guards every change above
};

static_assert(std::is_standard_layout_v<BarrierState>, "BarrierState is shared between processes");
static_assert(sizeof(BarrierState) == 48 + sizeof(pthread_mutex_t),
              "BarrierState layout changed: bump kVersion");
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);

}  // namespace detail

class MP_API Barrier {
 public:
  // Barrier::Barrier(parties): mp::ValueError if parties <= 0.
  explicit Barrier(int parties);

  // Barrier::wait(): blocks (event count: a short spin, then futex) until `parties` have arrived this round;
  // returns this caller's arrival index 0..parties-1. mp::BrokenBarrier if
  // the barrier is or becomes broken, or is reset, while waiting.
  int wait() { return wait_until(detail::Deadline::never()); }

  // Barrier::wait(timeout): as wait(); when the timeout runs out first it
  // breaks the barrier and throws mp::BrokenBarrier.
  template <class Rep, class Period>
  int wait(std::chrono::duration<Rep, Period> timeout) {
    return wait_until(detail::Deadline::after(timeout));
  }

  // Barrier::reset(): back to an empty, unbroken round; the current waiters
  // get mp::BrokenBarrier.
  void reset();

  // Barrier::abort(): breaks the barrier: waiters and later callers get
  // mp::BrokenBarrier until reset().
  void abort();

  // Barrier::broken(): whether it is broken now.
  [[nodiscard]] bool broken() const noexcept;
  // Barrier::parties(): the number given to the constructor.
  [[nodiscard]] int parties() const noexcept;
  // Barrier::n_waiting(): how many wait in the current round (0 when broken).
  [[nodiscard]] int n_waiting() const noexcept;

 private:
  int wait_until(const detail::Deadline& deadline);

  template <class T, class Enable>
  friend struct mp::codec;
  Barrier(detail::AdoptTag, std::shared_ptr<detail::BarrierState> state) noexcept
      : state_(std::move(state)) {}

  std::shared_ptr<detail::BarrierState> state_;
};

// codec<Barrier>: a Barrier travels only as a Process argument (handle_codec.hpp).
template <>
struct codec<Barrier> {
  static constexpr bool shared_by_inheritance = true;
  static void encode(Writer& writer, const Barrier& barrier) {
    detail::put_shared_object(writer, barrier.state_, "mp::Barrier");
  }
  static Barrier make(Reader& reader) {
    return Barrier(detail::AdoptTag{},
                   detail::take_shared_object<detail::BarrierState>(reader, "mp::Barrier"));
  }
  static void decode(Reader& reader, Barrier& barrier) { barrier = make(reader); }
  static void signature(std::string& out) { out += "handle<Barrier>"; }
};

}  // namespace mp
