// src/pool_wire.hpp — private to the Pool: the frames between the pool and
// its workers, the messages between the supervisor and the zygote, the
// shared slot table, and the entry points of the code that runs after fork()
// (src/after_fork/pool_zygote.cpp and pool_worker.cpp).
//
// Channels (shared memory, mp/detail/ring.hpp; made before the zygote's fork,
// so every worker inherits them):
//  - one task ring per worker index: the pool puts records (under its mutex,
//    never blocking), the worker of that index gets them. A record is a batch
//    of task frames (TaskHeader + payload, back to back), run in order.
//  - one result ring for the pool: every worker puts one record per result
//    frame (ResultHeader + payload); the supervisor thread puts a `died`
//    record when the zygote reports a worker's exit, and a `zygote_died`
//    record when the zygote is gone; the collector (the collector thread,
//    or a thread waiting for a result that leads: INV5) gets them all, in
//    order. A worker's results were committed before it died, and its death
//    was reported (and posted) after, so the collector always sees a dead
//    worker's last results before its `died` record (INV4).
// A worker killed inside a get or a put is repaired by the ring's crash
// rules (robust mutexes, one-store commits): the next producer (another
// worker or the supervisor) or the next consumer of that ring goes on.
#pragma once

#include <poll.h>
#include <signal.h>
#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>

#include "mp/detail/event_count.hpp"  // SlotTableHeader::collector_wake

namespace mp::detail {
class Ring;
class IncomingFds;
}  // namespace mp::detail

namespace mp::detail::pool_wire {

// ---- pool -> worker (the worker's task ring) ---------------------------------------
enum class ToWorker : std::uint32_t { run_chunk = 1, exit = 2 };

struct TaskHeader {
  std::uint32_t kind;  // ToWorker
  std::uint32_t item_count;
  std::uint64_t task_id;       // > 0, unique in the pool
  std::uint64_t runner;        // address of a run_chunk<...> instantiation
  std::uint64_t payload_size;  // bytes that follow
};
static_assert(std::is_standard_layout_v<TaskHeader> && std::is_trivially_copyable_v<TaskHeader>);
static_assert(sizeof(TaskHeader) == 32);

// ---- worker (and supervisor) -> collector (the result ring) ---------------------
enum class FromWorker : std::uint32_t {
  ready = 1,               // the initializer returned; no payload
  result = 2,              // payload: the chunk's encoded results
  error = 3,               // payload: u32 type length, type, message (the task threw)
  initializer_failed = 4,  // payload as error; the worker exits next
  skipped = 5,             // no payload: the chunk was cancelled before it started; it did not run
  died = 6,                // from the supervisor: payload is the zygote's ZygoteReport (exited)
  zygote_died = 7,         // from the supervisor: payload is why (text); every worker died with it
};

struct ResultHeader {
  std::uint32_t kind;   // FromWorker
  std::int32_t worker;  // the worker index it comes from (-1: zygote_died)
  std::uint64_t task_id;
  std::uint64_t run_ns;  // how long the chunk ran (feeds the dispatch window)
  std::uint64_t payload_size;
};
static_assert(std::is_standard_layout_v<ResultHeader> && std::is_trivially_copyable_v<ResultHeader>);
static_assert(sizeof(ResultHeader) == 32);

// ---- supervisor <-> zygote (SOCK_SEQPACKET, fds by SCM_RIGHTS) ----------------------
enum class ZygoteRequestKind : std::uint32_t {
  spawn = 1,     // no fd: the worker's task ring was inherited with the zygote
  shutdown = 2,  // SIGKILL every remaining worker, reap them, exit
};
inline constexpr std::size_t kIdentitySize = 48;
struct ZygoteRequest {
  std::uint32_t kind;
  std::int32_t worker_index;
  char identity[kIdentitySize];  // spawn: the worker's identity ("3" names it ForkPoolWorker-3),
                                 // NUL-terminated
};

enum class ZygoteReportKind : std::uint32_t {
  spawned = 1,       // carries a pidfd of the new worker
  spawn_failed = 2,  // error = errno of fork/pidfd_open
  exited = 3,        // code/status as waitid's si_code/si_status
};
struct ZygoteReport {
  std::uint32_t kind;
  std::int32_t worker_index;
  std::int32_t pid;
  std::int32_t code;    // CLD_EXITED, CLD_KILLED, CLD_DUMPED
  std::int32_t status;  // exit status or signal number
  std::int32_t error;
};
static_assert(std::is_trivially_copyable_v<ZygoteRequest> && std::is_trivially_copyable_v<ZygoteReport>);

// ---- the shared slot table (one anonymous MAP_SHARED region per pool) ----------------
// INV1: slot[i].started_task is the id of the last task worker i began (0: none
// yet since that worker was spawned). Only worker i writes it (before running
// the task); the supervisor resets it to 0 before asking for a new worker i,
// and reads it only after worker i died, when nobody writes it any more.
// INV2: slot[i].running_task is the task worker i is inside now (0: between
// tasks); timeout_at_ns its CLOCK_MONOTONIC deadline (task_timeout). Only
// worker i writes them; the supervisor reads them (cancel; a death's cause).
// INV4: the collector handles worker i's `died` record only after every
// result worker i committed (they precede it in the result ring), and it
// empties task ring i before anything else is put there (the requeued chunks
// go to the replacement through the dispatcher, never twice through the ring).
// INV3: slot[i].cancelled[] holds the ids of tasks in flight on worker i that
// were cancelled (0: a free entry). Only the supervisor writes it (under the
// pool's mutex): it sets an entry, then reads running_task; the worker sets
// running_task, then reads the entries (all seq_cst: Dekker). So either the
// worker sees the cancel and skips the task (never runs it), or the
// supervisor sees it running and signals the worker (cancel_signal()), whose
// handler kills the worker only if the task it is running is cancelled.
// cancel_count is written after an entry is set and read by the worker
// before the entries (seq_cst too), so a worker that sees 0 was seen running
// by the supervisor; it spares the worker a scan of the entries per task.
inline constexpr std::uint32_t kSlotMagic = 0x6d70506f;  // "mpPo"
inline constexpr std::uint32_t kSlotVersion = 3;
inline constexpr std::size_t kCancelEntries = 64;  // >= Dispatcher::kMaxWindow: one per chunk in flight

struct alignas(64) WorkerSlot {
  std::atomic<std::uint64_t> started_task;               // INV1
  std::atomic<std::uint64_t> running_task;               // INV2
  std::atomic<std::uint64_t> timeout_at_ns;              // INV2
  std::atomic<std::uint64_t> cancelled[kCancelEntries];  // INV3
  std::atomic<std::uint64_t> cancel_count;  // INV3: entries in use (0: the worker skips the scan)
};
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
static_assert(std::is_standard_layout_v<WorkerSlot> && sizeof(WorkerSlot) == 576 &&
              alignof(WorkerSlot) == 64);

// cancel_signal(): the signal the supervisor sends a worker running a
// cancelled task (SIGRTMAX - 1; SIGRTMAX is mp's parent-death signal).
inline int cancel_signal() noexcept { return SIGRTMAX - 1; }

// INV5: the result ring's watch words (leader, collector_wake,
// streams_announced) are described in pool_result_watch.hpp.
struct alignas(64) SlotTableHeader {
  std::uint32_t magic;
  std::uint32_t version;
  std::uint32_t slot_count;
  std::atomic<std::uint32_t> leader;             // INV5
  EventCount collector_wake;                     // INV5: the collector thread sleeps here
  std::atomic<std::uint32_t> streams_announced;  // INV5
};
static_assert(std::is_standard_layout_v<SlotTableHeader> && sizeof(SlotTableHeader) == 64);
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);

// ---- what the forked code needs (prepared before fork: no allocation after) ------------
struct WorkerLaunch {
  int index;      // the worker's index in the pool
  Ring* tasks;    // its task ring (inherited)
  Ring* results;  // the pool's result ring (inherited)
  WorkerSlot* slot;
  const char* identity;  // "3": the worker is ForkPoolWorker-3 (current_process())
  void (*initializer)();
  std::size_t maxtasksperchild;
  std::uint64_t task_timeout_ns;  // 0: none
};

struct ZygoteLaunch {
  int control_fd;         // the zygote's end of the control socket
  pid_t expected_parent;  // the pool's process (getppid() check)
  sigset_t signal_mask;   // the mask of the thread that made the Pool
  WorkerSlot* slots;
  Ring* task_rings;   // worker_count rings, index i for worker i
  Ring* result_ring;  // the pool's one result ring
  int worker_count;
  void (*initializer)();
  std::size_t maxtasksperchild;
  std::uint64_t task_timeout_ns;  // 0: none
  pollfd* poll_storage;           // worker_count + 1 entries
  int* pidfd_storage;             // worker_count entries
  pid_t* pid_storage;             // worker_count entries
  char* identity_storage;         // worker_count * kIdentitySize bytes
  int* close_after_fork;          // fds the zygote closes first (the parent's ends)
  int close_count;
  // launched: the zygote was started by mp's fork server or a fresh run of
  // the program (forkserver / spawn), not forked from the pool's owner: the
  // launch machinery (start_methods.hpp) set up its process table and death
  // signal, and its rings and slot table were mapped from fds.
  bool launched;
};

// zygote_main(launch): the zygote's whole life; never returns
// (src/after_fork/pool_zygote.cpp).
[[noreturn]] void zygote_main(const ZygoteLaunch& launch) noexcept;

// zygote_entry(payload, fds): the LaunchEntry (mp/detail/launch.hpp) of a
// zygote started by forkserver or spawn: maps what the payload names, then
// zygote_main(); never returns (src/after_fork/pool_zygote.cpp). The payload
// is written by ZygoteLink::start (src/pool_zygote_link.cpp).
void zygote_entry(std::span<const std::byte> payload, IncomingFds& fds);
inline constexpr std::uint32_t kZygotePayloadMagic = 0x5a706d31;  // "1mpZ"

// worker_main(launch): a worker's whole life, in a fork of the zygote; never
// returns (src/after_fork/pool_worker.cpp).
[[noreturn]] void worker_main(const WorkerLaunch& launch) noexcept;

}  // namespace mp::detail::pool_wire
