// src/pool_fork.cpp — the Pool's code that runs after fork(): the zygote and
// the worker loop. Everything between fork() and _exit() for the Pool lives in
// this file.
//
// The zygote (forked by the pool's supervisor thread, possibly while other
// threads of the program hold locks) runs only system calls on memory the
// parent prepared before the fork: no allocation, no locks, no exceptions, no
// stdio but discarding the buffers it inherited. It forks workers on request.
// A worker is forked from the single-threaded zygote, so it starts from a
// consistent copy of the program and may run ordinary C++ (the initializer and
// the tasks): it allocates, and catches every exception, which it reports to
// the supervisor. Every path out of a worker or the zygote is _exit(): never
// the parent's atexit handlers or static destructors.
#include <cxxabi.h>
#include <signal.h>
#include <stdio_ext.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>
#include <string>
#include <typeinfo>
#include <vector>

#include "mp/detail/pool_task.hpp"
#include "mp/process.hpp"
#include "pool_wire.hpp"
#include "process_table.hpp"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

namespace mp::detail::pool_wire {
namespace {

// ---- shared by the zygote and the worker ------------------------------------------------

// send_with_fd(socket, data, size, fd): one SEQPACKET message, optionally
// carrying fd (SCM_RIGHTS). Returns 0 or errno. Async-signal-safe.
int send_with_fd(int socket, const void* data, std::size_t size, int fd) noexcept {
  iovec iov{const_cast<void*>(data), size};
  msghdr message{};
  message.msg_iov = &iov;
  message.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  if (fd >= 0) {
    std::memset(control, 0, sizeof control);
    message.msg_control = control;
    message.msg_controllen = sizeof control;
    cmsghdr* header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(header), &fd, sizeof(int));
  }
  for (;;) {
    if (::sendmsg(socket, &message, MSG_NOSIGNAL) >= 0) return 0;
    if (errno != EINTR) return errno;
  }
}

std::uint64_t monotonic_ns() noexcept {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<std::uint64_t>(now.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(now.tv_nsec);
}

// ---- the worker -----------------------------------------------------------------------------

// leave(code): reap the worker's own children (as any mp child does),
// flush what the tasks printed, then _exit (never exit()).
[[noreturn]] void leave(int code) noexcept {
  finish_children();
  try {
    std::cout.flush();
    std::cerr.flush();
    std::clog.flush();
  } catch (...) {
  }
  std::fflush(nullptr);
  ::_exit(code);
}

// write_all(fd, iov, count): the whole frame, or leave(): a worker whose
// supervisor is gone has nothing left to do.
void write_all(int fd, iovec* iov, int count) noexcept {
  while (count > 0) {
    msghdr message{};
    message.msg_iov = iov;
    message.msg_iovlen = static_cast<std::size_t>(count);
    ssize_t n = ::sendmsg(fd, &message, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      leave(0);
    }
    auto left = static_cast<std::size_t>(n);
    while (count > 0 && left >= iov->iov_len) {
      left -= iov->iov_len;
      ++iov;
      --count;
    }
    if (count > 0) {
      iov->iov_base = static_cast<char*>(iov->iov_base) + left;
      iov->iov_len -= left;
    }
  }
}

void send_frame(int fd, FromWorker kind, std::uint64_t task_id, std::uint64_t run_ns,
                const std::vector<std::byte>& payload) noexcept {
  ResultHeader header{static_cast<std::uint32_t>(kind), 0, task_id, run_ns, payload.size()};
  iovec iov[2] = {{&header, sizeof header}, {const_cast<std::byte*>(payload.data()), payload.size()}};
  write_all(fd, iov, payload.empty() ? 1 : 2);
}

// describe_current_exception(out): u32 type length, demangled type, message.
void describe_current_exception(std::vector<std::byte>& out) {
  std::string type = "unknown exception";
  if (const std::type_info* info = abi::__cxa_current_exception_type()) {
    int status = 0;
    char* demangled = abi::__cxa_demangle(info->name(), nullptr, nullptr, &status);
    type = (status == 0 && demangled != nullptr) ? demangled : info->name();
    std::free(demangled);
  }
  std::string message;
  try {
    throw;
  } catch (const std::exception& error) {
    message = error.what();
  } catch (...) {
    message = "(an exception not derived from std::exception)";
  }
  const auto type_size = static_cast<std::uint32_t>(type.size());
  out.resize(sizeof type_size + type.size() + message.size());
  std::memcpy(out.data(), &type_size, sizeof type_size);
  std::memcpy(out.data() + sizeof type_size, type.data(), type.size());
  std::memcpy(out.data() + sizeof type_size + type.size(), message.data(), message.size());
}

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

[[noreturn]] void worker_main(const WorkerLaunch& launch) noexcept {
  const int fd = launch.channel_fd;
  try {
    adopt_identity(launch.identity);
    timer_t timer{};
    const bool timing = prepare_task_control(launch, timer);
    if (launch.task_timeout_ns != 0 && !timing)
      leave(71);  // cannot keep task_timeout: say so by dying at once
    std::vector<std::byte> results;
    if (launch.initializer != nullptr) {
      try {
        launch.initializer();
      } catch (...) {
        describe_current_exception(results);
        send_frame(fd, FromWorker::initializer_failed, 0, 0, results);
        leave(1);
      }
    }
    results.clear();
    send_frame(fd, FromWorker::ready, 0, 0, results);

    std::vector<std::byte> inbox(std::size_t{1} << 16);
    std::size_t begin = 0;  // first unconsumed byte
    std::size_t end = 0;    // one past the last received byte
    std::size_t tasks_done = 0;
    // need(n): at least n unconsumed bytes in inbox, reading (blocking) as required.
    auto need = [&](std::size_t n) {
      if (inbox.size() - begin < n) {
        std::memmove(inbox.data(), inbox.data() + begin, end - begin);
        end -= begin;
        begin = 0;
        if (inbox.size() < n) inbox.resize(n);
      }
      while (end - begin < n) {
        ssize_t got = ::read(fd, inbox.data() + end, inbox.size() - end);
        if (got == 0) leave(0);  // the supervisor is gone
        if (got < 0) {
          if (errno == EINTR) continue;
          leave(1);
        }
        end += static_cast<std::size_t>(got);
      }
    };
    for (;;) {
      need(sizeof(TaskHeader));
      TaskHeader header;
      std::memcpy(&header, inbox.data() + begin, sizeof header);
      if (header.kind == static_cast<std::uint32_t>(ToWorker::exit)) leave(0);
      need(sizeof(TaskHeader) + header.payload_size);
      std::span<const std::byte> payload(inbox.data() + begin + sizeof(TaskHeader), header.payload_size);

      // INV1: the slot names this task before it starts; read by the
      // supervisor only after this process died.
      launch.slot->started_task.store(
          header.task_id,
          std::memory_order_release);  // pairs with the acquire load in the supervisor's worker-exit handling
      // INV3: running_task before reading the cancel entries.
      launch.slot->running_task.store(
          header.task_id,
          std::memory_order_seq_cst);  // pairs with the supervisor's seq_cst load (Dekker)
      if (is_cancelled(*launch.slot, header.task_id)) {
        launch.slot->running_task.store(0, std::memory_order_seq_cst);  // see above
        results.clear();
        send_frame(fd, FromWorker::skipped, header.task_id, 0, results);
        begin += sizeof(TaskHeader) + header.payload_size;
        ++tasks_done;
        if (launch.maxtasksperchild != 0 && tasks_done >= launch.maxtasksperchild) leave(0);
        continue;
      }
      results.clear();
      const std::uint64_t started = monotonic_ns();
      if (timing) {
        launch.slot->timeout_at_ns.store(
            started + launch.task_timeout_ns,
            std::memory_order_release);  // pairs with the supervisor's acquire after our death
        arm(timer, launch.task_timeout_ns);
      }
      FromWorker outcome = FromWorker::result;
      try {
        auto runner = reinterpret_cast<ChunkRunner>(static_cast<std::uintptr_t>(header.runner));
        runner(payload, header.item_count, results);
      } catch (...) {
        results.clear();
        describe_current_exception(results);
        outcome = FromWorker::error;
      }
      if (timing) arm(timer, 0);
      launch.slot->running_task.store(0, std::memory_order_seq_cst);  // see above
      send_frame(fd, outcome, header.task_id, monotonic_ns() - started, results);
      begin += sizeof(TaskHeader) + header.payload_size;
      ++tasks_done;
      if (launch.maxtasksperchild != 0 && tasks_done >= launch.maxtasksperchild) leave(0);
    }
  } catch (...) {
    // std::bad_alloc outside a task, or the like: this worker cannot go on; the
    // supervisor sees it exit and fails the task it held.
    leave(70);
  }
}

// ---- the zygote -----------------------------------------------------------------------------

void report(const ZygoteLaunch& launch, ZygoteReportKind kind, int index, pid_t pid, int code, int status,
            int error, int fd) noexcept {
  ZygoteReport message{static_cast<std::uint32_t>(kind), index, pid, code, status, error};
  if (send_with_fd(launch.control_fd, &message, sizeof message, fd) != 0) {
    // The supervisor is gone: so is the pool. Take the workers with us.
    ::_exit(0);
  }
}

[[noreturn]] void shutdown(const ZygoteLaunch& launch) noexcept {
  for (int i = 0; i < launch.worker_count; ++i) {
    if (launch.pidfd_storage[i] >= 0)
      ::syscall(SYS_pidfd_send_signal, launch.pidfd_storage[i], SIGKILL, nullptr, 0);
  }
  for (int i = 0; i < launch.worker_count; ++i) {
    if (launch.pidfd_storage[i] < 0) continue;
    siginfo_t info{};
    while (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(launch.pidfd_storage[i]), &info,
                    WEXITED) < 0 &&
           errno == EINTR) {
    }
  }
  ::_exit(0);
}

void spawn(const ZygoteLaunch& launch, int index, int channel, const char* identity) noexcept {
  char* stored = launch.identity_storage + index * kIdentitySize;
  std::memcpy(stored, identity, kIdentitySize);
  stored[kIdentitySize - 1] = '\0';
  const pid_t zygote = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    // The worker. Die with the zygote (and so with the pool), then check the
    // race: the zygote may have died before the prctl.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != zygote) ::_exit(1);
    ::close(launch.control_fd);
    for (int i = 0; i < launch.worker_count; ++i) {
      if (launch.pidfd_storage[i] >= 0) ::close(launch.pidfd_storage[i]);
    }
    WorkerLaunch worker{channel,
                        &launch.slots[index],
                        launch.identity_storage + index * kIdentitySize,
                        launch.initializer,
                        launch.maxtasksperchild,
                        launch.task_timeout_ns};
    worker_main(worker);
  }
  if (pid < 0) {
    const int error = errno;
    ::close(channel);
    report(launch, ZygoteReportKind::spawn_failed, index, 0, 0, 0, error, -1);
    return;
  }
  ::close(channel);
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) {
    const int error = errno;
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    report(launch, ZygoteReportKind::spawn_failed, index, 0, 0, 0, error, -1);
    return;
  }
  launch.pidfd_storage[index] = pidfd;
  launch.pid_storage[index] = pid;
  report(launch, ZygoteReportKind::spawned, index, pid, 0, 0, 0, pidfd);
}

void reap(const ZygoteLaunch& launch, int index) noexcept {
  siginfo_t info{};
  int rc;
  while ((rc = ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(launch.pidfd_storage[index]), &info,
                        WEXITED)) < 0 &&
         errno == EINTR) {
  }
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
  // mp's process table was locked across the fork (process_table.hpp INV1):
  // make our copy ours (no children, in_child) and unlock it, so that a task
  // may start an mp::Process and mp::exit() ends a worker as it ends any mp
  // child, without the owner's atexit handlers (issue 9, defect 8).
  reset_table_in_child(process_table(), nullptr);
  for (int i = 0; i < launch.close_count; ++i) ::close(launch.close_after_fork[i]);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != launch.expected_parent) ::_exit(0);
  // Our children must stay waitable whatever the program did with SIGCHLD.
  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;
  ::sigaction(SIGCHLD, &default_action, nullptr);
  ::sigprocmask(SIG_SETMASK, &launch.signal_mask, nullptr);
  // Output other threads buffered after the pool flushed belongs to the
  // parent; workers must not print it again. (fork reset the stdio locks.)
  __fpurge(stdout);
  __fpurge(stderr);

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
    iovec iov{&request, sizeof request};
    msghdr message{};
    message.msg_iov = &iov;
    message.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    message.msg_control = control;
    message.msg_controllen = sizeof control;
    const ssize_t n = ::recvmsg(launch.control_fd, &message, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) shutdown(launch);  // the supervisor is gone
    int channel = -1;
    for (cmsghdr* header = CMSG_FIRSTHDR(&message); header != nullptr;
         header = CMSG_NXTHDR(&message, header)) {
      if (header->cmsg_level == SOL_SOCKET && header->cmsg_type == SCM_RIGHTS) {
        std::memcpy(&channel, CMSG_DATA(header), sizeof(int));
      }
    }
    if (request.kind == static_cast<std::uint32_t>(ZygoteRequestKind::spawn) && channel >= 0 &&
        request.worker_index >= 0 && request.worker_index < launch.worker_count &&
        launch.pidfd_storage[request.worker_index] < 0) {
      spawn(launch, request.worker_index, channel, request.identity);
    } else {
      if (channel >= 0) ::close(channel);
      shutdown(launch);
    }
  }
}

}  // namespace mp::detail::pool_wire
