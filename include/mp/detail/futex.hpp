// mp/detail/futex.hpp — the two futex calls every mp wait is built on.
//
// Protocol used throughout mp (a "sequence word"): a waiter reads the word,
// re-checks its condition, then futex_wait(word, value_read). A waker changes
// the shared state, bumps the word, then futex_wake(word). The kernel compares
// the word with value_read atomically with going to sleep, so a bump that
// happens after the read makes the wait return at once (EAGAIN): no wake-up is
// lost. A waiter killed mid-wait leaves nothing behind to repair.
//
// The futexes are shared (no FUTEX_PRIVATE_FLAG): the words live in
// MAP_SHARED memory that several processes map.
#pragma once

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdint>

#include "mp/detail/clock.hpp"

namespace mp::detail {

static_assert(std::atomic<std::uint32_t>::is_always_lock_free);
static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));

enum class WaitResult { woken, timed_out, interrupted };

// futex_wait(word, expected, deadline): sleeps while *word == expected, until
// woken or the absolute monotonic deadline. Returns woken also when the value
// had already changed (EAGAIN): the caller re-checks its condition anyway.
inline WaitResult futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                             const Deadline& deadline) noexcept {
  timespec abs{};
  const timespec* timeout = nullptr;
  if (!deadline.is_never()) {
    abs = deadline.as_timespec();
    timeout = &abs;
  }
  // FUTEX_WAIT_BITSET takes an absolute time on CLOCK_MONOTONIC (plain
  // FUTEX_WAIT takes a relative one), so retries never extend the deadline.
  long rc = ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_BITSET, expected,
                      timeout, nullptr, FUTEX_BITSET_MATCH_ANY);
  if (rc == 0) return WaitResult::woken;
  switch (errno) {
    case ETIMEDOUT: return WaitResult::timed_out;
    case EINTR: return WaitResult::interrupted;
    default: return WaitResult::woken;  // EAGAIN: value changed before we slept
  }
}

// futex_wake(word, n): wakes up to n sleepers (INT_MAX: all). Returns how many.
inline int futex_wake(std::atomic<std::uint32_t>& word, int n = INT_MAX) noexcept {
  return static_cast<int>(
      ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE, n, nullptr, nullptr, 0));
}

}  // namespace mp::detail
