// src/after_fork/pool_zygote.cpp — the Pool's zygote: the process that forks
// every worker (STYLE rule 7: the Pool's code between fork() and _exit()
// lives here and in pool_worker.cpp, on the helpers of after_fork.hpp).
//
// The zygote is forked by the pool's supervisor thread (ZygoteLink::start,
// src/pool_zygote_link.cpp), possibly while other threads of the program hold
// locks, so it runs only system calls on memory the parent prepared before
// the fork: no allocation, no locks, no exceptions, no stdio but discarding
// the buffers it inherited. It forks workers on request (each runs
// worker_main()), hands their pidfds to the supervisor and reports their
// exits. It never touches the rings (pool_wire.hpp): a worker uses the ones
// it inherits. Every way out is _exit().
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "after_fork/after_fork.hpp"
#include "mp/detail/ring.hpp"  // only to point a worker at its ring
#include "pool_wire.hpp"
#include "process_table.hpp"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

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
  // mp's process table was locked across the fork (process_table.hpp INV1):
  // make our copy ours (no children, in_child) and unlock it, so that a task
  // may start an mp::Process and mp::exit() ends a worker as it ends any mp
  // child, without the owner's atexit handlers (issue 9, defect 8).
  reset_table_in_child(process_table(), nullptr);
  for (int i = 0; i < launch.close_count; ++i) ::close(launch.close_after_fork[i]);
  // Die with the pool. The kernel ties the death signal to the forking
  // thread, the supervisor, which lives as long as the pool.
  after_fork::arm_death_signal(launch.expected_parent, true);
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

}  // namespace mp::detail::pool_wire
