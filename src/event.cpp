// src/event.cpp — the protocol behind mp::Event (INV1, INV2 in event.hpp).
//
// Why no wake-up is lost: the event count's argument (detail/event_count.hpp):
// set() changes `state` and then notifies; a waiter's condition ("flag up or
// generation moved") is re-checked after it prepared to sleep. Because every
// set() changes the generation, a set() followed at once by clear() still
// satisfies every waiter that was already waiting.
#include "mp/event.hpp"

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
    // Release: publishes what the setter wrote (pairs with the acquire loads
    // in is_set() and wait_until()). Generation + 1 (INV1).
    if (s.state.compare_exchange_weak(old, (old + 2) | EventState::kFlag, std::memory_order_release,
                                      std::memory_order_relaxed))
      break;
  }
  s.waiters.notify_all();  // INV2
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
  const std::uint32_t seen = s.state.load(std::memory_order_acquire);
  if (seen & EventState::kFlag) return true;
  const std::uint32_t generation = seen >> 1;
  // Raised now, or raised (and maybe cleared) since we started. Acquire:
  // pairs with the release CAS in set(). The event count re-checks this after
  // each prepare, so a set() racing with the deadline still counts.
  return s.waiters.await(
      [&] {
        const std::uint32_t now = s.state.load(std::memory_order_acquire);
        return (now & EventState::kFlag) != 0 || (now >> 1) != generation;
      },
      deadline);
}

}  // namespace mp
