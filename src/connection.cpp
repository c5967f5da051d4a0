// src/connection.cpp — the fd transport behind mp::Connection<T>
// (StreamConnection, src/stream_connection.hpp): both framings, partial
// reads and writes, EINTR, EPIPE without SIGPIPE, poll with a deadline.
//
// Below the StreamConnection members, helpers are noexcept and return an
// outcome; the members turn outcomes into mp:: exceptions whose messages name
// the call, the connection and the reason.
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

#include "mp/detail/fd.hpp"
#include "mp/detail/system_error.hpp"
#include "mp/errors.hpp"
#include "stream_connection.hpp"
#include "write_all.hpp"

namespace mp::detail {
namespace {

// mp framing: the payload length as a little-endian u64.
constexpr std::size_t mp_header_size = 8;
// Python framing: a big-endian i32; -1 announces a big-endian u64 after it.
constexpr std::size_t python_short_header_size = 4;
constexpr std::size_t python_long_header_size = 12;
constexpr std::uint64_t python_short_limit = 0x7fffffff;

std::string object_name(int fd) { return "connection fd " + std::to_string(fd); }

void store_little_endian(std::byte* out, std::uint64_t value, std::size_t size) noexcept {
  for (std::size_t i = 0; i < size; ++i) out[i] = static_cast<std::byte>((value >> (8 * i)) & 0xffU);
}

void store_big_endian(std::byte* out, std::uint64_t value, std::size_t size) noexcept {
  for (std::size_t i = 0; i < size; ++i)
    out[size - 1 - i] = static_cast<std::byte>((value >> (8 * i)) & 0xffU);
}

std::uint64_t load_little_endian(const std::byte* in, std::size_t size) noexcept {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < size; ++i) value |= static_cast<std::uint64_t>(in[i]) << (8 * i);
  return value;
}

std::uint64_t load_big_endian(const std::byte* in, std::size_t size) noexcept {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < size; ++i) value = (value << 8) | static_cast<std::uint64_t>(in[i]);
  return value;
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
  std::size_t got = 0;     // bytes read into the buffer
  int error = 0;           // errno that stopped it, 0 when complete or at EOF
  bool eof = false;        // the peer closed before `size` bytes came
  bool timed_out = false;  // the deadline passed before `size` bytes came
};

// Waits until fd is readable or the deadline passes; false on timeout. A
// deadline of never returns true at once (the read then blocks).
bool wait_readable(int fd, Deadline deadline, int& error) noexcept {
  if (deadline.is_never()) return true;
  pollfd entry{fd, POLLIN, 0};
  for (;;) {
    int ready = ::poll(&entry, 1, deadline.poll_timeout_ms());
    if (ready > 0) return true;
    if (ready == 0) {
      if (deadline.expired()) return false;
      continue;
    }
    if (errno != EINTR) {
      error = errno;
      return true;
    }
  }
}

// Reads exactly `size` bytes unless EOF, an error or the deadline comes first.
ReadOutcome read_exact(int fd, std::byte* buffer, std::size_t size,
                       Deadline deadline = Deadline::never()) noexcept {
  ReadOutcome outcome;
  while (outcome.got < size) {
    if (!wait_readable(fd, deadline, outcome.error)) {
      outcome.timed_out = true;
      return outcome;
    }
    if (outcome.error != 0) return outcome;
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

}  // namespace

StreamConnection::~StreamConnection() { close(); }

void StreamConnection::close() noexcept {
  int fd = fd_.exchange(-1, std::memory_order_relaxed);  // relaxed: see fd_ (no ordering needed)
  if (fd >= 0) ::close(fd);  // once, never retried on EINTR (Linux frees it anyway)
}

std::string StreamConnection::name() const {
  return object_name(fd_.load(std::memory_order_relaxed));  // relaxed: see fd_
}

int StreamConnection::fileno() const {
  int fd = fd_.load(std::memory_order_relaxed);  // relaxed: see fd_
  if (fd < 0) throw ValueError("fileno(): connection is closed");
  return fd;
}

// What a StreamConnection end sends along with its fd when it travels.
struct StreamTravelMetadata {
  std::uint8_t kind;
  std::uint8_t framing;
  std::uint8_t reserved[6];
  std::uint64_t max_message_size;
  std::uint64_t first_chunk;
};
static_assert(sizeof(StreamTravelMetadata) == 24);

bool StreamConnection::travel(ConnectionTravel& out) const {
  StreamTravelMetadata metadata{};
  metadata.kind = static_cast<std::uint8_t>(kind_);
  metadata.framing = static_cast<std::uint8_t>(framing_);
  metadata.max_message_size = limits_.max_message_size;
  metadata.first_chunk = limits_.first_chunk;
  out.rebuild = &StreamConnection::rebuild;
  out.fds.assign(1, fileno());
  const auto* bytes = reinterpret_cast<const std::byte*>(&metadata);
  out.metadata.assign(bytes, bytes + sizeof metadata);
  return true;
}

std::shared_ptr<ConnectionCore> StreamConnection::rebuild(std::span<UniqueFd> fds,
                                                          std::span<const std::byte> metadata) {
  StreamTravelMetadata m{};
  if (fds.size() != 1 || !fds[0] || metadata.size() != sizeof m)
    throw CodecError("Connection: a travelled stream end needs one fd and " + std::to_string(sizeof m) +
                     " bytes of metadata, got " + std::to_string(fds.size()) + " and " +
                     std::to_string(metadata.size()));
  std::memcpy(&m, metadata.data(), sizeof m);
  if (m.kind > static_cast<std::uint8_t>(Kind::pipe_write_end) ||
      m.framing > static_cast<std::uint8_t>(Framing::python))
    throw CodecError("Connection: a travelled stream end has an unknown kind or framing");
  auto core = std::make_shared<StreamConnection>(fds[0].get(), static_cast<Kind>(m.kind),
                                                 static_cast<Framing>(m.framing),
                                                 StreamLimits{m.max_message_size, m.first_chunk});
  (void)fds[0].release();  // owned by the core from here
  return core;
}

int StreamConnection::usable_fd(const char* call, bool for_reading) const {
  int fd = fd_.load(std::memory_order_relaxed);  // relaxed: see fd_
  if (fd < 0) throw ValueError(std::string(call) + "(): connection is closed");
  if (for_reading && !readable()) throw ValueError(std::string(call) + "(): connection is write-only");
  if (!for_reading && !writable()) throw ValueError(std::string(call) + "(): connection is read-only");
  return fd;
}

void StreamConnection::fail_stream(int fd, const std::string& message) {
  close();
  throw CodecError(message + " (connection fd " + std::to_string(fd) +
                   " was closed: the stream can no longer be trusted)");
}

std::size_t StreamConnection::store_header(std::byte* header_end, std::uint64_t length) const {
  if (framing_ == Framing::mp) {
    store_little_endian(header_end - mp_header_size, length, mp_header_size);
    return mp_header_size;
  }
  if (length <= python_short_limit) {
    store_big_endian(header_end - python_short_header_size, length, python_short_header_size);
    return python_short_header_size;
  }
  std::byte* start = header_end - python_long_header_size;
  store_big_endian(start, 0xffffffffU, python_short_header_size);  // -1 as a big-endian i32
  store_big_endian(start + python_short_header_size, length, 8);
  return python_long_header_size;
}

void StreamConnection::write_all_or_throw(int fd, std::span<const std::byte> header,
                                          std::span<const std::byte> payload, const char* call) {
  std::array<iovec, 2> iov{};
  int count = 0;
  // iovec wants non-const pointers; the kernel only reads from them.
  if (!header.empty()) iov[count++] = {const_cast<std::byte*>(header.data()), header.size()};
  if (!payload.empty()) iov[count++] = {const_cast<std::byte*>(payload.data()), payload.size()};
  int error;
  if (kind_ == Kind::socket) {
    error = write_all(fd, iov.data(), count);
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

void StreamConnection::send_bytes(std::span<const std::byte> payload, const char* call) {
  int fd = usable_fd(call, false);
  std::array<std::byte, frame_reserve> header{};
  std::size_t size = store_header(header.data() + header.size(), payload.size());
  write_all_or_throw(fd, std::span<const std::byte>(header).last(size), payload, call);
}

void StreamConnection::send_frame(std::span<std::byte> frame, const char* call) {
  int fd = usable_fd(call, false);
  std::size_t size = store_header(frame.data() + frame_reserve, frame.size() - frame_reserve);
  write_all_or_throw(fd, frame.subspan(frame_reserve - size), {}, call);
}

std::vector<std::byte> StreamConnection::recv_bytes(const char* call) {
  return recv_message(call, limits_.max_message_size, Deadline::never());
}

std::vector<std::byte> StreamConnection::recv_message(const char* call, std::uint64_t max_size,
                                                      Deadline deadline) {
  int fd = usable_fd(call, true);
  // Built only on the error paths: the normal receive allocates nothing but the payload.
  auto where = [&] { return std::string(call) + "(" + object_name(fd) + ")"; };
  // check(outcome, expected, header): throws what a short read means. A
  // header cut at its first byte is the clean end of the stream.
  auto check = [&](const ReadOutcome& outcome, std::size_t expected, bool header) {
    if (outcome.error == 0 && !outcome.timed_out && !outcome.eof) return;
    if (outcome.error != 0) throw_system_error(call, object_name(fd), outcome.error);
    const std::string part = header ? "message header" : std::to_string(expected) + "-byte message";
    const std::string came =
        header ? std::to_string(outcome.got) + " of " + std::to_string(expected) + " bytes came"
               : std::to_string(outcome.got) + " bytes came";
    if (outcome.timed_out)
      throw TimeoutError(where() + ": the peer sent no complete " + part + " before the deadline (" + came +
                         ")");
    if (header && outcome.got == 0)
      throw EOFError(where() + ": the other end of the connection was closed and every message was read");
    throw EOFError(where() + ": the other end closed in the middle of a " + part + " (" + came +
                   "): the message was truncated");
  };

  std::array<std::byte, python_long_header_size> header{};
  std::uint64_t length = 0;
  if (framing_ == Framing::mp) {
    check(read_exact(fd, header.data(), mp_header_size, deadline), mp_header_size, true);
    length = load_little_endian(header.data(), mp_header_size);
  } else {
    check(read_exact(fd, header.data(), python_short_header_size, deadline), python_short_header_size, true);
    auto short_length = static_cast<std::int32_t>(
        static_cast<std::uint32_t>(load_big_endian(header.data(), python_short_header_size)));
    if (short_length == -1) {
      check(read_exact(fd, header.data() + python_short_header_size, 8, deadline), 8, true);
      length = load_big_endian(header.data() + python_short_header_size, 8);
    } else if (short_length < 0) {
      fail_stream(fd, where() + ": message length " + std::to_string(short_length) +
                          " is negative: the peer does not speak multiprocessing.connection's framing");
    } else {
      length = static_cast<std::uint64_t>(short_length);
    }
  }
  if (length > max_size) {
    if (framing_ == Framing::mp)
      fail_stream(fd, where() + ": message length " + std::to_string(length) +
                          " is implausible: the stream is corrupted or was not written by mp::Connection");
    fail_stream(fd, where() + ": the peer announced a " + std::to_string(length) +
                        "-byte message, more than the " + std::to_string(max_size) +
                        " bytes this connection accepts");
  }

  auto total = static_cast<std::size_t>(length);
  std::vector<std::byte> payload(std::min(total, limits_.first_chunk));
  std::size_t received = 0;
  while (received < total) {
    if (received == payload.size()) payload.resize(std::min(total, payload.size() * 2));
    ReadOutcome body = read_exact(fd, payload.data() + received, payload.size() - received, deadline);
    received += body.got;
    body.got = received;
    check(body, total, false);
  }
  return payload;
}

bool StreamConnection::poll(Deadline deadline) {
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

std::pair<std::shared_ptr<ConnectionCore>, std::shared_ptr<ConnectionCore>> make_stream_connection_pair(
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
  using Kind = StreamConnection::Kind;
  auto first_kind = duplex ? Kind::socket : Kind::pipe_read_end;
  auto second_kind = duplex ? Kind::socket : Kind::pipe_write_end;
  auto first_core = std::make_shared<StreamConnection>(first.get(), first_kind, Framing::mp, pipe_limits);
  (void)first.release();
  auto second_core = std::make_shared<StreamConnection>(second.get(), second_kind, Framing::mp, pipe_limits);
  (void)second.release();
  return {std::move(first_core), std::move(second_core)};
}

}  // namespace mp::detail
