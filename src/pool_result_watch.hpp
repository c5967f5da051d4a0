// src/pool_result_watch.hpp — private to the Pool: who watches the result
// ring (INV5), shared by the pool (pool_collector.cpp, pool_supervisor.cpp)
// and its workers (after_fork/pool_worker.cpp). The words live in the slot
// table's header (pool_wire.hpp, SlotTableHeader), in shared memory.
//
// INV5: `leader` is 1 while a thread waiting for a result in the pool's
// process is the result ring's collector (it sleeps on the ring's own
// not_empty and takes every record: pool_collector.cpp, "Waiting threads"),
// 0 while the collector thread is. Every producer of the result ring (a
// worker, the supervisor) commits its record, then (a full fence between)
// reads `leader`, and notifies `collector_wake` if it is 0: the collector
// thread sleeps there, not on the ring, so the records a leading waiter
// takes wake nobody else. A leader that resigns stores 0, fences, and looks
// at the ring itself (Dekker with the producers): a record one of them
// committed is announced by one side or by both.
// `streams_announced` counts results a worker is about to stream (larger
// than the ring's stream threshold): the collector thread then watches the
// ring's not_empty for a while, so that it reads the stream as it comes.
#pragma once

#include <cstddef>

#include "mp/detail/event_count.hpp"
#include "pool_wire.hpp"

namespace mp::detail::pool_wire {

// slot_table_of(slot, index): the header in front of worker `index`'s slot
// (one region: the header, then the slots in index order; PoolCore makes it).
inline SlotTableHeader& slot_table_of(WorkerSlot* slot, int index) noexcept {
  return *reinterpret_cast<SlotTableHeader*>(reinterpret_cast<std::byte*>(slot - index) -
                                             sizeof(SlotTableHeader));
}

// announce_result(table): a producer of the result ring, after its put
// returned (the record is committed): wakes the collector thread unless a
// waiting thread leads (INV5). Async-signal-safe; no system call unless the
// collector thread sleeps.
inline void announce_result(SlotTableHeader& table) noexcept {
  full_fence();  // INV5: orders our commit before the load below; pairs with the resigning leader's fence
  // Relaxed: the fence orders it (Dekker); a stale 1 is covered by the
  // resigning leader's own look at the ring after its fence.
  if (table.leader.load(std::memory_order_relaxed) == 0) table.collector_wake.notify_all();
}

}  // namespace mp::detail::pool_wire
