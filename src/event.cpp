// src/event.cpp — the futex protocol behind mp::Event (INV1, INV2 in event.hpp).
//
// Why no wake-up is lost: a waiter does  sleepers += 1 ; read state  and set()
// does  state = new generation | flag ; read sleepers , all seq_cst. In their
// total order either the waiter reads the raised flag (and returns), or set()
// sees the sleeper and wakes it; a wake that comes before the waiter is inside
// futex_wait makes the kernel's "state still what I read?" check fail. Because
// every set() changes the generation, a set() followed by clear() still
// changes the word, so a sleeper can neither miss it nor sleep through it.
#include "mp/event.hpp"

#include "mp/detail/futex.hpp"
#include "mp/detail/shm.hpp"

namespace mp {

using detail::EventState;

Event::Event() : state_(detail::make_shared_object<EventState>("Event")) {}

void Event::set() noexcept {
  auto& s = *state_;
  // Relaxed: a guess for the compare-exchange, which re-reads it.
  std::uint32_t old = s.state.load(std::memory_order_relaxed);
  for (;;) {
    // Already up: nothing changes and nobody needs waking (a set() that
    // changes nothing promises waiters nothing either).
    if (old & EventState::kFlag) return;
    // seq_cst: release half publishes what the setter wrote (pairs with the
    // acquire loads in is_set()/wait_until()); total order with the sleepers
    // load below is the no-lost-wake-up argument. Generation + 1 (INV1).
    if (s.state.compare_exchange_weak(old, (old + 2) | EventState::kFlag, std::memory_order_seq_cst,
                                      std::memory_order_relaxed))
      break;
  }
  if (s.sleepers.load(std::memory_order_seq_cst) != 0) detail::futex_wake(s.state);
}

void Event::clear() noexcept {
  // Release: a waiter that sees the flag down after a clear() sees what the
  // clearer wrote before. Generation unchanged (INV1).
  state_->state.fetch_and(~EventState::kFlag, std::memory_order_release);
}

bool Event::is_set() const noexcept {
  // Acquire: pairs with the seq_cst store in set(): a true answer makes the
  // setter's earlier writes visible.
  return (state_->state.load(std::memory_order_acquire) & EventState::kFlag) != 0;
}

bool Event::wait_until(const detail::Deadline& deadline) noexcept {
  auto& s = *state_;
  // Acquire: pairs with set() (see is_set()).
  std::uint32_t seen = s.state.load(std::memory_order_acquire);
  if (seen & EventState::kFlag) return true;
  const std::uint32_t generation = seen >> 1;
  s.sleepers.fetch_add(1, std::memory_order_seq_cst);  // pairs with the sleepers load in set()
  bool raised = false;
  for (;;) {
    // seq_cst: the other half of the pair with set() (file comment); it also
    // acquires what the setter published.
    std::uint32_t now = s.state.load(std::memory_order_seq_cst);
    if ((now & EventState::kFlag) || (now >> 1) != generation) {
      raised = true;  // raised now, or raised and cleared since we started
      break;
    }
    if (detail::futex_wait(s.state, now, deadline) == detail::WaitResult::timed_out) {
      // One last look: a set() racing with the timeout still counts.
      std::uint32_t last = s.state.load(std::memory_order_acquire);
      raised = (last & EventState::kFlag) || (last >> 1) != generation;
      break;
    }
  }
  // Relaxed: only a hint for set() whether to call futex_wake.
  s.sleepers.fetch_sub(1, std::memory_order_relaxed);
  return raised;
}

}  // namespace mp
