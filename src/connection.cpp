// src/connection.cpp — the I/O behind mp::Connection<T>: framing, partial
// reads and writes, EINTR, EPIPE without SIGPIPE, poll with a deadline.
//
// Below the ConnectionCore members, helpers are noexcept and return an
// outcome; the members turn outcomes into mp:: exceptions whose messages name
// the call, the connection and the reason.
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "mp/detail/connection_core.hpp"
#include "mp/detail/fd.hpp"
#include "mp/detail/system_error.hpp"
#include "mp/errors.hpp"

namespace mp::detail {
namespace {

// A length above this cannot come from a sender (no machine has that much
// memory); it means the stream is not mp's framing (corrupted or foreign).
constexpr std::uint64_t max_plausible_length = std::uint64_t{1} << 47;

// The first buffer allocated for a message; larger messages grow as their
// bytes actually arrive, so a corrupted header cannot make us allocate a
// huge buffer up front.
constexpr std::size_t first_chunk_limit = std::size_t{64} << 20;

std::string object_name(int fd) { return "connection fd " + std::to_string(fd); }

void store_length(std::byte* out, std::uint64_t length) noexcept {
  for (std::size_t i = 0; i < frame_header_size; ++i)
    out[i] = static_cast<std::byte>((length >> (8 * i)) & 0xffU);
}

std::uint64_t load_length(const std::byte* in) noexcept {
  std::uint64_t length = 0;
  for (std::size_t i = 0; i < frame_header_size; ++i) length |= static_cast<std::uint64_t>(in[i]) << (8 * i);
  return length;
}

// Writes every byte of iov[0..count) (partial writes and EINTR handled).
// Returns 0 or the errno that stopped it.
int write_all(int fd, iovec* iov, int count, bool is_socket) noexcept {
  while (count > 0) {
    ssize_t written;
    if (is_socket) {
      msghdr message{};
      message.msg_iov = iov;
      message.msg_iovlen = static_cast<std::size_t>(count);
      written = ::sendmsg(fd, &message, MSG_NOSIGNAL);
    } else {
      written = ::writev(fd, iov, count);
    }
    if (written < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    auto left = static_cast<std::size_t>(written);
    while (count > 0 && left >= iov->iov_len) {
      left -= iov->iov_len;
      ++iov;
      --count;
    }
    if (count > 0) {
      iov->iov_base = static_cast<char*>(iov->iov_base) + left;
      iov->iov_len -= left;
    }
  }
  return 0;
}

// Blocks SIGPIPE in the calling thread for the duration of a pipe write, so a
// write to a pipe whose reader is gone fails with EPIPE instead of killing the
// process (sockets use MSG_NOSIGNAL instead). If the write raised SIGPIPE and
// the thread did not block it before, the pending signal is consumed, so the
// user's disposition never sees it.
class SigpipeBlocker {
 public:
  SigpipeBlocker() noexcept {
    sigset_t pipe_only;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_only, &previous_);
  }
  SigpipeBlocker(const SigpipeBlocker&) = delete;
  SigpipeBlocker& operator=(const SigpipeBlocker&) = delete;
  ~SigpipeBlocker() {
    if (raised_ && sigismember(&previous_, SIGPIPE) == 0) {
      sigset_t pipe_only;
      sigemptyset(&pipe_only);
      sigaddset(&pipe_only, SIGPIPE);
      timespec no_wait{0, 0};
      while (::sigtimedwait(&pipe_only, nullptr, &no_wait) < 0 && errno == EINTR) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
  }
  void note_epipe() noexcept { raised_ = true; }

 private:
  sigset_t previous_{};
  bool raised_ = false;
};

struct ReadOutcome {
  std::size_t got = 0;  // bytes read into the buffer
  int error = 0;        // errno that stopped it, 0 when complete or at EOF
  bool eof = false;     // the peer closed before `size` bytes came
};

// Reads exactly `size` bytes unless EOF or an error comes first.
ReadOutcome read_exact(int fd, std::byte* buffer, std::size_t size) noexcept {
  ReadOutcome outcome;
  while (outcome.got < size) {
    ssize_t n = ::read(fd, buffer + outcome.got, size - outcome.got);
    if (n > 0) {
      outcome.got += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    // n == 0 is EOF; so is ECONNRESET (an AF_UNIX peer gone with data unread).
    if (n == 0 || errno == ECONNRESET) {
      outcome.eof = true;
    } else {
      outcome.error = errno;
    }
    return outcome;
  }
  return outcome;
}

// How long a socket receive spins (non-blocking reads, yielding the CPU in
// between) before it sleeps in the kernel: MP_PIPE_SPIN_US microseconds, 0
// (off) by default. Spinning can save the kernel wake-up on an idle machine,
// but on a loaded one sched_yield() can hand the CPU away for a whole
// scheduler tick: measured on the 2-core VM while a build ran, a round trip
// took 3.5 ms with a 30 us spin and 13 us without. So it is opt-in.
std::chrono::nanoseconds spin_budget() noexcept {
  static const std::chrono::nanoseconds budget = [] {
    const char* text = std::getenv("MP_PIPE_SPIN_US");
    long micros = text != nullptr ? std::strtol(text, nullptr, 10) : 0;
    return std::chrono::nanoseconds(std::max(micros, 0L) * 1000);
  }();
  return budget;
}

// Reads a frame header. On a socket it first spins (see spin_budget()) with
// recv(MSG_DONTWAIT), which makes the read non-blocking for this call only:
// the fd itself stays blocking for every process sharing it.
ReadOutcome read_header(int fd, std::byte* header, bool is_socket) noexcept {
  ReadOutcome outcome;
  if (is_socket) {
    const auto budget = spin_budget();
    const auto give_up = std::chrono::steady_clock::now() + budget;
    const bool spinning = budget.count() > 0;
    for (;;) {
      ssize_t n = ::recv(fd, header, frame_header_size, MSG_DONTWAIT);
      if (n > 0) {
        outcome.got = static_cast<std::size_t>(n);
        break;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        if (!spinning || std::chrono::steady_clock::now() >= give_up) break;
        ::sched_yield();
        continue;
      }
      if (n == 0 || errno == ECONNRESET) {
        outcome.eof = true;
      } else {
        outcome.error = errno;
      }
      return outcome;
    }
  }
  ReadOutcome rest = read_exact(fd, header + outcome.got, frame_header_size - outcome.got);
  rest.got += outcome.got;
  return rest;
}

}  // namespace

ConnectionCore::~ConnectionCore() { close(); }

void ConnectionCore::close() noexcept {
  int fd = fd_.exchange(-1, std::memory_order_relaxed);  // relaxed: see fd_ (no ordering needed)
  if (fd >= 0) ::close(fd);  // once, never retried on EINTR (Linux frees it anyway)
}

int ConnectionCore::fileno() const {
  int fd = fd_.load(std::memory_order_relaxed);  // relaxed: see fd_
  if (fd < 0) throw ValueError("fileno(): connection is closed");
  return fd;
}

int ConnectionCore::usable_fd(const char* call, bool for_reading) const {
  int fd = fd_.load(std::memory_order_relaxed);  // relaxed: see fd_
  if (fd < 0) throw ValueError(std::string(call) + "(): connection is closed");
  if (for_reading && !readable()) throw ValueError(std::string(call) + "(): connection is write-only");
  if (!for_reading && !writable()) throw ValueError(std::string(call) + "(): connection is read-only");
  return fd;
}

void ConnectionCore::write_frame(int fd, std::span<const std::byte> header,
                                 std::span<const std::byte> payload, const char* call) {
  std::array<iovec, 2> iov{};
  int count = 0;
  // iovec wants non-const pointers; the kernel only reads from them.
  if (!header.empty()) iov[count++] = {const_cast<std::byte*>(header.data()), header.size()};
  if (!payload.empty()) iov[count++] = {const_cast<std::byte*>(payload.data()), payload.size()};
  int error;
  if (kind_ == Kind::socket) {
    error = write_all(fd, iov.data(), count, true);
  } else {
    SigpipeBlocker blocker;
    error = write_all(fd, iov.data(), count, false);
    if (error == EPIPE) blocker.note_epipe();
  }
  if (error == 0) return;
  if (error == EPIPE || error == ECONNRESET)
    throw ConnectionError(system_message(call, object_name(fd), error) +
                          ": the other end of the connection was closed");
  throw_system_error(call, object_name(fd), error);
}

void ConnectionCore::send_bytes(std::span<const std::byte> payload, const char* call) {
  int fd = usable_fd(call, false);
  std::array<std::byte, frame_header_size> header{};
  store_length(header.data(), payload.size());
  write_frame(fd, header, payload, call);
}

void ConnectionCore::send_frame(std::span<std::byte> frame, const char* call) {
  int fd = usable_fd(call, false);
  store_length(frame.data(), frame.size() - frame_header_size);
  write_frame(fd, frame, {}, call);
}

std::vector<std::byte> ConnectionCore::recv_bytes(const char* call) {
  int fd = usable_fd(call, true);
  std::array<std::byte, frame_header_size> header{};
  ReadOutcome head = read_header(fd, header.data(), kind_ == Kind::socket);
  if (head.error != 0) throw_system_error(call, object_name(fd), head.error);
  if (head.eof) {
    if (head.got == 0)
      throw EOFError(std::string(call) + "(" + object_name(fd) +
                     "): the other end of the connection was closed and every message was read");
    throw EOFError(std::string(call) + "(" + object_name(fd) +
                   "): the other end closed in the middle of a message header (" + std::to_string(head.got) +
                   " of " + std::to_string(frame_header_size) + " bytes): the message was truncated");
  }
  std::uint64_t length = load_length(header.data());
  if (length > max_plausible_length)
    throw CodecError(std::string(call) + "(" + object_name(fd) + "): message length " +
                     std::to_string(length) +
                     " is implausible: the stream is corrupted or was not written by mp::Connection");

  auto total = static_cast<std::size_t>(length);
  std::vector<std::byte> payload(std::min(total, first_chunk_limit));
  std::size_t received = 0;
  while (received < total) {
    if (received == payload.size()) payload.resize(std::min(total, payload.size() * 2));
    ReadOutcome body = read_exact(fd, payload.data() + received, payload.size() - received);
    received += body.got;
    if (body.error != 0) throw_system_error(call, object_name(fd), body.error);
    if (body.eof)
      throw EOFError(std::string(call) + "(" + object_name(fd) +
                     "): the other end closed in the middle of a " + std::to_string(total) +
                     "-byte message (" + std::to_string(received) +
                     " bytes came): the message was truncated");
  }
  return payload;
}

bool ConnectionCore::poll(Deadline deadline) {
  int fd = usable_fd("poll", true);
  pollfd entry{fd, POLLIN, 0};
  for (;;) {
    int ready = ::poll(&entry, 1, deadline.poll_timeout_ms());
    if (ready > 0) {
      // POLLNVAL cannot happen while we hold the fd; POLLHUP/POLLERR mean EOF,
      // which recv reports without blocking.
      return true;
    }
    if (ready == 0) {
      // poll's timeout is rounded up to whole milliseconds, so 0 means the
      // deadline passed; a wait without deadline never returns 0.
      if (deadline.expired()) return false;
      continue;
    }
    if (errno != EINTR) throw_system_error("poll", object_name(fd), errno);
  }
}

std::pair<std::shared_ptr<ConnectionCore>, std::shared_ptr<ConnectionCore>> make_connection_pair(
    bool duplex) {
  std::array<int, 2> fds{-1, -1};
  if (duplex) {
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds.data()) != 0)
      throw_system_error("socketpair", "Pipe(duplex=true)", errno);
  } else {
    if (::pipe2(fds.data(), O_CLOEXEC) != 0) throw_system_error("pipe2", "Pipe(duplex=false)", errno);
  }
  // Own the fds before allocating, so a bad_alloc cannot leak them.
  UniqueFd first(fds[0]);
  UniqueFd second(fds[1]);
  auto first_kind = duplex ? ConnectionCore::Kind::socket : ConnectionCore::Kind::pipe_read_end;
  auto second_kind = duplex ? ConnectionCore::Kind::socket : ConnectionCore::Kind::pipe_write_end;
  auto first_core = std::make_shared<ConnectionCore>(first.get(), first_kind);
  (void)first.release();
  auto second_core = std::make_shared<ConnectionCore>(second.get(), second_kind);
  (void)second.release();
  return {std::move(first_core), std::move(second_core)};
}

}  // namespace mp::detail
