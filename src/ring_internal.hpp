// src/ring_internal.hpp — what the ring's source files share (private to src/):
// position/count packing, record sizes, the sleep/wake halves of INV7 and the
// side lock guard. See include/mp/detail/ring.hpp for INV1..INV7.
#pragma once

#include <atomic>
#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "mp/detail/clock.hpp"
#include "mp/detail/futex.hpp"
#include "mp/detail/ring.hpp"
#include "mp/detail/robust_mutex.hpp"

namespace mp::detail::ring_internal {

// Spins before a waiter goes to sleep (each a `pause`, some tens of ns): long
// enough to cover a peer's put or get in progress, short enough not to steal
// a shared core for more than a few microseconds.
inline constexpr int kSpinIterations = 200;

// A streamed item's reader checks this often whether its producer died.
inline constexpr auto kStreamLivenessPoll = std::chrono::milliseconds(10);

// A lock is held only for a memcpy unless the side's streaming hint is set;
// a timed or non-blocking call waits at least this long for such a holder.
inline constexpr auto kShortHold = std::chrono::milliseconds(5);

constexpr std::uint32_t position_of(std::uint64_t word) noexcept { return static_cast<std::uint32_t>(word); }
constexpr std::uint32_t count_of(std::uint64_t word) noexcept {
  return static_cast<std::uint32_t>(word >> 32);
}
constexpr std::uint64_t pack(std::uint32_t count, std::uint32_t position) noexcept {
  return (static_cast<std::uint64_t>(count) << 32) | position;
}
constexpr std::uint32_t record_bytes(std::size_t payload) noexcept {
  return static_cast<std::uint32_t>((sizeof(RecordHeader) + payload + 7) & ~std::size_t{7});
}

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// wait_for(seq, sleepers, ready, deadline): the sleeping half of INV7. Spins
// a little, then raises the `sleepers` flag and sleeps on `seq` until ready()
// holds or the deadline passes. Returns ready()'s last value.
template <class Ready>
bool wait_for(std::atomic<std::uint32_t>& seq, std::atomic<std::uint32_t>& sleepers, Ready ready,
              const Deadline& deadline) noexcept {
  for (int i = 0; i < kSpinIterations; ++i) {
    if (ready()) return true;
    cpu_relax();
  }
  for (;;) {
    // INV7: an acq_rel RMW on `sleepers`; a waker's exchange on it either
    // comes first (we read from it, so we see the state it published) or
    // reads our 1 and wakes us. Raised again before every sleep, since a
    // waker lowers it.
    sleepers.exchange(1, std::memory_order_acq_rel);
    // Read the sequence word before re-checking: a bump after this read makes
    // futex_wait return at once.
    const std::uint32_t observed = seq.load(std::memory_order_acquire);  // pairs with the waker's fetch_add
    if (ready()) return true;
    if (deadline.expired()) return false;
    (void)futex_wait(seq, observed, deadline);
  }
  // The flag is left raised: at worst one later waker makes one needless
  // FUTEX_WAKE (and lowers it).
}

// wake(seq, sleepers): the waking half of INV7, after the caller's state
// change. One FUTEX_WAKE per raising of the flag, not one per item: while a
// woken consumer is still being scheduled, further puts make no system call.
inline void wake(std::atomic<std::uint32_t>& seq, std::atomic<std::uint32_t>& sleepers) noexcept {
  // INV7: an RMW (not a plain load) so that it is ordered with the sleeper's
  // exchange on the same word; release publishes our state change to a
  // sleeper whose exchange comes after ours. (An RMW rather than a seq_cst
  // fence, which ThreadSanitizer does not model.)
  if (sleepers.exchange(0, std::memory_order_acq_rel) != 0) {
    seq.fetch_add(1, std::memory_order_release);  // pairs with the acquire load in wait_for()
    futex_wake(seq, INT_MAX);
  }
}

// Unlocks a side's mutex when the scope ends, on every path (exceptions too).
class SideLock {
 public:
  explicit SideLock(RobustMutex& mutex) noexcept : mutex_(&mutex) {}
  SideLock(const SideLock&) = delete;
  SideLock& operator=(const SideLock&) = delete;
  ~SideLock() { unlock(); }
  void unlock() noexcept {
    if (mutex_ != nullptr) std::exchange(mutex_, nullptr)->unlock();
  }

 private:
  RobustMutex* mutex_;
};

}  // namespace mp::detail::ring_internal
