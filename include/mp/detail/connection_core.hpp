// mp/detail/connection_core.hpp — the untyped end of a Pipe: one fd, framed messages.
//
// Every mp::Connection<T> handle holds a shared_ptr to one ConnectionCore; the
// template only encodes and decodes, all I/O is here (src/connection.cpp).
//
// Wire format (one message): an 8-byte little-endian unsigned length N, then N
// payload bytes. N may be 0 (the empty message). Nothing else is ever written,
// so message boundaries are exactly the frames.
//
// Safety: like Python's Connection, one end is meant to be used by one thread
// at a time in each direction: a sender and a receiver may use the same
// duplex end concurrently, but two threads sending (or two receiving) on the
// same end interleave their bytes, and close() must not race another thread's
// call on the same end. The fd number is an atomic only so that such misuse
// is a documented error rather than a data race.
// Visibility: a message is complete in the kernel's buffer before the
// sender's send() returns; what a process wrote to memory before send() is
// not made visible to the receiver (processes do not share that memory).
// Lifetime: the fd is O_CLOEXEC and closed by close() or when the last handle
// in this process drops the core; a forked child holds its own copy of the fd.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "mp/detail/clock.hpp"
#include "mp/detail/export.hpp"

namespace mp::detail {

// The size of a frame header: the payload length as a little-endian u64.
inline constexpr std::size_t frame_header_size = 8;

class MP_API ConnectionCore {
 public:
  enum class Kind : unsigned char { socket, pipe_read_end, pipe_write_end };

  ConnectionCore(int fd, Kind kind) noexcept : fd_(fd), kind_(kind) {}
  ~ConnectionCore();
  ConnectionCore(const ConnectionCore&) = delete;
  ConnectionCore& operator=(const ConnectionCore&) = delete;

  // ConnectionCore::send_bytes(payload): writes one frame (header + payload,
  // one writev). Blocks until all is in the kernel. ValueError when closed or
  // read-only; ConnectionError when the peer closed (EPIPE); mp::Error else.
  void send_bytes(std::span<const std::byte> payload, const char* call);

  // ConnectionCore::send_frame(frame): `frame` already starts with
  // frame_header_size reserved bytes followed by the payload; fills in the
  // header and writes everything with one write. Errors as send_bytes.
  void send_frame(std::span<std::byte> frame, const char* call);

  // ConnectionCore::recv_bytes(): blocks for one whole frame and returns its
  // payload. EOFError when the peer closed at a message boundary, or in the
  // middle of a message (says so); ValueError when closed or write-only.
  [[nodiscard]] std::vector<std::byte> recv_bytes(const char* call);

  // ConnectionCore::poll(deadline): true when the fd is readable or at EOF
  // (recv would not block, or would raise EOFError). ValueError when closed
  // or write-only.
  [[nodiscard]] bool poll(Deadline deadline);

  // ConnectionCore::close(): closes the fd once; later calls do nothing.
  void close() noexcept;

  [[nodiscard]] bool closed() const noexcept { return fd_.load(std::memory_order_relaxed) < 0; }
  [[nodiscard]] bool readable() const noexcept { return kind_ != Kind::pipe_write_end; }
  [[nodiscard]] bool writable() const noexcept { return kind_ != Kind::pipe_read_end; }

  // ConnectionCore::fileno(): the fd; ValueError when closed.
  [[nodiscard]] int fileno() const;

 private:
  int usable_fd(const char* call, bool for_reading) const;
  void write_frame(int fd, std::span<const std::byte> header, std::span<const std::byte> payload,
                   const char* call);

  // The fd, or -1 once closed. Relaxed everywhere: the number itself is the
  // only state, and ordering against other memory is not needed (see Safety).
  std::atomic<int> fd_;
  Kind kind_;
};

// make_connection_pair(duplex): the two cores of a Pipe. duplex: a
// socketpair(AF_UNIX, SOCK_STREAM); else pipe2: first reads, second writes.
// Both fds O_CLOEXEC. Throws mp::Error naming the call on failure.
MP_API std::pair<std::shared_ptr<ConnectionCore>, std::shared_ptr<ConnectionCore>> make_connection_pair(
    bool duplex);

}  // namespace mp::detail
