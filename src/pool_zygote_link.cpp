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
    pidfd_.reset(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    if (!pidfd_) {
      error = errno;
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
      }
    }
  }
  zygote_end_.reset();
  launch.close_after_fork = nullptr;
  launch.close_count = 0;
  alive_ = error == 0;
  return error;
}

void ZygoteLink::request_spawn(int index, UniqueFd worker_end, const std::string& identity) {
  Request request;
  request.message = ZygoteRequest{};
  request.message.kind = static_cast<std::uint32_t>(ZygoteRequestKind::spawn);
  request.message.worker_index = index;
  const std::size_t size = std::min(identity.size(), sizeof request.message.identity - 1);
  std::memcpy(request.message.identity, identity.data(), size);
  request.message.identity[size] = '\0';
  request.fd = std::move(worker_end);
  outbox_.push_back(std::move(request));
  flush();
}

void ZygoteLink::flush() noexcept {
  while (!outbox_.empty()) {
    Request& request = outbox_.front();
    iovec iov{&request.message, sizeof request.message};
    msghdr message{};
    message.msg_iov = &iov;
    message.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    if (request.fd) {
      message.msg_control = control;
      message.msg_controllen = sizeof control;
      cmsghdr* header = CMSG_FIRSTHDR(&message);
      header->cmsg_level = SOL_SOCKET;
      header->cmsg_type = SCM_RIGHTS;
      header->cmsg_len = CMSG_LEN(sizeof(int));
      const int fd = request.fd.get();
      std::memcpy(CMSG_DATA(header), &fd, sizeof(int));
    }
    const ssize_t sent = ::sendmsg(control_.get(), &message, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent >= 0) {
      outbox_.pop_front();  // closes our copy of the worker's end
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;  // the supervisor polls POLLOUT
    // EPIPE / ECONNRESET: the zygote is gone; its pidfd tells the supervisor.
    outbox_.clear();
    return;
  }
}

bool ZygoteLink::read_report(ZygoteReport& report, UniqueFd& passed) noexcept {
  for (;;) {
    report = ZygoteReport{};
    iovec iov{&report, sizeof report};
    msghdr message{};
    message.msg_iov = &iov;
    message.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    message.msg_control = control;
    message.msg_controllen = sizeof control;
    const ssize_t n = ::recvmsg(control_.get(), &message, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;  // EAGAIN, or the zygote is gone (its pidfd says so)
    passed.reset();
    for (cmsghdr* header = CMSG_FIRSTHDR(&message); header != nullptr;
         header = CMSG_NXTHDR(&message, header)) {
      if (header->cmsg_level == SOL_SOCKET && header->cmsg_type == SCM_RIGHTS) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(header), sizeof fd);
        passed.reset(fd);
      }
    }
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
    outbox_.push_back(std::move(request));
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
