// src/stream_connection.hpp — the fd transport under mp::Connection<T>: one
// socket or pipe end carrying framed messages (private to libmp). Listener
// and Client connections use it; Pipe() uses shared memory
// (src/shm_connection.hpp); make_stream_connection_pair makes a pair of it.
//
// Two framings (see mp/detail/connection_core.hpp for the table):
//   Framing::mp      make_stream_connection_pair: an 8-byte little-endian
//                    length, then the payload.
//   Framing::python  Listener/Client: Python's multiprocessing.connection: a
//                    4-byte big-endian signed length; for a message longer than
//                    0x7fffffff bytes the 4 bytes are -1 and an 8-byte
//                    big-endian length follows. Any other negative length is
//                    not Python's framing (CodecError).
// Limits: a claimed length above max_message_size is refused (CodecError)
// before anything is allocated, and the connection is closed (the stream can
// no longer be trusted). Below it, the buffer starts at first_chunk bytes and
// doubles only as bytes actually arrive, so a peer that claims much and sends
// little costs at most first_chunk.
//
// Safety: see ConnectionCore (one thread per direction). The fd is an atomic
// only so that a close() racing a call is a documented error, not a data race.
// Visibility: a message is in the kernel's buffer before send returns.
// Lifetime: the fd is O_CLOEXEC (the factories make it so) and closed by
// close() or the destructor.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "mp/detail/clock.hpp"
#include "mp/detail/connection_core.hpp"

namespace mp::detail {

enum class Framing : unsigned char { mp, python };

struct StreamLimits {
  std::uint64_t max_message_size;  // a longer claimed length: CodecError, connection closed
  std::size_t first_chunk;         // the first buffer allocated for a message
};

class StreamConnection final : public ConnectionCore {
 public:
  enum class Kind : unsigned char { socket, pipe_read_end, pipe_write_end };

  StreamConnection(int fd, Kind kind, Framing framing, StreamLimits limits) noexcept
      : fd_(fd), kind_(kind), framing_(framing), limits_(limits) {}
  ~StreamConnection() override;

  void send_bytes(std::span<const std::byte> payload, const char* call) override;
  void send_frame(std::span<std::byte> frame, const char* call) override;
  [[nodiscard]] std::vector<std::byte> recv_bytes(const char* call) override;
  [[nodiscard]] bool poll(Deadline deadline) override;
  void close() noexcept override;
  [[nodiscard]] bool closed() const noexcept override { return fd_.load(std::memory_order_relaxed) < 0; }
  [[nodiscard]] bool readable() const noexcept override { return kind_ != Kind::pipe_write_end; }
  [[nodiscard]] bool writable() const noexcept override { return kind_ != Kind::pipe_read_end; }
  [[nodiscard]] int fileno() const override;
  [[nodiscard]] std::string name() const override;
  // StreamConnection::travel(out): the fd, then kind, framing and limits as
  // metadata; rebuilt by rebuild() (a Pipe() end or an accepted socket alike).
  [[nodiscard]] bool travel(ConnectionTravel& out) const override;
  static std::shared_ptr<ConnectionCore> rebuild(std::span<UniqueFd> fds,
                                                 std::span<const std::byte> metadata);

  // StreamConnection::recv_message(call, max_size, deadline): one message of
  // at most max_size bytes, waiting no later than deadline. For the
  // authentication handshake. TimeoutError when the deadline passes first;
  // other errors as recv_bytes.
  [[nodiscard]] std::vector<std::byte> recv_message(const char* call, std::uint64_t max_size,
                                                    Deadline deadline);

 private:
  int usable_fd(const char* call, bool for_reading) const;
  // Writes the header for `length` so that it ends at `header_end`; returns its size.
  std::size_t store_header(std::byte* header_end, std::uint64_t length) const;
  void write_all_or_throw(int fd, std::span<const std::byte> header, std::span<const std::byte> payload,
                          const char* call);
  [[noreturn]] void fail_stream(int fd, const std::string& message);

  // The fd, or -1 once closed. Relaxed everywhere: the number itself is the
  // only state, and ordering against other memory is not needed (see Safety).
  std::atomic<int> fd_;
  Kind kind_;
  Framing framing_;
  StreamLimits limits_;
};

// Limits for Pipe() ends: both ends are mp, so lengths are trusted up to what
// no machine could send; a large first chunk keeps big messages fast.
inline constexpr StreamLimits pipe_limits{std::uint64_t{1} << 47, std::size_t{64} << 20};

}  // namespace mp::detail
