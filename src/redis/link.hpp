// src/redis/link.hpp — one connection to a Redis server, with deadlines (private to libmp_redis).
//
// A Link wraps a hiredis 0.14 redisContext. hiredis stays in src/redis/: no
// public header includes it.
//
// Every exchange is bounded by a Deadline: the connect is non-blocking, and
// every connect, write and read waits in poll(2) for at most the time left
// (REDIS.md §3: never put SO_RCVTIMEO on a socket that carries
// BLMOVE/BLPOP/SUBSCRIBE; a context whose read timed out is dead). A Link may
// also be given an interrupt fd (an eventfd): once it is readable, every wait
// fails at once, so a background thread can be stopped mid-exchange.
//
// Errors: a failure of the link itself (refused, reset, EOF, deadline passed
// with the reply outstanding, interrupted) throws LinkFailure and leaves the
// Link disconnected; the caller decides whether to reconnect (Retry in
// retry.hpp) or to give up with mp::ConnectionError. What the server refuses
// while the connection is set up is not an outage and is never retried:
// mp::AuthenticationError for refused credentials (or none given to a server
// that wants them), mp::ValueError for a database it refuses. An error *reply*
// to a command comes back as a Reply of type REDIS_REPLY_ERROR.
//
// Setup on every connect and reconnect: AUTH (if the url has credentials),
// SELECT (if db != 0), FUNCTION LOAD of mp's Lua library ("already exists" is
// fine; NOPERM is tolerated so that an ACL may forbid FUNCTION once an
// administrator loaded the library).
//
// Safety: a Link is used by one thread at a time (hiredis contexts are not
// thread-safe). Lifetime: a Link belongs to the process that connected it; a
// forked child must not talk over its parent's socket, so the child only
// closes its copy (close_after_fork).
#pragma once

#include <hiredis/hiredis.h>

#include <cstddef>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "command.hpp"
#include "endpoint.hpp"
#include "mp/detail/clock.hpp"
#include "reply.hpp"

namespace mp::redis::impl {

using mp::detail::Deadline;

// The link to the server failed (not a command): reason says why.
class LinkFailure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Link {
 public:
  explicit Link(const Endpoint& endpoint) : endpoint_(&endpoint) {}
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;
  ~Link() { disconnect(); }

  // Link::connect(deadline): connects and sets the connection up (see above).
  // LinkFailure when the server cannot be reached before deadline;
  // AuthenticationError / ValueError when it refuses the url's credentials / db.
  void connect(Deadline deadline);
  [[nodiscard]] bool connected() const noexcept { return context_ != nullptr; }
  void disconnect() noexcept;
  [[nodiscard]] int fd() const noexcept { return context_ != nullptr ? context_->fd : -1; }
  // Link::close_after_fork(): in a child: closes this process's copy of the socket, sends nothing.
  void close_after_fork() noexcept;
  // Link::set_interrupt(fd): once fd is readable every wait fails with LinkFailure("interrupted").
  void set_interrupt(int fd) noexcept { interrupt_fd_ = fd; }

  // Link::run(commands, deadline): sends the commands as one pipeline and
  // returns one reply per command. Connects first if needed. LinkFailure when
  // the link fails or the deadline passes before every reply came; the link is
  // then disconnected (its state is unknown).
  std::vector<Reply> run(std::span<const Command> commands, Deadline deadline);
  Reply run1(const Command& command, Deadline deadline);

  // Link::run_later(command, deadline): sends command now and returns without
  // waiting for its reply, which the next run() (or settle()) reads. The server
  // applies it as soon as it arrives; only the client's wait is saved. The
  // command must be safe to apply twice: if the link fails before its reply was
  // read, the next run() sends it again after reconnecting.
  //
  // push: Push::now sends it at once. Push::with_next lets the kernel hold it (MSG_MORE) until
  // the next command on this link is sent, or for at most about 200 ms (Linux's cork limit), so
  // that it and the next command reach the server in one segment: one read and one reply
  // write there instead of two. It is applied that much later.
  enum class Push { now, with_next };
  void run_later(const Command& command, Deadline deadline, Push push = Push::now);
  // Link::settle(deadline): reads the replies run_later still owes; false if it could not.
  bool settle(Deadline deadline) noexcept;
  // Link::owes_replies(): run_later commands whose replies are not read yet.
  [[nodiscard]] bool owes_replies() const noexcept { return !later_.empty(); }
  // Link::take_later_error(): the error reply of a run_later command, once ("" if none).
  std::string take_later_error() { return std::exchange(later_error_, {}); }

  // Link::send(command, deadline) and Link::receive(deadline): the two halves,
  // for SUBSCRIBE. receive returns nullptr when the deadline passed with no
  // complete reply; the link stays usable (a partial reply stays buffered).
  void send(const Command& command, Deadline deadline);
  Reply receive(Deadline deadline);

 private:
  [[noreturn]] void fail(const std::string& what);
  void set_up(Deadline deadline);
  void append(const Command& command);
  std::vector<Reply> exchange(std::span<const Command> commands, Deadline deadline);
  // Link::flush(deadline, more): sends what hiredis buffered; more: MSG_MORE (Push::with_next).
  void flush(Deadline deadline, bool more = false);
  bool wait_fd(short events, Deadline deadline);

  const Endpoint* endpoint_;
  redisContext* context_ = nullptr;
  int interrupt_fd_ = -1;
  std::vector<Command> later_;  // run_later commands whose replies are not read yet
  std::size_t later_sent_ = 0;  // how many of later_ went out on the current connection
  std::string later_error_;
};

// The Lua library (Redis 7 Functions) every Link loads on connect (functions.cpp).
extern const char* const kFunctionLibrary;
extern const char* const kLibraryName;

}  // namespace mp::redis::impl
