// src/after_fork/forkserver_main.cpp — the fork server: a single-threaded
// process, started from a quiet state (a fork of a one-thread process, or a
// fresh run of the program), that forks every child of the forkserver start
// method (start_methods.hpp has the protocol).
//
// The server is single-threaded from its first instruction, so it may
// allocate and its children may run ordinary C++ at once. It keeps only the
// descriptors it needs (stdin/stdout/stderr, the control socket, a pidfd and a
// status pipe per running child): nothing the starting process opened later or
// had open then (a pipe's write end, say) is held open by it. The handle fds
// that come with a request (a Queue's memfd, a Pipe end) go to the child it
// forks for that request and are closed in the server right after the fork.
// Every child it forks leaves through run_launch() -> _exit().
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "after_fork/after_fork.hpp"
#include "start_methods.hpp"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

namespace mp::detail {
namespace {

struct ServerChild {
  int pidfd = -1;
  int status_fd = -1;  // write end: the exit code goes here
};

void close_all_but(int keep) noexcept {
  if (keep > 3) ::syscall(SYS_close_range, 3u, static_cast<unsigned>(keep - 1), 0u);
  ::syscall(SYS_close_range, static_cast<unsigned>(keep + 1), ~0u, 0u);
}

// reap(child): the child ended: its exit code (N, or -S) to its parent.
void reap(ServerChild& child) noexcept {
  siginfo_t info{};
  int rc;
  while ((rc = ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(child.pidfd), &info, WEXITED)) <
             0 &&
         errno == EINTR) {
  }
  if (rc == 0) {
    const int code = info.si_code == CLD_EXITED ? info.si_status : -info.si_status;
    (void)after_fork::write_all(child.status_fd, &code, sizeof code);
  }  // else: nothing to report; the parent sees the pipe close and calls the status lost
  ::close(child.status_fd);
  ::close(child.pidfd);
}

}  // namespace

void forkserver_main(int control) noexcept {
  if (control != 3) {
    // Keep the control socket at a fixed place so close_all_but() is simple.
    if (::dup2(control, 3) < 0) ::_exit(1);
    ::close(control);
    control = 3;
  }
  close_all_but(control);
  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;
  ::sigaction(SIGCHLD, &default_action, nullptr);  // our children must stay waitable
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ignore, nullptr);
  ::sigaction(SIGINT, &ignore, nullptr);  // a terminal's ^C is for the program; we die with it anyway
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  const pid_t self = ::getpid();

  std::vector<ServerChild> children;
  std::vector<pollfd> fds;
  for (;;) {
    fds.clear();
    fds.push_back({control, POLLIN, 0});
    for (const ServerChild& child : children) fds.push_back({child.pidfd, POLLIN, 0});
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      ::_exit(1);
    }
    for (std::size_t i = children.size(); i-- > 0;) {
      if (fds[i + 1].revents == 0) continue;
      reap(children[i]);
      children.erase(children.begin() + static_cast<long>(i));
    }
    if (fds[0].revents == 0) continue;
    StartRequest request;
    int received_fds[after_fork::kMaxFds];
    std::size_t received = 0;
    const long n = after_fork::receive_with_fds(control, &request, sizeof request, received_fds,
                                                after_fork::kMaxFds, &received);
    if (n <= 0) ::_exit(0);  // the starting process closed its end (or is gone): our work is done
    if (n != static_cast<long>(sizeof request) || request.magic != LaunchHeader::kMagic || received < 2 ||
        received != 2 + std::size_t{request.fd_count}) {
      for (std::size_t i = 0; i < received; ++i) ::close(received_fds[i]);
      ::_exit(1);  // not our client
    }
    const int record = received_fds[0];
    const int status = received_fds[1];
    const int* handle_fds = received_fds + 2;
    const std::size_t handle_count = request.fd_count;
    StartReply reply;
    after_fork::flush_all_output();
    const pid_t pid = ::fork();
    if (pid == 0) {
      // ---- the child: a fork of a single-threaded process ----
      ::close(control);
      ::close(status);
      for (const ServerChild& child : children) {
        ::close(child.pidfd);
        ::close(child.status_fd);
      }
      run_launch(record, handle_fds, handle_count, self, true);
    }
    ::close(record);
    for (std::size_t i = 0; i < handle_count; ++i) ::close(handle_fds[i]);  // the child has them
    int pidfd = -1;
    if (pid < 0) {
      reply.error = errno;
    } else {
      after_fork::PidfdResult watched = after_fork::open_pidfd_or_reap(pid);
      if (watched.error != 0 || watched.already_reaped) {
        reply.error = watched.error != 0 ? watched.error : ECHILD;
      } else {
        pidfd = watched.pidfd;
        reply.pid = pid;
      }
    }
    if (after_fork::send_with_fd(control, &reply, sizeof reply, pidfd) != 0) ::_exit(0);
    if (pidfd >= 0) {
      children.push_back({pidfd, status});
    } else {
      ::close(status);
    }
  }
}

}  // namespace mp::detail
