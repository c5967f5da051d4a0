// src/redis/link.cpp — Link (see link.hpp).
#include "link.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "mp/errors.hpp"

namespace mp::redis::impl {

// 0.14's sds.h declares its functions without C linkage (hiredis.h includes it outside its
// extern "C"), so C++ would look for mangled names; these name the C symbols themselves.
sds hiredis_sdsempty() __asm__("sdsempty");
void hiredis_sdsfree(sds s) __asm__("sdsfree");

namespace {

// A send buffer larger than this is freed once sent, not kept for the next command.
constexpr std::size_t kKeptSendBuffer = 64 * 1024;

bool starts_with(const std::string& text, std::string_view prefix) { return text.rfind(prefix, 0) == 0; }

// A refusal the server gives while it is busy (loading its data, running a long
// script, a replica without its primary): an outage to wait out, not an answer.
bool is_transient(const std::string& text) {
  for (std::string_view prefix : {"LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN"}) {
    if (starts_with(text, prefix)) return true;
  }
  return false;
}

}  // namespace

void Link::disconnect() noexcept {
  later_sent_ = 0;  // a new connection sends them again
  if (context_ != nullptr) {
    redisFree(context_);  // closes the fd; sends nothing
    context_ = nullptr;
  }
}

void Link::close_after_fork() noexcept {
  if (context_ != nullptr && context_->fd >= 0) {
    ::close(context_->fd);
    context_->fd = -1;
  }
}

void Link::fail(const std::string& what) {
  std::string reason = what;
  if (context_ != nullptr && context_->err != 0 && what.empty()) reason = context_->errstr;
  if (reason.empty()) reason = "the connection failed";
  disconnect();
  throw LinkFailure(reason);
}

bool Link::wait_fd(short events, Deadline deadline) {
  for (;;) {
    pollfd p[2] = {{context_->fd, events, 0}, {interrupt_fd_, POLLIN, 0}};
    int rc = ::poll(p, interrupt_fd_ >= 0 ? 2 : 1, deadline.poll_timeout_ms());
    if (rc > 0) {
      if (interrupt_fd_ >= 0 && (p[1].revents & POLLIN) != 0) fail("interrupted");
      return true;
    }
    if (rc == 0) return false;
    if (errno != EINTR) return false;
  }
}

void Link::connect(Deadline deadline) {
  disconnect();
  // Non-blocking from the start: the connect itself waits in poll(2), bounded by the deadline
  // and the interrupt fd (a blocking connect to a host that drops packets would not be).
  redisContext* context = redisConnectNonBlock(endpoint_->host.c_str(), endpoint_->port);
  if (context == nullptr) throw LinkFailure("cannot allocate a hiredis context");
  if (context->err != 0) {
    std::string reason = context->errstr;
    redisFree(context);
    throw LinkFailure(reason);
  }
  ::fcntl(context->fd, F_SETFD, FD_CLOEXEC);
  context_ = context;
  if (!wait_fd(POLLOUT, deadline)) fail("timed out connecting");
  int error = 0;
  socklen_t length = sizeof error;
  if (::getsockopt(context_->fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0) error = errno;
  if (error != 0) fail(std::string("cannot connect: ") + std::strerror(error));
  set_up(deadline);
}

void Link::set_up(Deadline deadline) {
  std::vector<Command> setup;
  const bool auth = endpoint_->has_credentials();
  if (auth) {
    Command login{"AUTH"};
    if (!endpoint_->user.empty()) login.add(endpoint_->user);
    login.add(endpoint_->password);
    setup.push_back(std::move(login));
  }
  if (endpoint_->db != 0) setup.push_back(Command{"SELECT"}.add(static_cast<long long>(endpoint_->db)));
  setup.push_back(Command{"FUNCTION", "LOAD", kFunctionLibrary});
  auto replies = exchange(setup, deadline);
  const std::string server = "mp::redis: the Redis server " + endpoint_->where();
  std::size_t next = 0;
  auto refuse = [&](auto&& error) {
    disconnect();
    throw error;
  };
  if (auth) {
    const Reply& reply = replies[next++];
    if (is_error(reply)) {
      std::string text = reply_text(reply.get());
      if (is_transient(text)) fail("logging in: " + text);
      std::string who =
          endpoint_->user.empty() ? "the password" : "user \"" + endpoint_->user + "\" and its password";
      refuse(mp::AuthenticationError(server + " refused the url's credentials (" + who + "): " + text));
    }
  }
  auto no_credentials = [&](const std::string& text) {
    refuse(mp::AuthenticationError(server + " requires a login (" + text +
                                   "): give it in the url, redis://[user]:password@host:port"));
  };
  if (endpoint_->db != 0) {
    const Reply& reply = replies[next++];
    if (is_error(reply)) {
      std::string text = reply_text(reply.get());
      if (is_transient(text)) fail("selecting the database: " + text);
      if (starts_with(text, "NOAUTH")) no_credentials(text);
      refuse(mp::ValueError(server + " refused database " + std::to_string(endpoint_->db) +
                            " of the url: " + text));
    }
  }
  const Reply& loaded = replies[next++];
  if (is_error(loaded)) {
    std::string text = reply_text(loaded.get());
    if (text.find("already exists") != std::string::npos) return;
    if (starts_with(text, "NOPERM")) return;  // an ACL without FUNCTION: the library must be loaded already
    if (is_transient(text)) fail("loading mp's functions: " + text);
    if (starts_with(text, "NOAUTH")) no_credentials(text);
    refuse(mp::Error(server + " did not load mp's Lua functions (mp needs Redis 7.0 or later): " + text));
  }
}

void Link::send(const Command& command, Deadline deadline) {
  if (!connected()) connect(deadline);
  append(command);
  flush(deadline);
}

Reply Link::receive(Deadline deadline) {
  if (!connected()) fail("not connected");
  for (;;) {
    void* raw = nullptr;
    if (redisGetReplyFromReader(context_, &raw) != REDIS_OK) fail("");
    if (raw != nullptr) return Reply(static_cast<redisReply*>(raw));
    if (!wait_fd(POLLIN, deadline)) return nullptr;
    if (redisBufferRead(context_) != REDIS_OK) fail("");
  }
}

void Link::append(const Command& command) {
  const auto& args = command.args();
  std::vector<const char*> argv(args.size());
  std::vector<std::size_t> argvlen(args.size());
  for (std::size_t i = 0; i < args.size(); ++i) {
    argv[i] = args[i].data();
    argvlen[i] = args[i].size();
  }
  if (redisAppendCommandArgv(context_, static_cast<int>(args.size()), argv.data(), argvlen.data()) !=
      REDIS_OK) {
    fail("");
  }
}

std::vector<Reply> Link::exchange(std::span<const Command> commands, Deadline deadline) {
  for (const auto& command : commands) append(command);
  flush(deadline);
  std::vector<Reply> replies;
  replies.reserve(commands.size());
  while (replies.size() < commands.size()) {
    Reply reply = receive(deadline);
    if (!reply) fail("no reply from the server in time");
    replies.push_back(std::move(reply));
  }
  return replies;
}

std::vector<Reply> Link::run(std::span<const Command> commands, Deadline deadline) {
  if (!connected()) connect(deadline);
  if (later_.empty()) return exchange(commands, deadline);
  // First what run_later still owes: sent again if the connection is new.
  for (std::size_t i = later_sent_; i < later_.size(); ++i) append(later_[i]);
  later_sent_ = later_.size();
  for (const auto& command : commands) append(command);
  flush(deadline);
  while (!later_.empty()) {
    Reply reply = receive(deadline);
    if (!reply) fail("no reply from the server in time");
    if (is_error(reply) && later_error_.empty()) later_error_ = reply_text(reply.get());
    later_.erase(later_.begin());
    --later_sent_;
  }
  std::vector<Reply> replies;
  replies.reserve(commands.size());
  while (replies.size() < commands.size()) {
    Reply reply = receive(deadline);
    if (!reply) fail("no reply from the server in time");
    replies.push_back(std::move(reply));
  }
  return replies;
}

void Link::run_later(const Command& command, Deadline deadline, Push push) {
  if (!connected()) connect(deadline);
  later_.push_back(command);
  for (std::size_t i = later_sent_; i < later_.size(); ++i) append(later_[i]);
  later_sent_ = later_.size();
  flush(deadline, push == Push::with_next);
}

void Link::flush(Deadline deadline, bool more) {
  // What hiredis's redisBufferWrite does, with send(2) instead of write(2): MSG_NOSIGNAL, so a
  // connection the server closed is an EPIPE (a LinkFailure, reconnected), never a SIGPIPE
  // that kills the process; and MSG_MORE when asked (see Push::with_next).
  const int flags = MSG_NOSIGNAL | (more ? MSG_MORE : 0);
  sds& out = context_->obuf;
  while (sdslen(out) > 0) {
    ssize_t n = ::send(context_->fd, out, sdslen(out), flags);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        if (!wait_fd(POLLOUT, deadline)) fail("timed out sending to the server");
        continue;
      }
      fail(std::string("sending to the server: ") + std::strerror(errno));
    }
    // Drop what went out (sdsrange by hand: see hiredis_sdsfree).
    const std::size_t left = sdslen(out) - static_cast<std::size_t>(n);
    std::memmove(out, out + n, left);
    sdssetlen(out, left);
    out[left] = '\0';
  }
  if (sdsalloc(out) > kKeptSendBuffer) {  // as hiredis does: a big command's buffer is not kept
    hiredis_sdsfree(out);
    out = hiredis_sdsempty();
    if (out == nullptr) fail("out of memory");
  }
}

bool Link::settle(Deadline deadline) noexcept {
  if (later_.empty()) return true;
  try {
    (void)run({}, deadline);
    return true;
  } catch (...) {
    return false;
  }
}

Reply Link::run1(const Command& command, Deadline deadline) {
  auto replies = run(std::span<const Command>(&command, 1), deadline);
  return std::move(replies.front());
}

}  // namespace mp::redis::impl
