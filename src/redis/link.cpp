// src/redis/link.cpp — Link, LinkPool, url parsing (see link.hpp).
#include "link.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "mp/errors.hpp"

namespace mp::redis::impl {

namespace {

bool parse_int(std::string_view text, int& out) {
  if (text.empty()) return false;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc{} && ptr == text.data() + text.size();
}

[[noreturn]] void bad_url(std::string_view url, std::string_view why) {
  throw mp::ValueError("mp::redis: malformed url \"" + std::string(url) + "\": " + std::string(why) +
                       " (expected redis://host:port[/db])");
}

}  // namespace

Endpoint parse_url(std::string_view url) {
  constexpr std::string_view scheme = "redis://";
  if (url.substr(0, scheme.size()) != scheme) bad_url(url, "it must start with redis://");
  std::string_view rest = url.substr(scheme.size());
  Endpoint endpoint;
  endpoint.url = std::string(url);
  if (rest.find('@') != std::string_view::npos) bad_url(url, "user and password are not supported");
  std::string_view authority = rest;
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    authority = rest.substr(0, slash);
    std::string_view db = rest.substr(slash + 1);
    if (!db.empty() && (!parse_int(db, endpoint.db) || endpoint.db < 0)) {
      bad_url(url, "the database must be a number >= 0");
    }
  }
  std::string_view host = authority;
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {  // [ipv6]:port
    auto close = authority.find(']');
    if (close == std::string_view::npos) bad_url(url, "unclosed [ in the host");
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') bad_url(url, "expected :port after ]");
      port = after.substr(1);
      if (port.empty()) bad_url(url, "empty port");
    }
  } else if (auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
    if (port.empty()) bad_url(url, "empty port");
  }
  if (host.empty()) bad_url(url, "no host");
  if (host.find_first_of(" \t\r\n?#") != std::string_view::npos)
    bad_url(url, "invalid character in the host");
  if (!port.empty() && (!parse_int(port, endpoint.port) || endpoint.port < 1 || endpoint.port > 65535)) {
    bad_url(url, "the port must be a number in 1..65535");
  }
  endpoint.host = std::string(host);
  return endpoint;
}

std::string random_hex(std::size_t bytes) {
  std::vector<unsigned char> raw(bytes);
  std::size_t got = 0;
  while (got < bytes) {
    ssize_t n = ::getrandom(raw.data() + got, bytes - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw mp::Error(std::string("getrandom(redis token): ") + std::strerror(errno));
    }
    got += static_cast<std::size_t>(n);
  }
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes * 2);
  for (unsigned char c : raw) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

bool is_error(const Reply& reply) noexcept { return reply && reply->type == REDIS_REPLY_ERROR; }

std::string reply_text(const redisReply* reply) {
  if (reply == nullptr) return {};
  switch (reply->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR: return std::string(reply->str, reply->len);
    case REDIS_REPLY_INTEGER: return std::to_string(reply->integer);
    default: return {};
  }
}

void throw_if_error(const Reply& reply, std::string_view what) {
  if (!is_error(reply)) return;
  std::string text = reply_text(reply.get());
  if (text.rfind("WRONGTYPE", 0) == 0) {
    throw mp::ValueError(std::string(what) + ": a key of this name holds another kind of Redis value (" +
                         text + "); pick another name or delete the key");
  }
  throw mp::Error(std::string(what) + ": the server answered: " + text);
}

// ---- Link ---------------------------------------------------------------------

void Link::disconnect() noexcept {
  later_sent_ = 0;  // a new connection sends them again
  if (context_ != nullptr) {
    redisFree(context_);  // closes the fd; sends nothing
    context_ = nullptr;
  }
}

void Link::fail(const std::string& what) {
  std::string reason = what;
  if (context_ != nullptr && context_->err != 0 && what.empty()) reason = context_->errstr;
  disconnect();
  throw LinkFailure(reason);
}

bool Link::wait_fd(short events, Deadline deadline) {
  for (;;) {
    pollfd p{context_->fd, events, 0};
    int rc = ::poll(&p, 1, deadline.poll_timeout_ms());
    if (rc > 0) return true;
    if (rc == 0) return false;
    if (errno != EINTR) return false;
  }
}

void Link::connect(Deadline deadline) {
  disconnect();
  auto left = deadline.remaining();
  if (left > std::chrono::seconds(5)) left = std::chrono::seconds(5);
  if (left <= std::chrono::milliseconds(1)) left = std::chrono::milliseconds(1);
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(left).count();
  timeval tv{static_cast<time_t>(us / 1000000), static_cast<suseconds_t>(us % 1000000)};
  redisContext* context = redisConnectWithTimeout(endpoint_->host.c_str(), endpoint_->port, tv);
  if (context == nullptr) throw LinkFailure("cannot allocate a hiredis context");
  if (context->err != 0) {
    std::string reason = context->errstr;
    redisFree(context);
    throw LinkFailure(reason);
  }
  // Non-blocking from here on: every wait is a poll(2) bounded by a deadline.
  int flags = ::fcntl(context->fd, F_GETFL);
  ::fcntl(context->fd, F_SETFL, flags | O_NONBLOCK);
  ::fcntl(context->fd, F_SETFD, FD_CLOEXEC);
  context->flags &= ~REDIS_BLOCK;
  context_ = context;
  std::vector<Command> setup;
  if (endpoint_->db != 0) setup.push_back(Command{"SELECT"}.add(static_cast<long long>(endpoint_->db)));
  setup.push_back(Command{"FUNCTION", "LOAD", kFunctionLibrary});
  auto replies = exchange(setup, deadline);
  for (auto& reply : replies) {
    if (!is_error(reply)) continue;
    std::string text = reply_text(reply.get());
    if (text.find("already exists") != std::string::npos) continue;
    disconnect();
    throw LinkFailure("setting up the connection failed: " + text);
  }
}

void Link::flush(Deadline deadline) {
  int done = 0;
  while (done == 0) {
    if (redisBufferWrite(context_, &done) != REDIS_OK) fail("");
    if (done == 0 && !wait_fd(POLLOUT, deadline)) fail("timed out sending to the server");
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

void Link::run_later(const Command& command, Deadline deadline) {
  if (!connected()) connect(deadline);
  later_.push_back(command);
  for (std::size_t i = later_sent_; i < later_.size(); ++i) append(later_[i]);
  later_sent_ = later_.size();
  flush(deadline);
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

// ---- LinkPool -----------------------------------------------------------------

LinkPool::Lease LinkPool::take() {
  {
    std::lock_guard lock(mutex_);
    if (!idle_.empty()) {
      auto link = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(link));
    }
  }
  return Lease(this, std::make_unique<Link>(endpoint_));
}

void LinkPool::close_after_fork() noexcept {
  std::unique_lock lock(mutex_, std::try_to_lock);  // a parent thread may have held it at fork
  if (!lock.owns_lock()) return;
  for (auto& link : idle_) {
    if (link->fd() >= 0) ::close(link->fd());
  }
}

void LinkPool::settle_all(Deadline deadline) noexcept {
  std::lock_guard lock(mutex_);
  for (auto& link : idle_) (void)link->settle(deadline);
}

void LinkPool::give_back(std::unique_ptr<Link> link) {
  std::lock_guard lock(mutex_);
  if (idle_.size() < 8) idle_.push_back(std::move(link));
}

}  // namespace mp::redis::impl
