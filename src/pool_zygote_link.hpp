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
// Safety: one ZygoteLink per pool, used by the supervisor thread only (the
// constructor and start() run before or on it). Nothing here takes the pool's
// mutex. Lifetime: the zygote is started by start() and gone after
// shutdown_and_reap() or reap_dead(); the destructor closes what is left.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <string>

#include "mp/detail/fd.hpp"
#include "pool_wire.hpp"

namespace mp::detail {

class ZygoteLink {
 public:
  // ZygoteLink(control_buffer): makes the control socket pair; SO_SNDBUF of
  // both ends when control_buffer > 0 (tests). Throws mp::Error if the system refuses.
  explicit ZygoteLink(int control_buffer);

  // ZygoteLink::start(launch): forks the zygote, which runs
  // pool_wire::zygote_main(launch); returns 0 or the errno of fork/pidfd_open.
  // The launch's control_fd is filled in here.
  [[nodiscard]] int start(pool_wire::ZygoteLaunch& launch, const int* parent_fds,
                          int parent_fd_count) noexcept;

  [[nodiscard]] bool alive() const noexcept { return alive_; }
  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  [[nodiscard]] int control_fd() const noexcept { return control_.get(); }
  [[nodiscard]] int pidfd() const noexcept { return pidfd_.get(); }

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

  // ZygoteLink::reap_dead(): the zygote's pidfd became readable (someone
  // killed it): reaps it and says how it died.
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
  pid_t pid_ = 0;
  bool alive_ = false;
  std::deque<Request> outbox_;
};

}  // namespace mp::detail
