// src/pool_zygote_link.hpp — private to the Pool: the supervisor's side of the
// zygote (the process that forks every worker, src/after_fork/pool_zygote.cpp).
//
// ZygoteLink starts the zygote, queues requests to it (spawn worker i,
// shutdown) and reads its reports (spawned, spawn failed, exited). Requests
// are written without ever blocking: a request the socket cannot take now
// stays queued and the supervisor loop polls for POLLOUT (wants_write()),
// while it keeps reading reports. The zygote's reports are blocking writes, so
// a supervisor that blocked on a request while the zygote blocked on a report
// would wait for each other forever (issue 9, defect 11); with this link the
// supervisor always drains reports, so the zygote always gets on.
//
// How the zygote starts follows the pool's start method: under fork it is
// forked from the supervisor thread; under forkserver it is a child of mp's
// fork server, and under spawn a fresh run of the program, started by the
// launch machinery as a Process child is (start_methods.hpp), with the control
// socket, the slot table's and the rings' memfds as the launch's fds. Only
// under fork and spawn is it our child: under forkserver its pidfd (from the
// server) is for signals and its end is read from the status pipe the server
// writes its exit code to (watch_fd()); never waitpid on it.
//
// Safety: one ZygoteLink per pool, used by the supervisor thread only (the
// constructor and start() run before or on it). Nothing here takes the pool's
// mutex. Lifetime: the zygote is started by start() and gone after
// shutdown_and_reap() or reap_dead(); the destructor closes what is left.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "mp/context.hpp"
#include "mp/detail/fd.hpp"
#include "mp/detail/shm.hpp"
#include "pool_wire.hpp"

namespace mp::detail {

class ZygoteLink {
 public:
  // ZygoteLink(control_buffer): makes the control socket pair; SO_SNDBUF of
  // both ends when control_buffer > 0 (tests). Throws mp::Error if the system refuses.
  explicit ZygoteLink(int control_buffer);

  // ZygoteLink::start(launch, parent_fds, parent_fd_count, method, slot_table):
  // starts the zygote, which runs pool_wire::zygote_main(launch) (fork), or
  // zygote_entry() with a payload made from `launch` (forkserver, spawn;
  // `slot_table` is the region behind launch.slots, its memory travels by fd).
  // The launch's control_fd is filled in here. Throws mp::Error naming the
  // call that failed (fork, pidfd_open, memfd_create, ...), ProcessError when
  // the method cannot start it (spawn without mp::init(), too many workers
  // for the fork server's fd limit).
  void start(pool_wire::ZygoteLaunch& launch, const int* parent_fds, int parent_fd_count, StartMethod method,
             const RegionMapping& slot_table);

  [[nodiscard]] bool alive() const noexcept { return alive_; }
  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  [[nodiscard]] int control_fd() const noexcept { return control_.get(); }
  [[nodiscard]] int pidfd() const noexcept { return pidfd_.get(); }
  // ZygoteLink::watch_fd(): readable once the zygote ended: its pidfd, or
  // under forkserver the status pipe (readable once the server reaped it).
  [[nodiscard]] int watch_fd() const noexcept { return status_.get() >= 0 ? status_.get() : pidfd_.get(); }

  // ZygoteLink::request_spawn(index, identity): queues "fork worker `index`
  // with this identity" (it uses the task ring of that index, inherited);
  // then writes what it can. Never blocks.
  void request_spawn(int index, const std::string& identity);
  // ZygoteLink::flush(): writes queued requests until the socket is full.
  // Never blocks. A dead zygote's requests are dropped (its pidfd says so).
  void flush() noexcept;
  // ZygoteLink::wants_write(): requests are waiting for room (poll POLLOUT).
  [[nodiscard]] bool wants_write() const noexcept { return !outbox_.empty(); }

  // ZygoteLink::read_report(report, passed): the next report, if one is
  // there (never blocks); `passed` receives the fd it carried, if any.
  [[nodiscard]] bool read_report(pool_wire::ZygoteReport& report, UniqueFd& passed) noexcept;

  // ZygoteLink::reap_dead(): watch_fd() became readable (someone killed the
  // zygote): reaps it (ours) or reads its status (the server's) and says how
  // it died.
  std::string reap_dead();
  // ZygoteLink::shutdown_and_reap(): asks the zygote to kill and reap its
  // workers and exit, reads (and drops) reports meanwhile, reaps it.
  void shutdown_and_reap() noexcept;

 private:
  struct Request {
    pool_wire::ZygoteRequest message;
  };

  UniqueFd control_;     // our end (non-blocking)
  UniqueFd zygote_end_;  // the zygote's end, closed here after the fork
  UniqueFd pidfd_;
  UniqueFd status_;  // forkserver: the server writes the zygote's exit code here
  pid_t pid_ = 0;
  bool our_child_ = false;  // fork and spawn: we reap it; forkserver: the server does
  bool alive_ = false;
  std::deque<Request> outbox_;

  void fork_zygote(pool_wire::ZygoteLaunch& launch, const int* parent_fds, int parent_fd_count);
  void launch_zygote(const pool_wire::ZygoteLaunch& launch, StartMethod method,
                     const RegionMapping& slot_table);
  // collect_exit(): the zygote ended (watch_fd() readable): reap it, or read its
  // status; the exit code (N, or -signal), or nullopt when it is lost.
  std::optional<int> collect_exit() noexcept;
};

// loaded_object_bases(): the base of each loaded object, by CodeAddress object
// index (src/after_fork/pool_zygote.cpp): a launched zygote relocates the
// owner's code addresses with them (code_in_this_run(), pool_task.hpp).
std::vector<std::uintptr_t> loaded_object_bases();

}  // namespace mp::detail
