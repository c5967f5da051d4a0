// src/semaphore.cpp — the futex protocol behind mp::Semaphore (INV1, INV2 in
// semaphore.hpp).
//
// Why no wake-up is lost: the event count's argument (detail/event_count.hpp):
// release() bumps the count and then notifies; a waiter re-checks "a token is
// there" after it prepared to sleep. A count that went 0 -> 1 -> 0 before the
// waiter looked means someone else took the token: waiting on is right.
//
// Why wake everyone (the event count always does): a waiter woken alone and
// killed before taking the token would strand it while others sleep. Waking
// all lets each retry; the losers wait again. The cost is paid only when
// someone sleeps.
#include "mp/semaphore.hpp"

#include <climits>
#include <string>

#include "mp/detail/shm.hpp"
#include "mp/errors.hpp"

namespace mp {

Semaphore::Semaphore(int value) : Semaphore(value, INT_MAX, "Semaphore") {}

Semaphore::Semaphore(int value, int max_value, const char* type_name) {
  if (value < 0)
    throw ValueError(std::string(type_name) + "(" + std::to_string(value) +
                     "): the initial value must be >= 0");
  state_ = detail::make_shared_object<detail::SemaphoreState>(type_name, static_cast<std::uint32_t>(value),
                                                              static_cast<std::uint32_t>(max_value));
}

BoundedSemaphore::BoundedSemaphore(int value) : Semaphore(value, value, "BoundedSemaphore") {}

bool Semaphore::acquire_with(detail::AcquireWait wait, const detail::Deadline& deadline) {
  auto& s = *state_;
  // Relaxed: only a guess for the first compare-exchange, which re-reads it.
  std::uint32_t count = s.count.load(std::memory_order_relaxed);
  for (;;) {
    while (count > 0) {
      // Acquire on success pairs with the release half of the fetch_add in
      // release(): what the releaser wrote before is visible to us.
      if (s.count.compare_exchange_weak(count, count - 1, std::memory_order_acquire,
                                        std::memory_order_relaxed))
        return true;
    }
    if (wait == detail::AcquireWait::no) return false;
    // Acquire: pairs with the release half of the CAS in release(). A false
    // await means the deadline passed with no token in sight.
    if (!s.waiters.await([&] { return s.count.load(std::memory_order_acquire) > 0; }, deadline)) return false;
    count = s.count.load(std::memory_order_relaxed);  // a guess for the CAS above
  }
}

void Semaphore::release() {
  auto& s = *state_;
  // Relaxed: a guess for the compare-exchange below, which re-reads it.
  std::uint32_t count = s.count.load(std::memory_order_relaxed);
  do {
    if (count >= s.max_value)
      throw ValueError(s.max_value == INT_MAX ? "Semaphore::release(): the count would overflow INT_MAX"
                                              : "BoundedSemaphore::release(): released too many times "
                                                "(the value would exceed its initial value " +
                                                    std::to_string(s.max_value) + ")");
    // Release: pairs with the acquire CAS in acquire_with() (and the acquire
    // loads in its wait): the taker sees what the releaser wrote.
  } while (
      !s.count.compare_exchange_weak(count, count + 1, std::memory_order_release, std::memory_order_relaxed));
  s.waiters.notify_all();  // INV2; a system call only if someone sleeps
}

int Semaphore::get_value() const noexcept {
  // Relaxed: a snapshot, as Python's get_value().
  return static_cast<int>(state_->count.load(std::memory_order_relaxed));
}

}  // namespace mp
