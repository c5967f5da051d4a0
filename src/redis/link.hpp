// src/redis/link.hpp — one connection to a Redis server, with deadlines (private to libmp_redis).
//
// A Link wraps a hiredis 0.14 redisContext. hiredis stays in src/redis/: no
// public header includes it.
//
// Every exchange is bounded by a Deadline: the socket is switched to
// non-blocking mode after connect, and every write and read waits in poll(2)
// for at most the time left (REDIS.md §3: never put SO_RCVTIMEO on a socket
// that carries BLMOVE/BLPOP/SUBSCRIBE; a context whose read timed out is dead).
// A failure of the link itself (refused, reset, EOF, deadline passed with the
// reply outstanding) throws LinkFailure and leaves the Link disconnected; the
// caller decides whether to reconnect (Session::call in session.hpp) or to give
// up with mp::ConnectionError. An error *reply* from the server is not a link
// failure: it comes back as a Reply of type REDIS_REPLY_ERROR.
//
// Safety: a Link is used by one thread at a time (hiredis contexts are not
// thread-safe). Lifetime: a Link belongs to the process that connected it; a
// forked child must not talk over its parent's socket, so the child only
// closes its copy (LinkPool::abandon_after_fork).
#pragma once

#include <hiredis/hiredis.h>
#include <sys/types.h>

#include <cstddef>
#include <memory>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mp/detail/clock.hpp"

namespace mp::redis::impl {

using mp::detail::Deadline;

// Where a server is: parsed from "redis://host[:port][/db]".
struct Endpoint {
  std::string url;
  std::string host;
  int port = 6379;
  int db = 0;
};

// parse_url(url): the endpoint, or mp::ValueError naming the url and what is wrong.
Endpoint parse_url(std::string_view url);

// The link to the server failed (not a command): reason says why.
class LinkFailure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ReplyFree {
  void operator()(redisReply* reply) const noexcept { freeReplyObject(reply); }
};
using Reply = std::unique_ptr<redisReply, ReplyFree>;

// One command: its arguments, binary safe.
class Command {
 public:
  Command() = default;
  Command(std::initializer_list<std::string_view> args) {
    for (auto a : args) add(a);
  }
  Command& add(std::string_view arg) {
    args_.emplace_back(arg);
    return *this;
  }
  Command& add(std::span<const std::byte> bytes) {
    args_.emplace_back(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    return *this;
  }
  Command& add(long long number) {
    args_.push_back(std::to_string(number));
    return *this;
  }
  [[nodiscard]] const std::vector<std::string>& args() const noexcept { return args_; }

 private:
  std::vector<std::string> args_;
};

class Link {
 public:
  explicit Link(const Endpoint& endpoint) : endpoint_(&endpoint) {}
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;
  ~Link() {
    if (!later_.empty()) (void)settle(Deadline::after(std::chrono::seconds(1)));
    disconnect();
  }

  // Link::connect(deadline): connects, selects the db, loads the function
  // library. LinkFailure when the server cannot be reached before deadline.
  void connect(Deadline deadline);
  [[nodiscard]] bool connected() const noexcept { return context_ != nullptr; }
  void disconnect() noexcept;
  [[nodiscard]] int fd() const noexcept { return context_ != nullptr ? context_->fd : -1; }

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
  void run_later(const Command& command, Deadline deadline);
  // Link::settle(deadline): reads the replies run_later still owes; false if it could not.
  bool settle(Deadline deadline) noexcept;
  // Link::take_later_error(): the error reply of a run_later command, once ("" if none).
  std::string take_later_error() { return std::exchange(later_error_, {}); }

  // Link::send(command, deadline) and Link::receive(deadline): the two halves,
  // for SUBSCRIBE. receive returns nullptr when the deadline passed with no
  // complete reply; the link stays usable (a partial reply stays buffered).
  void send(const Command& command, Deadline deadline);
  Reply receive(Deadline deadline);

 private:
  [[noreturn]] void fail(const std::string& what);
  void append(const Command& command);
  std::vector<Reply> exchange(std::span<const Command> commands, Deadline deadline);
  void flush(Deadline deadline);
  bool wait_fd(short events, Deadline deadline);

  const Endpoint* endpoint_;
  redisContext* context_ = nullptr;
  std::vector<Command> later_;  // run_later commands whose replies are not read yet
  std::size_t later_sent_ = 0;  // how many of later_ went out on the current connection
  std::string later_error_;
};

// A handful of idle links for one process; a thread takes one for a call
// and gives it back, so blocking calls from several threads never share a socket.
class LinkPool {
 public:
  explicit LinkPool(Endpoint endpoint) : endpoint_(std::move(endpoint)) {}
  LinkPool(const LinkPool&) = delete;
  LinkPool& operator=(const LinkPool&) = delete;

  class Lease {
   public:
    Lease(LinkPool* pool, std::unique_ptr<Link> link) : pool_(pool), link_(std::move(link)) {}
    Lease(Lease&&) noexcept = default;
    Lease& operator=(Lease&&) = delete;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() {
      if (link_) pool_->give_back(std::move(link_));
    }
    Link* operator->() const noexcept { return link_.get(); }
    Link& operator*() const noexcept { return *link_; }

   private:
    LinkPool* pool_;
    std::unique_ptr<Link> link_;
  };

  // LinkPool::take(): an idle link (maybe not connected), or a new one.
  Lease take();
  // LinkPool::close_after_fork(): in a child that abandons this pool: closes the child's
  // copies of the idle sockets (the parent's connections are untouched), sends nothing.
  void close_after_fork() noexcept;
  // LinkPool::settle_all(deadline): every idle link reads what its run_later commands owe.
  void settle_all(Deadline deadline) noexcept;
  [[nodiscard]] const Endpoint& endpoint() const noexcept { return endpoint_; }

 private:
  void give_back(std::unique_ptr<Link> link);

  Endpoint endpoint_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<Link>> idle_;  // guarded by mutex_
};

// Reply helpers.
[[nodiscard]] bool is_error(const Reply& reply) noexcept;
[[nodiscard]] std::string reply_text(const redisReply* reply);
// throw_if_error(reply, what): mp::ValueError for WRONGTYPE (a key holds
// another Redis type), mp::Error for any other error reply.
void throw_if_error(const Reply& reply, std::string_view what);

// The Lua library (Redis 7 Functions) every Link loads on connect.
extern const char* const kFunctionLibrary;
extern const char* const kLibraryName;

// A random hex string of 2*bytes characters (from getrandom).
std::string random_hex(std::size_t bytes);

}  // namespace mp::redis::impl
