// src/after_fork/pool_zygote.cpp — the Pool's zygote: the process that forks
// every worker (STYLE rule 7: the Pool's code between fork() and _exit()
// lives here and in pool_worker.cpp, on the helpers of after_fork.hpp).
//
// Under the fork start method the zygote is forked by the pool's supervisor
// thread (ZygoteLink::start, src/pool_zygote_link.cpp), possibly while other
// threads of the program hold locks, so zygote_main() runs only system calls
// on memory the parent prepared before the fork: no allocation, no locks, no
// exceptions, no stdio but discarding the buffers it inherited. Under
// forkserver and spawn it is started by the launch machinery
// (start_methods.hpp) as a Process child is: a fork of mp's single-threaded
// fork server, or a fresh run of the program; zygote_entry() then maps the
// rings and the slot table from the fds that came with the launch (ordinary
// C++: the process is single-threaded and quiet) before zygote_main().
// Either way it forks workers on request (each runs worker_main()), hands
// their pidfds to the supervisor and reports their exits. It never touches
// the rings (pool_wire.hpp): a worker uses the ones it inherits. Every way
// out is _exit().
//
// Code addresses (code_in_this_run(), pool_task.hpp): a launched zygote may
// be another run of the binary (ASLR), so the owner sends the base address of
// each loaded object (code_pointer_from() of object i, in dl_iterate_phdr's
// order, the order of CodeAddress); when the zygote's bases differ, a worker
// relocates an owner address A by finding the object i for which A - owner
// base i + our base i lies in object i here (code_address_of() says: the
// same binary has the same extents relative to each base, so exactly one
// object matches), then caches the answer.
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "after_fork/after_fork.hpp"
#include "mp/codec.hpp"
#include "mp/detail/handle_codec.hpp"
#include "mp/detail/launch.hpp"
#include "mp/detail/ring.hpp"
#include "mp/errors.hpp"
#include "pool_wire.hpp"
#include "process_table.hpp"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

namespace mp::detail {
namespace {

// The relocation of owner code addresses in this process (see the top of the
// file). Written by zygote_entry() / zygote_main() before any worker is
// forked, read-only afterwards (a worker inherits it): no lock needed.
struct CodeRelocation {
  bool active = false;
  std::vector<std::uintptr_t> owner_bases;
  std::vector<std::uintptr_t> local_bases;
};
CodeRelocation g_relocation;

// Owner address -> ours, for the last few addresses (a worker's main thread
// runs every task; thread_local keeps a task's own threads apart anyway).
struct RelocationCacheEntry {
  const void* owner = nullptr;
  const void* local = nullptr;
};
thread_local std::array<RelocationCacheEntry, 16> t_relocation_cache{};

}  // namespace

// loaded_object_bases(): the base address of each loaded object, by
// CodeAddress object index (code_pointer_from() of offset 1, minus 1: a
// non-PIE executable's base is 0).
std::vector<std::uintptr_t> loaded_object_bases() {
  std::vector<std::uintptr_t> bases;
  for (std::uint32_t i = 0; i < 4096; ++i) {
    const void* one = code_pointer_from(CodeAddress{i, 0, 1});
    if (one == nullptr) break;
    bases.push_back(reinterpret_cast<std::uintptr_t>(one) - 1);
  }
  return bases;
}

const void* code_in_this_run(const void* owner_address) {
  if (!g_relocation.active) return owner_address;
  const auto address = reinterpret_cast<std::uintptr_t>(owner_address);
  RelocationCacheEntry& cached = t_relocation_cache[(address >> 4) % t_relocation_cache.size()];
  if (cached.owner == owner_address && owner_address != nullptr) return cached.local;
  const std::size_t count = std::min(g_relocation.owner_bases.size(), g_relocation.local_bases.size());
  for (std::size_t i = 0; i < count; ++i) {
    if (address < g_relocation.owner_bases[i]) continue;
    const std::uintptr_t offset = address - g_relocation.owner_bases[i];
    const void* local = reinterpret_cast<const void*>(g_relocation.local_bases[i] + offset);
    if (code_address_of(local).object != i) continue;
    cached = RelocationCacheEntry{owner_address, local};
    return local;
  }
  throw Error("mp::Pool: a task's code (owner address " + std::to_string(address) +
              ") is in no object loaded in this worker, a fresh run of the program (forkserver/spawn): was "
              "it in a library the pool's owner loaded with dlopen()? (use StartMethod::fork for that pool)");
}

}  // namespace mp::detail

namespace mp::detail::pool_wire {
namespace {

void report(const ZygoteLaunch& launch, ZygoteReportKind kind, int index, pid_t pid, int code, int status,
            int error, int fd) noexcept {
  ZygoteReport message{static_cast<std::uint32_t>(kind), index, pid, code, status, error};
  if (after_fork::send_with_fd(launch.control_fd, &message, sizeof message, fd) != 0) {
    // The supervisor is gone: so is the pool. Take the workers with us.
    ::_exit(0);
  }
}

// wait_for(pidfd, info): waitid on a pidfd, EINTR retried; 0 or -1 (errno).
int wait_for(int pidfd, siginfo_t& info) noexcept {
  int rc;
  while ((rc = ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd), &info, WEXITED)) < 0 &&
         errno == EINTR) {
  }
  return rc;
}

[[noreturn]] void shutdown(const ZygoteLaunch& launch) noexcept {
  for (int i = 0; i < launch.worker_count; ++i) {
    if (launch.pidfd_storage[i] >= 0)
      ::syscall(SYS_pidfd_send_signal, launch.pidfd_storage[i], SIGKILL, nullptr, 0);
  }
  for (int i = 0; i < launch.worker_count; ++i) {
    if (launch.pidfd_storage[i] < 0) continue;
    siginfo_t info{};
    (void)wait_for(launch.pidfd_storage[i], info);
  }
  ::_exit(0);
}

void spawn(const ZygoteLaunch& launch, int index, const char* identity) noexcept {
  char* stored = launch.identity_storage + index * kIdentitySize;
  std::memcpy(stored, identity, kIdentitySize);
  stored[kIdentitySize - 1] = '\0';
  const pid_t zygote = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    // The worker dies with the zygote (and so with the pool). The zygote is
    // single-threaded: the death signal follows its only thread.
    after_fork::arm_death_signal(zygote, true);
    ::close(launch.control_fd);
    for (int i = 0; i < launch.worker_count; ++i) {
      if (launch.pidfd_storage[i] >= 0) ::close(launch.pidfd_storage[i]);
    }
    WorkerLaunch worker{index,
                        &launch.task_rings[index],
                        launch.result_ring,
                        &launch.slots[index],
                        launch.identity_storage + index * kIdentitySize,
                        launch.initializer,
                        launch.maxtasksperchild,
                        launch.task_timeout_ns};
    worker_main(worker);
  }
  if (pid < 0) {
    const int error = errno;
    report(launch, ZygoteReportKind::spawn_failed, index, 0, 0, 0, error, -1);
    return;
  }
  const after_fork::PidfdResult opened = after_fork::open_pidfd_or_reap(pid);
  if (opened.pidfd < 0) {
    // Not watchable (the child was killed and reaped), or already reaped by
    // nobody but us (cannot be: we are its parent and reap only by pidfd).
    report(launch, ZygoteReportKind::spawn_failed, index, 0, 0, 0,
           opened.already_reaped ? ESRCH : opened.error, -1);
    return;
  }
  launch.pidfd_storage[index] = opened.pidfd;
  launch.pid_storage[index] = pid;
  report(launch, ZygoteReportKind::spawned, index, pid, 0, 0, 0, opened.pidfd);
}

void reap(const ZygoteLaunch& launch, int index) noexcept {
  siginfo_t info{};
  const int rc = wait_for(launch.pidfd_storage[index], info);
  const int code = rc == 0 ? info.si_code : 0;
  const int status = rc == 0 ? info.si_status : -1;
  ::close(launch.pidfd_storage[index]);
  launch.pidfd_storage[index] = -1;
  report(launch, ZygoteReportKind::exited, index, launch.pid_storage[index], code, status,
         rc == 0 ? 0 : errno, -1);
  launch.pid_storage[index] = 0;
}

}  // namespace

[[noreturn]] void zygote_main(const ZygoteLaunch& launch) noexcept {
  if (!launch.launched) {
    // mp's process table was locked across the fork (process_table.hpp INV1):
    // make our copy ours (no children, in_child) and unlock it, so that a task
    // may start an mp::Process and mp::exit() ends a worker as it ends any mp
    // child, without the owner's atexit handlers (issue 9, defect 8).
    reset_table_in_child(process_table(), nullptr);
    for (int i = 0; i < launch.close_count; ++i) ::close(launch.close_after_fork[i]);
    // Die with the pool. The kernel ties the death signal to the forking
    // thread, the supervisor, which lives as long as the pool.
    after_fork::arm_death_signal(launch.expected_parent, true);
    // Our owner's addresses are ours (a relocation inherited from a launched
    // pool's worker, where this pool was made, is not).
    g_relocation.active = false;
  }  // launched: run_launch() did all this (a daemon child of the server, or of the owner)
  // Our children must stay waitable whatever the program did with SIGCHLD.
  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;
  ::sigaction(SIGCHLD, &default_action, nullptr);
  ::sigprocmask(SIG_SETMASK, &launch.signal_mask, nullptr);
  // Output other threads buffered after the pool flushed belongs to the
  // parent; workers must not print it again.
  after_fork::discard_inherited_output();

  for (int i = 0; i < launch.worker_count; ++i) {
    launch.pidfd_storage[i] = -1;
    launch.pid_storage[i] = 0;
  }
  pollfd* fds = launch.poll_storage;
  for (;;) {
    fds[0] = pollfd{launch.control_fd, POLLIN, 0};
    for (int i = 0; i < launch.worker_count; ++i) fds[i + 1] = pollfd{launch.pidfd_storage[i], POLLIN, 0};
    if (::poll(fds, static_cast<nfds_t>(launch.worker_count) + 1, -1) < 0) {
      if (errno == EINTR) continue;
      shutdown(launch);
    }
    for (int i = 0; i < launch.worker_count; ++i) {
      if (fds[i + 1].fd >= 0 && fds[i + 1].revents != 0) reap(launch, i);
    }
    if (fds[0].revents == 0) continue;
    ZygoteRequest request{};
    int passed_fd = -1;  // requests carry none; one sent anyway is closed
    std::size_t passed = 0;
    const long n =
        after_fork::receive_with_fds(launch.control_fd, &request, sizeof request, &passed_fd, 1, &passed);
    if (passed > 0) ::close(passed_fd);
    if (n <= 0) shutdown(launch);  // the supervisor is gone
    if (request.kind == static_cast<std::uint32_t>(ZygoteRequestKind::spawn) && request.worker_index >= 0 &&
        request.worker_index < launch.worker_count && launch.pidfd_storage[request.worker_index] < 0) {
      spawn(launch, request.worker_index, request.identity);
    } else {
      shutdown(launch);
    }
  }
}

// zygote_entry(payload, fds): the payload ZygoteLink::start wrote (its
// order is the one read here), the rings and slot table mapped again from
// their fds, then the zygote's life.
void zygote_entry(std::span<const std::byte> payload, IncomingFds& fds) {
  Reader reader(payload, "pool zygote launch", &fds);
  std::uint32_t magic = 0;
  reader.value(magic);
  if (magic != kZygotePayloadMagic) reader.fail("not a pool zygote launch (another build of mp?)");
  ZygoteLaunch launch{};
  std::int32_t worker_count = 0;
  std::uint64_t maxtasksperchild = 0;
  std::uint64_t initializer = 0;
  std::uint32_t control_index = 0;
  std::vector<std::uint64_t> owner_bases;
  reader.value(worker_count);
  reader.value(maxtasksperchild);
  reader.value(launch.task_timeout_ns);
  reader.bytes(&launch.signal_mask, sizeof launch.signal_mask, "signal mask");
  reader.value(initializer);
  reader.value(owner_bases);
  reader.value(control_index);
  if (worker_count < 1) reader.fail("no workers");
  const auto workers = static_cast<std::size_t>(worker_count);
  auto [slot_region, slot_offset] =
      take_region(reader, "pool worker slots", sizeof(SlotTableHeader) + workers * sizeof(WorkerSlot),
                  alignof(WorkerSlot));
  const auto* header = reinterpret_cast<const SlotTableHeader*>(slot_region.data() + slot_offset);
  if (header->magic != kSlotMagic || header->version != kSlotVersion || header->slot_count != workers)
    reader.fail("the pool's slot table is not one of this build of mp");
  auto [result_region, result_offset] = take_region(reader, "pool ring", kRingDataOffset, 4096);
  (void)result_offset;
  // Never freed: the zygote leaves by _exit() and its workers inherit them.
  auto* result_ring = new Ring(Ring::adopt(std::move(result_region)));
  auto* task_rings = new std::vector<Ring>;
  task_rings->reserve(workers);
  for (std::size_t i = 0; i < workers; ++i) {
    auto [region, offset] = take_region(reader, "pool ring", kRingDataOffset, 4096);
    (void)offset;
    task_rings->push_back(Ring::adopt(std::move(region)));
  }
  reader.finish();
  UniqueFd control = fds.take(control_index, "pool zygote control socket");
  fds.release_unclaimed();

  std::vector<std::uintptr_t> local_bases = loaded_object_bases();
  g_relocation.owner_bases.assign(owner_bases.begin(), owner_bases.end());
  g_relocation.active = g_relocation.owner_bases != local_bases;
  g_relocation.local_bases = std::move(local_bases);

  launch.control_fd = control.release();
  launch.expected_parent = ::getppid();
  launch.slots = reinterpret_cast<WorkerSlot*>(slot_region.data() + slot_offset + sizeof(SlotTableHeader));
  new SharedRegion(std::move(slot_region));  // keeps the mapping (never freed)
  launch.task_rings = task_rings->data();
  launch.result_ring = result_ring;
  launch.worker_count = worker_count;
  launch.initializer = initializer == 0
                           ? nullptr
                           : reinterpret_cast<void (*)()>(const_cast<void*>(code_in_this_run(
                                 reinterpret_cast<const void*>(static_cast<std::uintptr_t>(initializer)))));
  launch.maxtasksperchild = static_cast<std::size_t>(maxtasksperchild);
  launch.poll_storage = new pollfd[workers + 1];
  launch.pidfd_storage = new int[workers];
  launch.pid_storage = new pid_t[workers];
  launch.identity_storage = new char[workers * kIdentitySize]();
  launch.close_after_fork = nullptr;
  launch.close_count = 0;
  launch.launched = true;
  zygote_main(launch);
}

}  // namespace mp::detail::pool_wire
