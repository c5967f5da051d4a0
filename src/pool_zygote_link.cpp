// src/pool_zygote_link.cpp — ZygoteLink: the supervisor's side of the zygote.
#include "pool_zygote_link.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "after_fork/after_fork.hpp"
#include "mp/detail/system_error.hpp"
#include "process_table.hpp"

namespace mp::detail {

using namespace pool_wire;

ZygoteLink::ZygoteLink(int control_buffer) {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
    throw_system_error("socketpair", "pool zygote control", errno);
  }
  control_.reset(pair[0]);
  zygote_end_.reset(pair[1]);
  // Our end never blocks (the flag is per open file description: the zygote's
  // end, a different description, stays blocking).
  const int flags = ::fcntl(control_.get(), F_GETFL);
  if (flags < 0 || ::fcntl(control_.get(), F_SETFL, flags | O_NONBLOCK) != 0) {
    throw_system_error("fcntl(O_NONBLOCK)", "pool zygote control", errno);
  }
  if (control_buffer > 0) {
    ::setsockopt(control_.get(), SOL_SOCKET, SO_SNDBUF, &control_buffer, sizeof control_buffer);
    ::setsockopt(zygote_end_.get(), SOL_SOCKET, SO_SNDBUF, &control_buffer, sizeof control_buffer);
  }
}

int ZygoteLink::start(ZygoteLaunch& launch, const int* parent_fds, int parent_fd_count) noexcept {
  // The zygote closes our end and the other parent-only fds first thing.
  int close_list[8];
  int count = 0;
  close_list[count++] = control_.get();
  for (int i = 0; i < parent_fd_count && count < 8; ++i) close_list[count++] = parent_fds[i];
  launch.control_fd = zygote_end_.get();
  launch.close_after_fork = close_list;
  launch.close_count = count;

  // process_table.hpp INV1: the zygote, and so every worker, inherits a
  // consistent copy of mp's process table (zygote_main unlocks its copy).
  ProcessTable& table = process_table();
  table.mutex.lock();
  const pid_t pid = ::fork();
  if (pid == 0) zygote_main(launch);
  const int fork_error = errno;
  table.mutex.unlock();
  int error = 0;
  if (pid < 0) {
    error = fork_error;
  } else {
    pid_ = pid;
    const after_fork::PidfdResult opened = after_fork::open_pidfd_or_reap(pid);
    pidfd_.reset(opened.pidfd);
    if (!pidfd_) error = opened.already_reaped ? ESRCH : opened.error;
  }
  zygote_end_.reset();
  launch.close_after_fork = nullptr;
  launch.close_count = 0;
  alive_ = error == 0;
  return error;
}

void ZygoteLink::request_spawn(int index, const std::string& identity) {
  Request request;
  request.message = ZygoteRequest{};
  request.message.kind = static_cast<std::uint32_t>(ZygoteRequestKind::spawn);
  request.message.worker_index = index;
  const std::size_t size = std::min(identity.size(), sizeof request.message.identity - 1);
  std::memcpy(request.message.identity, identity.data(), size);
  request.message.identity[size] = '\0';
  outbox_.push_back(request);
  flush();
}

void ZygoteLink::flush() noexcept {
  while (!outbox_.empty()) {
    Request& request = outbox_.front();
    // Our end is non-blocking (O_NONBLOCK): a full socket answers EAGAIN.
    const int error = after_fork::send_with_fd(control_.get(), &request.message, sizeof request.message, -1);
    if (error == 0) {
      outbox_.pop_front();
      continue;
    }
    if (error == EAGAIN || error == EWOULDBLOCK) return;  // the supervisor polls POLLOUT
    // EPIPE / ECONNRESET: the zygote is gone; its pidfd tells the supervisor.
    outbox_.clear();
    return;
  }
}

bool ZygoteLink::read_report(ZygoteReport& report, UniqueFd& passed) noexcept {
  for (;;) {
    report = ZygoteReport{};
    int fd = -1;
    std::size_t received = 0;
    // Our end is non-blocking: -1 with EAGAIN when there is nothing.
    const long n = after_fork::receive_with_fds(control_.get(), &report, sizeof report, &fd, 1, &received);
    if (n <= 0) return false;  // EAGAIN, or the zygote is gone (its pidfd says so)
    passed.reset(received > 0 ? fd : -1);
    if (static_cast<std::size_t>(n) != sizeof report) continue;  // not a report: ignore
    return true;
  }
}

std::string ZygoteLink::reap_dead() {
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  alive_ = false;
  pidfd_.reset();
  outbox_.clear();
  std::string why = "the pool's worker launcher (zygote, pid " + std::to_string(pid_) + ") died";
  if (WIFSIGNALED(status)) why += " of signal " + std::to_string(WTERMSIG(status));
  return why;
}

void ZygoteLink::shutdown_and_reap() noexcept {
  if (!alive_) return;
  Request request;
  request.message = ZygoteRequest{};
  request.message.kind = static_cast<std::uint32_t>(ZygoteRequestKind::shutdown);
  request.message.worker_index = -1;
  try {
    outbox_.push_back(request);
  } catch (...) {
    // Out of memory: closing our end makes the zygote shut down too (EOF).
    control_.reset();
  }
  // Until it is gone, keep reading its reports (dropping them): a zygote
  // blocked on a full control socket would never read the shutdown.
  for (;;) {
    flush();
    pollfd fds[2] = {{pidfd_.get(), POLLIN, 0},
                     {control_.get(), static_cast<short>(POLLIN | (wants_write() ? POLLOUT : 0)), 0}};
    if (::poll(fds, control_ ? 2 : 1, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if ((fds[1].revents & POLLIN) != 0) {
      ZygoteReport report;
      UniqueFd passed;
      while (read_report(report, passed)) passed.reset();
    }
    if (fds[0].revents != 0) break;
  }
  while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
  }
  alive_ = false;
  outbox_.clear();
  control_.reset();
  pidfd_.reset();
}

}  // namespace mp::detail
