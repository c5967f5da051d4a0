// src/semaphore.cpp — the futex protocol behind mp::Semaphore (INV1, INV2 in
// semaphore.hpp).
//
// Why no wake-up is lost: a waiter does  sleepers += 1 ; read count  and a
// releaser does  count += 1 ; read sleepers , all four seq_cst. In their
// single total order either the waiter's read comes after the releaser's
// increment (it sees a token and does not sleep), or the releaser's read comes
// after the waiter's announcement (it sees a sleeper and calls futex_wake). If
// the wake comes before the waiter is inside futex_wait, the kernel's check
// "count still 0?" fails (EAGAIN) and it retries. A count that went 0 -> 1 -> 0
// before the waiter slept means someone else took the token: sleeping is right.
//
// Why wake everyone: a waiter woken alone and killed before taking the token
// would strand it while others sleep. Waking all sleepers lets each retry; the
// losers go back to sleep. The cost is paid only when someone sleeps.
#include "mp/semaphore.hpp"

#include <climits>
#include <string>

#include "mp/detail/futex.hpp"
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
    if (wait == detail::AcquireWait::no || deadline.expired()) return false;
    // Announce, then re-read: the seq_cst pair with release() (file comment).
    s.sleepers.fetch_add(1, std::memory_order_seq_cst);
    detail::WaitResult result = detail::WaitResult::woken;
    if (s.count.load(std::memory_order_seq_cst) == 0) result = detail::futex_wait(s.count, 0, deadline);
    // Relaxed: the count is only a hint for releasers to call futex_wake.
    s.sleepers.fetch_sub(1, std::memory_order_relaxed);
    count = s.count.load(std::memory_order_relaxed);
    if (result == detail::WaitResult::timed_out && count == 0) return false;
    // Woken, interrupted, or timed out with a token in sight: try again (the
    // expired() check above ends a timed-out wait that loses the race).
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
    // seq_cst: its release half pairs with the acquire CAS in acquire_with();
    // its total order with the sleepers load below is the no-lost-wake-up
    // argument in the file comment.
  } while (
      !s.count.compare_exchange_weak(count, count + 1, std::memory_order_seq_cst, std::memory_order_relaxed));
  if (s.sleepers.load(std::memory_order_seq_cst) != 0) detail::futex_wake(s.count);
}

int Semaphore::get_value() const noexcept {
  // Relaxed: a snapshot, as Python's get_value().
  return static_cast<int>(state_->count.load(std::memory_order_relaxed));
}

}  // namespace mp
