// Watching, signalling and reaping a child through its pidfd (parent side;
// see include/mp/detail/spawn.hpp).
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "mp/detail/spawn.hpp"

namespace mp::detail {
namespace {
// glibc >= 2.36 names it P_PIDFD; the kernel value is fixed ABI.
constexpr auto kIdTypePidfd = static_cast<idtype_t>(3);
}  // namespace

ReapOutcome try_reap(int pidfd) noexcept {
  siginfo_t info{};
  for (;;) {
    if (::waitid(kIdTypePidfd, static_cast<id_t>(pidfd), &info, WEXITED | WNOHANG) == 0) break;
    if (errno == EINTR) continue;
    if (errno == ECHILD) return {ChildState::lost, 0, ECHILD};
    return {ChildState::failed, 0, errno};
  }
  if (info.si_pid == 0) return {ChildState::running, 0, 0};
  int code = info.si_code == CLD_EXITED ? info.si_status : -info.si_status;
  return {ChildState::ended, code, 0};
}

int wait_readable(int pidfd, Deadline deadline) noexcept {
  for (;;) {
    pollfd entry{pidfd, POLLIN, 0};
    int rc = ::poll(&entry, 1, deadline.poll_timeout_ms());
    if (rc > 0) return (entry.revents & POLLNVAL) ? EBADF : 0;
    if (rc < 0 && errno != EINTR) return errno;
    if (rc == 0 && deadline.expired()) return ETIMEDOUT;
    // EINTR, or poll's millisecond rounding woke us a hair early: the deadline is absolute, go again.
  }
}

ReapOutcome wait_and_reap(int pidfd, Deadline deadline) noexcept {
  int rc = wait_readable(pidfd, deadline);
  if (rc == ETIMEDOUT) return {ChildState::running, 0, 0};
  if (rc != 0) return {ChildState::failed, 0, rc};
  return try_reap(pidfd);
}

int signal_child(int pidfd, int signal) noexcept {
  if (::syscall(SYS_pidfd_send_signal, pidfd, signal, nullptr, 0) == 0) return 0;
  return errno;
}

}  // namespace mp::detail
