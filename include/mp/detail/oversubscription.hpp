// mp/detail/oversubscription.hpp — cpus_oversubscribed(): are clearly more
// threads runnable on this machine than it has CPUs? The one load signal of mp's spin
// policy (EventCount, mp/detail/event_count.hpp): a waiter spins only while
// this is false.
//
// Why: a spinning waiter keeps its CPU in the hope that its peer, running on
// another CPU, hands off soon. When the CPUs are oversubscribed the peer is
// often not running at all but waiting for a CPU — possibly the spinner's —
// and every microsecond spun delays the hand-off it waits for. Measured on
// the 2-vCPU VM with ~8 runnable jobs: a Pipe round trip took 160-240 us with
// the learned spin and 17-20 us without it (a bare socketpair: 16-25 us). The
// spin's own deschedule detection cannot see this: a spinner that keeps its
// CPU for its whole budget is never descheduled.
//
// How: the kernel's instantaneous count of runnable threads (the fourth field
// of /proc/loadavg, the sampling thread included) against the CPUs online,
// sampled at most every kSamplePeriod per process; between samples the last
// answer is returned (two relaxed loads and a clock read). If /proc is not
// readable the answer is false (spin, as before).
//
// Where the line is (too_many_runnable): oversubscribed means more than one
// runnable thread beyond the CPUs. One extra is tolerated because the waiter
// asking is itself runnable while it spins, so "runnable > CPUs" already
// fires for three cooperating processes on two CPUs: a JoinableQueue with one
// producer and two consumers there (3 runnable) never spun, every get that
// found the ring empty slept and cost its producer a FUTEX_WAKE, and the
// put/get+task_done row fell from 6.5 M/s to 3.1 M/s (measured with the spin
// forced on and off at load ~7: ~0.2 vs ~32 consumer sleeps per 1000 items).
// With one thread too many the spinner's deschedule detection (EventCount)
// bounds the damage: the scheduler takes a CPU for the waiting thread within
// one slice, and a spinner that loses its CPU notices the gap and stops.
// With two or more too many (the busy benchmark: two busy loops plus a
// producer and a consumer; the measured load ~9) the rule stops the spin as
// before.
//
// Safety: any thread, any process; the cached sample is process-local
// (relaxed atomics: a hint, racy refreshes are harmless).
#pragma once

#include <chrono>

#include "mp/detail/export.hpp"

namespace mp::detail {

inline constexpr std::chrono::milliseconds kOversubscriptionSamplePeriod{10};

// cpus_oversubscribed(): see above. noexcept; never blocks.
[[nodiscard]] MP_API bool cpus_oversubscribed() noexcept;

// too_many_runnable(runnable, cpus): the rule above, on one sample.
[[nodiscard]] constexpr bool too_many_runnable(long runnable, long cpus) noexcept {
  return runnable > cpus + 1;
}

}  // namespace mp::detail
