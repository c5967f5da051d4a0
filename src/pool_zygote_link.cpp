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
#include "mp/codec.hpp"
#include "mp/detail/handle_codec.hpp"
#include "mp/detail/ring.hpp"
#include "mp/detail/system_error.hpp"
#include "mp/errors.hpp"
#include "process_table.hpp"
#include "start_methods.hpp"

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

void ZygoteLink::start(ZygoteLaunch& launch, const int* parent_fds, int parent_fd_count, StartMethod method,
                       const RegionMapping& slot_table) {
  launch.control_fd = zygote_end_.get();
  launch.launched = method != StartMethod::fork;
  if (method == StartMethod::fork) {
    fork_zygote(launch, parent_fds, parent_fd_count);
  } else {
    launch_zygote(launch, method, slot_table);
  }
  alive_ = true;
}

void ZygoteLink::fork_zygote(ZygoteLaunch& launch, const int* parent_fds, int parent_fd_count) {
  // The zygote closes our end and the other parent-only fds first thing.
  int close_list[8];
  int count = 0;
  close_list[count++] = control_.get();
  for (int i = 0; i < parent_fd_count && count < 8; ++i) close_list[count++] = parent_fds[i];
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
  launch.close_after_fork = nullptr;
  launch.close_count = 0;
  if (pid < 0) throw_system_error("fork", "pool zygote", fork_error);
  pid_ = pid;
  our_child_ = true;
  zygote_end_.reset();
  const after_fork::PidfdResult opened = after_fork::open_pidfd_or_reap(pid);
  pidfd_.reset(opened.pidfd);
  if (!pidfd_) throw_system_error("pidfd_open", "pool zygote", opened.already_reaped ? ESRCH : opened.error);
}

// The payload zygote_entry() reads (src/after_fork/pool_zygote.cpp), in its order.
void ZygoteLink::launch_zygote(const ZygoteLaunch& launch, StartMethod method,
                               const RegionMapping& slot_table) {
  const std::string pool = "Pool(" + std::to_string(launch.worker_count) + ")";
  if (method == StartMethod::spawn && !init_was_called())
    throw ProcessError(
        pool +
        ": the spawn start method runs this program again to start the pool's workers and needs "
        "mp::init(argc, argv) as the first line of main(); call it (or use forkserver)");
  const std::size_t fd_count = 3 + static_cast<std::size_t>(launch.worker_count);
  if (method == StartMethod::forkserver && fd_count > kMaxLaunchFds)
    throw ProcessError(pool + ": under forkserver a pool has at most " + std::to_string(kMaxLaunchFds - 3) +
                       " workers (each has a ring whose fd goes to the fork server); use spawn or fork");
  LaunchRequest request;
  request.name = "PoolZygote";
  request.daemon = true;  // dies with the process that started it (the server, or us)
  request.entry = &zygote_entry;
  OutgoingFds fds;
  Writer writer(request.payload, &fds);
  writer.value(kZygotePayloadMagic);
  writer.value(static_cast<std::int32_t>(launch.worker_count));
  writer.value(static_cast<std::uint64_t>(launch.maxtasksperchild));
  writer.value(launch.task_timeout_ns);
  writer.bytes(&launch.signal_mask, sizeof launch.signal_mask);
  writer.value(static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(launch.initializer)));
  const std::vector<std::uintptr_t> bases = loaded_object_bases();
  writer.value(std::vector<std::uint64_t>(bases.begin(), bases.end()));
  writer.value(fds.add(zygote_end_.get()));
  put_region(writer, slot_table.fd, 0, slot_table.mapped_bytes, "pool worker slots");
  put_region(writer, launch.result_ring->fd(), 0, launch.result_ring->mapped_bytes(), "pool ring");
  for (int i = 0; i < launch.worker_count; ++i)
    put_region(writer, launch.task_rings[i].fd(), 0, launch.task_rings[i].mapped_bytes(), "pool ring");
  request.fds = fds.fds();
  UniqueFd record = write_launch_record(request);
  Launched launched = method == StartMethod::forkserver ? forkserver_launch(record.get(), true, request.fds)
                                                        : spawn_launch(record.get(), true, request.fds);
  zygote_end_.reset();  // the zygote has its own copy now
  pid_ = launched.pid;
  pidfd_ = std::move(launched.pidfd);
  status_ = std::move(launched.status_fd);
  our_child_ = method == StartMethod::spawn;
  if (!pidfd_ && !status_)
    throw ProcessError(pool + ": the fork server started the zygote but gave no way to watch it");
}

std::optional<int> ZygoteLink::collect_exit() noexcept {
  if (our_child_) {
    int status = 0;
    pid_t rc;
    while ((rc = ::waitpid(pid_, &status, 0)) < 0 && errno == EINTR) {
    }
    if (rc != pid_) return std::nullopt;  // reaped by someone else (SIGCHLD ignored, waitpid(-1))
    return WIFSIGNALED(status) ? -WTERMSIG(status) : WEXITSTATUS(status);
  }
  if (!status_) return std::nullopt;
  // The server wrote the exit code (N, or -S) before closing its end, which is
  // what made the pipe readable; EOF alone: the server died without reporting.
  int code = 0;
  if (after_fork::read_all(status_.get(), &code, sizeof code) == 0) return code;
  return std::nullopt;
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
  const std::optional<int> code = collect_exit();
  alive_ = false;
  pidfd_.reset();
  status_.reset();
  outbox_.clear();
  std::string why = "the pool's worker launcher (zygote, pid " + std::to_string(pid_) + ")";
  if (!code) return why + " ended (its exit status is lost)";
  if (*code < 0) return why + " died of signal " + std::to_string(-*code);
  return why + " exited with code " + std::to_string(*code);
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
    pollfd fds[2] = {{watch_fd(), POLLIN, 0},
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
  (void)collect_exit();
  alive_ = false;
  outbox_.clear();
  control_.reset();
  pidfd_.reset();
  status_.reset();
}

}  // namespace mp::detail
