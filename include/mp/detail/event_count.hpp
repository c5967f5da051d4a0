// mp/detail/event_count.hpp — the one wait primitive: an event count in shared
// memory, with mp's one spin policy inside it.
//
// Everything in mp that sleeps until another thread or process changes some
// shared state (Event, Semaphore, Condition, Barrier, the ring, ...) waits
// through an EventCount placed in that state's shared region:
//
//   // waiter                                    // waker
//   bool ok = ec.await([&] { return ready(); },  make_ready();        // any atomic store
//                      deadline);                ec.notify_all();     // no syscall if nobody sleeps
//
// or, when the waiter must do something between checking and sleeping (drop
// a lock, say), the three steps that await() is made of:
//
//   auto key = ec.prepare_wait();      // from here on, no notify can be missed
//   if (ready()) { ec.cancel_wait(); return; }
//   unlock(); ec.wait(key, deadline);  // returns at once if a notify came since prepare
//
// Protocol. Two 32-bit words: `epoch`, the futex word, which only a waker
// that may have a sleeper to wake advances; and `sleepers`, a flag a waiter
// raises before it checks its condition for the last time, and a waker lowers
// when it decides to wake. A waker that finds the flag down makes no system
// call at all. Every wake wakes *all* sleepers: a waiter woken alone and then
// killed before acting would strand the hand-off it was woken for, while
// waking all lets each re-check (a sleeper that finds nothing to do sleeps
// again). A flag is not a count: a waiter killed while asleep leaves it
// raised, which costs the next notify one needless FUTEX_WAKE and is then
// gone (a count would stay wrong, and cost every later notify a system call).
//
// Correctness (no lost wake-up). prepare_wait() does, in this order:
//   P1 key = epoch (acquire)   P2 sleepers.exchange(1)   P3 seq_cst fence
// then the caller checks its condition (C), then wait() sleeps while
// epoch == key. A waker does:
//   W1 make the condition true   W2 seq_cst fence   W3 load sleepers
//   W4 if raised: sleepers.exchange(0); epoch += 1 (release); FUTEX_WAKE all
// Take a waker whose change the waiter's check C missed. The two fences are
// in one total order. If W2 came before P3, C would see W1 (a read after a
// fence sees what came before an earlier fence), so P3 came before W2, and
// then W3 reads the flag P2 raised or a later value. A later value 0 is some
// waker's W4 exchange, which comes after P2 and so after P1 (sequenced
// before P2); that waker then advances the epoch past `key`. The waiter's
// FUTEX_WAIT compares the epoch with `key` inside the kernel, atomically with
// going to sleep, so either it finds the advanced epoch and returns at once,
// or it is asleep in time for that waker's FUTEX_WAKE. (P1 must come before
// P2: read the other way round, a waker could clear our flag and advance the
// epoch between them, and we would sleep on the new epoch with the flag down.)
//
// Memory ordering. The fences (full_fence(): seq_cst) order each side's own
// store before its own load (a Dekker pattern: acquire/release alone allow
// both loads to miss).
// The exchanges are acq_rel so that a waiter whose P2 reads a waker's 0
// synchronizes with that waker and sees its W1. The epoch increment is a
// release paired with P1's acquire, so a waiter whose key already reflects a
// waker's increment also sees that waker's change. The condition itself is
// the caller's: its own atomics carry the data (ThreadSanitizer checks them;
// it does not model fences, which only matter for liveness here).
//
// Spin policy (the one tuning point). A halted vCPU takes ~25 us to wake, so
// a waiter that expects a hand-off soon keeps its CPU for a while first:
// await() spins on the condition (without raising the flag, so the waker
// makes no system call), wait() spins on the epoch. The spin is bounded by
// `spin_budget_ns`, learned per event count in the shared region:
//   - a spin that succeeds after t moves the budget towards 4t;
//   - a spin that fails and is then woken soon (within kMaxSpin) raises it
//     towards that wait's length (a slightly longer spin would have won);
//   - a spin that fails before a long sleep halves it (down to kMinSpin);
//   - a spin that finds it was descheduled (a gap between two of its clock
//     reads: the CPUs are oversubscribed) stops at once and halves it, so a
//     spinner does not keep the CPU its peer needs;
//   - no spin at all while more than one thread beyond the CPUs is runnable
//     (cpus_oversubscribed(), mp/detail/oversubscription.hpp: the peer is
//     then likely waiting for a CPU, perhaps the spinner's).
// There is no sched_yield anywhere: on a busy machine a yield loop gives the
// CPU away for milliseconds. After the spin a waiter sleeps in the kernel and
// uses no CPU until woken or its deadline.
//
// Processes that die. A waiter killed at any point (before, in, or after the
// sleep) leaves at most the flag raised (see above); a waker killed between
// lowering the flag and the FUTEX_WAKE leaves sleepers asleep until the next
// notify, exactly as if it had died before its state change became visible
// — callers make the change and the notify adjacent.
//
// Layout: an ABI between processes (16 bytes, standard layout, lock-free
// 32-bit atomics); zero-initialised memory is not a valid state for
// spin_budget_ns (it means "never spin"), so construct it in place.
#pragma once

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <type_traits>

#include "mp/detail/clock.hpp"
#include "mp/detail/export.hpp"
#include "mp/detail/futex.hpp"
#include "mp/detail/oversubscription.hpp"

namespace mp::detail {

// cpu_relax(): one spin-wait hint to the CPU (x86 `pause`), tens of ns.
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// full_fence(): a sequentially consistent fence (P3 and W2 below). On x86-64
// a locked read-modify-write of the stack, as the Linux kernel's smp_mb():
// the same full barrier as `mfence` for ordinary memory, cheaper, and with
// the "memory" clobber the compiler moves no memory access across it. It is
// also what GCC 12 accepts under ThreadSanitizer, which rejects
// std::atomic_thread_fence (TSan does not model fences; they matter only for
// the liveness argument below, not for the data the caller's atomics carry).
inline void full_fence() noexcept {
#if defined(__x86_64__)
  asm volatile("lock orl $0, (%%rsp)" ::: "memory", "cc");
#else
  std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
}

struct MP_API EventCount {
  using Key = std::uint32_t;

  // Spin budget bounds, in ns. kMaxSpin covers a halted vCPU's wake-up on
  // each side of a hand-off; kMinSpin keeps probing cheaply after failures.
  static constexpr std::uint32_t kMinSpinNs = 1'000;
  static constexpr std::uint32_t kInitialSpinNs = 16'000;
  static constexpr std::uint32_t kMaxSpinNs = 60'000;
  // A gap this long between two clock reads of one spin means the spinner
  // was descheduled: stop spinning.
  static constexpr std::int64_t kDescheduledNs = 20'000;

  std::atomic<std::uint32_t> epoch{0};     // the futex word; advanced only by wakers (W4)
  std::atomic<std::uint32_t> sleepers{0};  // 1: a waiter may sleep (raised at P2, lowered at W4)
  std::atomic<std::uint32_t> spin_budget_ns{kInitialSpinNs};  // a hint; racy updates are fine
  std::uint32_t reserved = 0;

  // EventCount::prepare_wait(): P1..P3. Returns the key for wait(). From now
  // on, a notify that follows a state change makes wait(key) return.
  [[nodiscard]] Key prepare_wait() noexcept {
    const Key key = epoch.load(std::memory_order_acquire);  // P1; pairs with the release increment in W4
    // P2. acq_rel: if this reads a waker's lowering (0), we synchronize with
    // it and our condition check sees its change.
    sleepers.exchange(1, std::memory_order_acq_rel);
    full_fence();  // P3; pairs with W2 (file comment)
    return key;
  }

  // EventCount::cancel_wait(): the condition held after prepare_wait(). The
  // raised flag is left for the next waker to lower (it may be another
  // waiter's too), which costs that waker one FUTEX_WAKE.
  void cancel_wait() noexcept {}

  // EventCount::wait(key, deadline): spins (policy above) while the epoch is
  // still `key`, then sleeps in the kernel until a notify advances it, the
  // deadline passes, or a signal arrives. Returns woken (also when the epoch
  // had already moved), timed_out or interrupted; the caller re-checks its
  // condition in every case.
  WaitResult wait(Key key, const Deadline& deadline) noexcept {
    const auto start = MonotonicClock::now();
    // Acquire: pairs with the release increment in W4.
    if (spin([&] { return epoch.load(std::memory_order_acquire) != key; }, deadline, start))
      return WaitResult::woken;
    const WaitResult result = futex_wait(epoch, key, deadline);
    if (result == WaitResult::woken) learn_after_sleep(MonotonicClock::now() - start);
    return result;
  }

  // EventCount::notify_all(): W2..W4, after the caller made its change (W1).
  // No system call unless a waiter raised the flag since the last wake.
  void notify_all() noexcept {
    if (claim_wake()) futex_wake(epoch, INT_MAX);
  }

  // EventCount::notify_all_after_rmw(): notify_all() for a caller that has
  // executed an atomic read-modify-write on some word after its change (W1)
  // and before this call; the ring's commits are followed by unlocking their
  // side's robust mutex, whose unlock must clear the owner and learn whether
  // FUTEX_WAITERS was set (the kernel sets it at any time) in one atomic step.
  // On x86-64 every atomic read-modify-write is a `lock`ed instruction, and
  // loads are not reordered with locked instructions (Intel SDM vol. 3,
  // 8.2.2; AMD APM vol. 2, 7.4.2), so W1's store is globally visible before
  // W3's load: that instruction is W2, and the fence is skipped (measured: a
  // `long` put is ~8% faster between two processes; the fence costs a locked
  // instruction per hand-off on each side). Other architectures keep it.
  // The argument needs only "some locked RMW between W1 and W3"; callers
  // name it where they call this.
  void notify_all_after_rmw() noexcept {
#if defined(__x86_64__)
    if (claim_wake_after_barrier()) futex_wake(epoch, INT_MAX);
#else
    notify_all();
#endif
  }

  // EventCount::claim_wake(): W2..W4 without the FUTEX_WAKE, for waiters
  // that sleep in poll(2) on an fd instead of the futex (the shared-memory
  // Pipe: its fds must also report a peer's death). True when a waiter may
  // sleep and the caller must now make that fd readable; the argument above
  // holds with "the fd is readable" in place of "the epoch moved", since a
  // readable fd, like a moved epoch, stays so until the waiter looks.
  [[nodiscard]] bool claim_wake() noexcept {
    full_fence();  // W2; pairs with P3
    return claim_wake_after_barrier();
  }

  // EventCount::claim_wake_after_barrier(): W3..W4, for a caller that has
  // just executed a full barrier (W2) itself.
  [[nodiscard]] bool claim_wake_after_barrier() noexcept {
    // W3. Relaxed: the fence orders it; a load first keeps the cache line
    // shared while nobody sleeps (no read-modify-write on the fast path).
    if (sleepers.load(std::memory_order_relaxed) == 0) return false;
    // W4. acq_rel: a waiter whose P2 reads this 0 sees our change. Only one
    // of several racing wakers finds the flag still up; it wakes for all.
    if (sleepers.exchange(0, std::memory_order_acq_rel) == 0) return false;
    epoch.fetch_add(1, std::memory_order_release);  // pairs with P1 and the spin in wait()
    return true;
  }

  // EventCount::spin_until(done, deadline): the spin policy alone, for a
  // waiter whose sleep is poll(2) on an fd (see claim_wake): true as soon as
  // done() holds, false once the learned budget or the deadline ran out.
  // After such a sleep, woken_after(waited) lets the budget learn from it.
  template <class Done>
  [[nodiscard]] bool spin_until(Done done, const Deadline& deadline) noexcept {
    return done() || spin(done, deadline, MonotonicClock::now());
  }
  void woken_after(MonotonicClock::duration waited) noexcept { learn_after_sleep(waited); }

  // EventCount::notify(): the same as notify_all(): every sleeper is woken
  // and re-checks (see "Protocol": waking one is not SIGKILL-safe).
  void notify() noexcept { notify_all(); }

  // EventCount::await(ready, deadline): returns true as soon as ready() is
  // true, false if the deadline passes first. Spins on ready() first (the
  // flag stays down, so wakers make no system call), then prepares, checks
  // and sleeps until ready() holds. ready() must be cheap, must not throw,
  // and must read the caller's shared state with acquire (or stronger) loads.
  template <class Ready>
  bool await(Ready ready, const Deadline& deadline) noexcept {
    if (ready()) return true;
    const auto start = MonotonicClock::now();
    if (spin(ready, deadline, start)) return true;
    for (;;) {
      const Key key = prepare_wait();
      if (ready()) {
        cancel_wait();
        learn_after_sleep(MonotonicClock::now() - start);
        return true;
      }
      if (deadline.expired()) {
        cancel_wait();
        return false;
      }
      (void)futex_wait(epoch, key, deadline);  // every outcome: look again
    }
  }

 private:
  // spin(done, deadline, start): the spin policy; true if done() became true.
  template <class Done>
  bool spin(Done&& done, const Deadline& deadline, MonotonicClock::time_point start) noexcept {
    if (cpus_oversubscribed()) return done();  // see "Spin policy"
    // Relaxed: a hint, not data.
    const std::uint32_t budget = spin_budget_ns.load(std::memory_order_relaxed);
    const auto stop = std::min(start + std::chrono::nanoseconds(budget), deadline.when());
    auto last = start;
    for (;;) {
      for (int i = 0; i < 16; ++i) {
        if (done()) {
          learn_spin_success(budget, MonotonicClock::now() - start);
          return true;
        }
        cpu_relax();
      }
      const auto now = MonotonicClock::now();
      if (now - last > std::chrono::nanoseconds(kDescheduledNs) || now >= stop) {
        if (now < deadline.when()) set_budget(budget, budget / 2);  // failed: shorter next time
        return done();
      }
      last = now;
    }
  }

  void learn_spin_success(std::uint32_t budget, MonotonicClock::duration took) noexcept {
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(took).count();
    const std::uint64_t target = static_cast<std::uint64_t>(ns) * 4;
    set_budget(budget, static_cast<std::uint32_t>(
                           (3 * std::uint64_t{budget} + std::min<std::uint64_t>(target, kMaxSpinNs)) / 4));
  }

  // learn_after_sleep(waited): the spin failed (and halved the budget), then
  // the hand-off came after `waited` in all. Soon: a longer spin would have
  // caught it, so grow towards it. Late: leave the halved budget.
  void learn_after_sleep(MonotonicClock::duration waited) noexcept {
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(waited).count();
    if (ns > kMaxSpinNs) return;
    const std::uint32_t budget = spin_budget_ns.load(std::memory_order_relaxed);  // a hint
    const auto wanted = static_cast<std::uint32_t>(ns + ns / 4);
    if (wanted > budget) set_budget(budget, (budget + wanted) / 2 + 1);
  }

  // set_budget(old, wanted): clamps; stores only a real change, so spinners
  // that keep succeeding do not keep writing the shared cache line.
  void set_budget(std::uint32_t old, std::uint32_t wanted) noexcept {
    if (wanted < kMinSpinNs) wanted = kMinSpinNs;
    if (wanted > kMaxSpinNs) wanted = kMaxSpinNs;
    const std::uint32_t difference = wanted > old ? wanted - old : old - wanted;
    if (difference * 16 > old) spin_budget_ns.store(wanted, std::memory_order_relaxed);  // a hint
  }
};

static_assert(std::is_standard_layout_v<EventCount>, "EventCount lives in shared memory");
static_assert(sizeof(EventCount) == 16, "EventCount layout changed: bump the owners' kVersion");
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);

}  // namespace mp::detail
