// src/after_fork/pool_worker.cpp — a Pool worker's whole life, after the
// zygote forked it (STYLE rule 7: the Pool's code between fork() and _exit()
// lives here and in pool_zygote.cpp, on the helpers of after_fork.hpp).
//
// A worker is forked from the single-threaded zygote, so it starts from a
// consistent copy of the program and may run ordinary C++ (the initializer
// and the tasks): it allocates, and catches every exception, which it reports
// to the pool. It gets batches of task frames from its task ring and puts
// one result record per chunk into the pool's result ring (pool_wire.hpp):
// a result is published as soon as its chunk ran, so a worker killed later
// never takes a finished chunk's result with it. Every way out is finish_child_and_exit() (the worker's
// own children, flush, _exit): never the owner's atexit handlers or static
// destructors.
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "after_fork/after_fork.hpp"
#include "mp/detail/pool_task.hpp"
#include "mp/detail/pool_testing.hpp"
#include "mp/detail/ring.hpp"
#include "mp/process.hpp"
#include "pool_result_watch.hpp"
#include "pool_wire.hpp"
#include "process_table.hpp"

namespace mp::detail::pool_wire {
namespace {

std::uint64_t monotonic_ns() noexcept {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<std::uint64_t>(now.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(now.tv_nsec);
}

// send_frame(launch, kind, task_id, run_ns, payload, record): one result
// record (ResultHeader + payload) into the pool's result ring. `record` is
// scratch space kept between calls. A worker whose pool is gone (the ring
// shut down or broken) has nothing left to do.
void send_frame(const WorkerLaunch& launch, FromWorker kind, std::uint64_t task_id, std::uint64_t run_ns,
                const std::vector<std::byte>& payload, std::vector<std::byte>& record) noexcept {
  ResultHeader header{static_cast<std::uint32_t>(kind), launch.index, task_id, run_ns, payload.size()};
  try {
    record.resize(sizeof header + payload.size());
  } catch (...) {
    finish_child_and_exit(70);
  }
  std::memcpy(record.data(), &header, sizeof header);
  if (!payload.empty()) std::memcpy(record.data() + sizeof header, payload.data(), payload.size());
  SlotTableHeader& table = slot_table_of(launch.slot, launch.index);
  if (record.size() > launch.results->stream_threshold()) {
    // INV5: a stream needs a reader as it comes; the collector thread
    // watches the ring for it. Relaxed: no data travels with the count;
    // notify_all()'s fence (W2) orders it before the wake-up decision.
    table.streams_announced.fetch_add(1, std::memory_order_relaxed);
    table.collector_wake.notify_all();  // W1 is the increment above
  }
  if (launch.results->put(record, Deadline::never(), false) != RingStatus::ok) finish_child_and_exit(0);
  announce_result(table);  // INV5
}

// encode_current_exception(out): in a catch handler: u32 type length, the
// demangled type, the message (decode_failure() reads it).
void encode_current_exception(std::vector<std::byte>& out) {
  after_fork::ExceptionText text = after_fork::describe_current_exception();
  if (text.type.empty()) text.type = "unknown exception";
  const auto type_size = static_cast<std::uint32_t>(text.type.size());
  out.resize(sizeof type_size + text.type.size() + text.message.size());
  std::memcpy(out.data(), &type_size, sizeof type_size);
  std::memcpy(out.data() + sizeof type_size, text.type.data(), text.type.size());
  std::memcpy(out.data() + sizeof type_size + text.type.size(), text.message.data(), text.message.size());
}

// The pool's result ring, for pool_worker_result_ring_for_testing(). Set once
// at the worker's start.
Ring* g_result_ring = nullptr;

// The slot of this worker, for the cancel signal's handler. Set once before
// the handler is installed.
WorkerSlot* g_worker_slot = nullptr;

// is_cancelled(slot, task): INV3 (pool_wire.hpp). Async-signal-safe.
bool is_cancelled(const WorkerSlot& slot, std::uint64_t task) noexcept {
  if (slot.cancel_count.load(std::memory_order_seq_cst) ==
      0)  // pairs with the supervisor's seq_cst increment
    return false;
  for (const auto& entry : slot.cancelled) {
    if (entry.load(std::memory_order_seq_cst) ==
        task)  // pairs with the supervisor's seq_cst store (INV3: Dekker)
      return true;
  }
  return false;
}

// on_cancel_signal(): the supervisor saw a cancelled task running here; die
// only if the task running now is a cancelled one (it may have ended since).
void on_cancel_signal(int) {
  const std::uint64_t running =
      g_worker_slot->running_task.load(std::memory_order_seq_cst);  // pairs with our own stores (same thread)
  if (running != 0 && is_cancelled(*g_worker_slot, running)) ::kill(::getpid(), SIGKILL);
}

// prepare_task_control(launch, timer): the cancel signal's handler, and a
// timer that SIGKILLs this process when a task outlives task_timeout.
bool prepare_task_control(const WorkerLaunch& launch, timer_t& timer) noexcept {
  g_worker_slot = launch.slot;
  struct sigaction action {};
  action.sa_handler = &on_cancel_signal;
  action.sa_flags = SA_RESTART;
  sigemptyset(&action.sa_mask);
  ::sigaction(cancel_signal(), &action, nullptr);
  sigset_t unblock;
  sigemptyset(&unblock);
  sigaddset(&unblock, cancel_signal());
  ::sigprocmask(SIG_UNBLOCK, &unblock, nullptr);
  if (launch.task_timeout_ns == 0) return false;
  sigevent event{};
  event.sigev_notify = SIGEV_SIGNAL;
  event.sigev_signo = SIGKILL;  // a task cannot catch or block it
  return ::timer_create(CLOCK_MONOTONIC, &event, &timer) == 0;
}

void arm(timer_t timer, std::uint64_t ns) noexcept {
  itimerspec when{};
  when.it_value.tv_sec = static_cast<time_t>(ns / 1'000'000'000u);
  when.it_value.tv_nsec = static_cast<long>(ns % 1'000'000'000u);
  ::timer_settime(timer, 0, &when, nullptr);  // ns == 0 disarms
}

// adopt_identity(identity): current_process() in this worker is
// ForkPoolWorker-<identity> (Python's name for a forked pool worker); children
// it starts are Process-<identity>:1, ... (issue 9, defect 8).
void adopt_identity(const char* identity) {
  auto* info = new ProcessInfo(std::string("ForkPoolWorker-") + identity, ::getpid());  // lives until _exit
  ProcessInfoAccess::set_identity(*info, identity);
  ProcessTable& table = process_table();
  std::lock_guard lock(table.mutex);
  table.current = info;
}

}  // namespace

[[noreturn]] void worker_main(const WorkerLaunch& launch) noexcept {
  g_result_ring = launch.results;
  try {
    adopt_identity(launch.identity);
    timer_t timer{};
    const bool timing = prepare_task_control(launch, timer);
    if (launch.task_timeout_ns != 0 && !timing)
      finish_child_and_exit(71);  // cannot keep task_timeout: say so by dying at once
    std::vector<std::byte> results;
    std::vector<std::byte> record;
    if (launch.initializer != nullptr) {
      try {
        launch.initializer();
      } catch (...) {
        encode_current_exception(results);
        send_frame(launch, FromWorker::initializer_failed, 0, 0, results, record);
        finish_child_and_exit(1);
      }
    }
    results.clear();
    send_frame(launch, FromWorker::ready, 0, 0, results, record);

    std::vector<std::byte> batch;
    std::size_t tasks_done = 0;
    for (;;) {
      // The next batch of task frames. An idle worker spins briefly here
      // (the ring's event count), then sleeps until the pool puts more.
      GetTarget target;
      target.buffer = &batch;
      const RingStatus got = launch.tasks->get(target, Deadline::never(), false);
      if (got != RingStatus::ok) finish_child_and_exit(got == RingStatus::shut_down ? 0 : 1);
      std::size_t at = 0;
      while (batch.size() - at >= sizeof(TaskHeader)) {
        TaskHeader header;
        std::memcpy(&header, batch.data() + at, sizeof header);
        if (header.kind == static_cast<std::uint32_t>(ToWorker::exit)) finish_child_and_exit(0);
        if (batch.size() - at - sizeof header < header.payload_size) finish_child_and_exit(1);  // malformed
        std::span<const std::byte> payload(batch.data() + at + sizeof header, header.payload_size);
        at += sizeof header + header.payload_size;

        // INV1: the slot names this task before it starts; read by the
        // supervisor only after this process died.
        launch.slot->started_task.store(
            header.task_id,
            std::memory_order_release);  // pairs with the collector's acquire load when it handles our death
        // INV3: running_task before reading the cancel entries.
        launch.slot->running_task.store(
            header.task_id,
            std::memory_order_seq_cst);  // pairs with the supervisor's seq_cst load (Dekker)
        results.clear();
        if (is_cancelled(*launch.slot, header.task_id)) {
          launch.slot->running_task.store(0, std::memory_order_seq_cst);  // see above
          send_frame(launch, FromWorker::skipped, header.task_id, 0, results, record);
        } else {
          const std::uint64_t started = monotonic_ns();
          if (timing) {
            launch.slot->timeout_at_ns.store(
                started + launch.task_timeout_ns,
                std::memory_order_release);  // pairs with the collector's acquire after our death
            arm(timer, launch.task_timeout_ns);
          }
          FromWorker outcome = FromWorker::result;
          try {
            auto runner = reinterpret_cast<ChunkRunner>(const_cast<void*>(  // the owner's address, relocated
                code_in_this_run(reinterpret_cast<const void*>(static_cast<std::uintptr_t>(header.runner)))));
            runner(payload, header.item_count, results);
          } catch (...) {
            results.clear();
            encode_current_exception(results);
            outcome = FromWorker::error;
          }
          if (timing) arm(timer, 0);
          launch.slot->running_task.store(0, std::memory_order_seq_cst);  // see above
          send_frame(launch, outcome, header.task_id, monotonic_ns() - started, results, record);
        }
        ++tasks_done;
        if (launch.maxtasksperchild != 0 && tasks_done >= launch.maxtasksperchild) finish_child_and_exit(0);
      }
    }
  } catch (...) {
    // std::bad_alloc outside a task, or the like: this worker cannot go on; the
    // supervisor sees it exit and fails the task it held.
    finish_child_and_exit(70);
  }
}

}  // namespace mp::detail::pool_wire

mp::detail::Ring* mp::detail::pool_worker_result_ring_for_testing() noexcept {
  return pool_wire::g_result_ring;
}
