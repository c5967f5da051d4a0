// mp/detail/pool_testing.hpp — knobs that only tests turn.
//
// Safety: call from one thread before making the Pools it should affect.
// Lifetime: process-wide; Pools made afterwards use the value.
#pragma once

namespace mp::detail {

class Ring;

// pool_worker_result_ring_for_testing(): inside a Pool worker (in a task),
// the pool's result ring, so a test can die holding its producer lock as a
// worker killed in the middle of putting a result would; nullptr elsewhere.
Ring* pool_worker_result_ring_for_testing() noexcept;

// set_pool_control_buffer_for_testing(bytes): SO_SNDBUF of both ends of the
// control socket between a Pool's supervisor and its zygote, for Pools made
// afterwards (0: the system's default). A small buffer makes "the zygote has
// many reports and the supervisor many requests at once" happen with a few
// workers (issue 9, defect 11).
void set_pool_control_buffer_for_testing(int bytes) noexcept;

}  // namespace mp::detail
