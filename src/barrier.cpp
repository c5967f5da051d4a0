// src/barrier.cpp — the protocol behind mp::Barrier (states and INV1..INV3 in
// barrier.hpp).
//
// Waiting: an arriving party changes the state under the barrier's robust
// mutex and prepares its wait on the event count (detail/event_count.hpp)
// before unlocking; whoever ends the round, breaks or resets the barrier does
// so under the same mutex and then notifies. The mutex orders the change after
// the prepare, so the event count's guarantee applies: the wait returns (after
// a short spin, or from the futex) and no wake-up is lost. A woken waiter
// takes the mutex and reads its round's outcome.
#include "mp/barrier.hpp"

#include <cerrno>
#include <string>

#include "mp/detail/shm.hpp"
#include "mp/detail/system_error.hpp"
#include "mp/errors.hpp"

namespace mp {

using detail::BarrierState;

namespace {

constexpr std::uint64_t pack(std::uint32_t round, std::uint32_t arrived) noexcept {
  return (static_cast<std::uint64_t>(round) << 32) | arrived;
}
constexpr std::uint32_t round_of(std::uint64_t packed) noexcept {
  return static_cast<std::uint32_t>(packed >> 32);
}
constexpr std::uint32_t arrived_of(std::uint64_t packed) noexcept {
  return static_cast<std::uint32_t>(packed);
}
constexpr std::uint64_t history_bit(std::uint32_t round) noexcept { return std::uint64_t{1} << (round % 64); }

// Holds the barrier's mutex for one critical section. Every field is changed
// under it with relaxed atomics (the mutex orders them; they are atomics only
// because the const queries read them without it).
class Critical {
 public:
  explicit Critical(BarrierState& b) : b_(b) {
    int rc = b.mutex.lock_native();
    if (rc == EOWNERDEAD) {
      // A process died in here. Each change is a single store (INV1), so the
      // state is one of the table's; but it may have died before
      // notifying: do that for it (INV3). Waiters look again.
      wake_all();
    } else if (rc != 0) {
      detail::throw_system_error("pthread_mutex_lock", "Barrier", rc);
    }
  }
  Critical(const Critical&) = delete;
  Critical& operator=(const Critical&) = delete;
  ~Critical() { b_.mutex.unlock(); }

  // wake_all(): INV3 (waiters take the mutex before reading the state, so
  // the mutex orders the state itself).
  void wake_all() noexcept { b_.waiters.notify_all(); }

 private:
  BarrierState& b_;
};

}  // namespace

Barrier::Barrier(int parties) {
  if (parties <= 0)
    throw ValueError("Barrier(" + std::to_string(parties) + "): the number of parties must be >= 1");
  state_ = detail::make_shared_object<BarrierState>("Barrier", static_cast<std::uint32_t>(parties));
}

int Barrier::wait_until(const detail::Deadline& deadline) {
  auto& b = *state_;
  std::uint32_t round;
  std::uint32_t index;
  detail::EventCount::Key key;
  {
    Critical hold(b);
    if (b.broken.load(std::memory_order_relaxed))
      throw BrokenBarrier(
          "Barrier::wait(): the barrier is broken (aborted, or a wait timed out); call reset()");
    const std::uint64_t packed = b.round_and_arrived.load(std::memory_order_relaxed);
    round = round_of(packed);
    index = arrived_of(packed);
    if (index + 1 == b.parties) {
      // Complete the round (INV2 first: a death between the two stores leaves
      // the round open with this party not counted, a consistent state).
      b.history.store(b.history.load(std::memory_order_relaxed) & ~history_bit(round),
                      std::memory_order_relaxed);
      b.round_and_arrived.store(pack(round + 1, 0), std::memory_order_relaxed);  // INV1: one store
      if (index > 0) hold.wake_all();  // nobody else waits in a round of one
      return static_cast<int>(index);
    }
    b.round_and_arrived.store(pack(round, index + 1), std::memory_order_relaxed);  // INV1: one store
    // Prepared under the mutex: any later change notifies us (file comment).
    key = b.waiters.prepare_wait();
  }
  for (;;) {
    const detail::WaitResult result = b.waiters.wait(key, deadline);
    Critical hold(b);
    const std::uint64_t packed = b.round_and_arrived.load(std::memory_order_relaxed);
    if (round_of(packed) != round) {
      // Our round ended: completed, or reset (INV2).
      if (b.history.load(std::memory_order_relaxed) & history_bit(round))
        throw BrokenBarrier("Barrier::wait(): the barrier was reset while waiting");
      return static_cast<int>(index);
    }
    if (b.broken.load(std::memory_order_relaxed))
      throw BrokenBarrier("Barrier::wait(): the barrier was broken (aborted, or another wait timed out)");
    if (result == detail::WaitResult::timed_out || deadline.expired()) {
      b.broken.store(1, std::memory_order_relaxed);
      hold.wake_all();
      throw BrokenBarrier(
          "Barrier::wait(timeout): timed out before all parties arrived; the barrier is now broken");
    }
    key = b.waiters.prepare_wait();  // under the mutex again
  }
}

void Barrier::reset() {
  auto& b = *state_;
  Critical hold(b);
  const std::uint64_t packed = b.round_and_arrived.load(std::memory_order_relaxed);
  if (arrived_of(packed) != 0) {
    const std::uint32_t round = round_of(packed);
    // INV2 first, then the one store that ends the round (INV1).
    b.history.store(b.history.load(std::memory_order_relaxed) | history_bit(round),
                    std::memory_order_relaxed);
    b.round_and_arrived.store(pack(round + 1, 0), std::memory_order_relaxed);
  }
  b.broken.store(0, std::memory_order_relaxed);
  hold.wake_all();
}

void Barrier::abort() {
  auto& b = *state_;
  Critical hold(b);
  b.broken.store(1, std::memory_order_relaxed);
  hold.wake_all();
}

bool Barrier::broken() const noexcept {
  // Relaxed: a snapshot; the mutex orders it for waiters.
  return state_->broken.load(std::memory_order_relaxed) != 0;
}

int Barrier::parties() const noexcept { return static_cast<int>(state_->parties); }

int Barrier::n_waiting() const noexcept {
  if (broken()) return 0;
  // Relaxed: a snapshot.
  return static_cast<int>(arrived_of(state_->round_and_arrived.load(std::memory_order_relaxed)));
}

}  // namespace mp
