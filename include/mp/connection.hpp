// mp/connection.hpp — mp::Connection<T>, one end of an mp::Pipe.
//
// Python's multiprocessing.connection.Connection with typed values: send(x)
// encodes x with the codec (mp/codec.hpp) and writes one message; recv()
// reads one message and decodes it as T. send_bytes / recv_bytes move raw
// bytes. Message boundaries are kept, the empty message included, and a
// message may have any size. Make connections with mp::Pipe<T>() (mp/pipe.hpp),
// or between unrelated programs (and Python) with mp::Listener / mp::Client
// (mp/listener.hpp); how the bytes travel is the transport's business
// (mp/detail/connection_core.hpp). Connection<mp::py::Object> (mp/py.hpp)
// sends and receives pickles, as Python's Connection.send()/recv() do.
//
//   auto [a, b] = mp::Pipe<std::string>();
//   a.send("hello");
//   a.send_bytes({});                 // the empty message is a message too
//   std::string text = b.recv();      // "hello"
//   bool empty = b.recv_bytes().empty();  // true
//   a.close();
//   if (b.poll()) b.recv();           // poll is true at EOF: recv() throws mp::EOFError
//
// Errors, each naming the call, the connection's fd and the reason:
// ValueError (closed, moved-from, or the wrong direction of a one-way pipe:
// "connection is read-only" / "write-only"), EOFError (the peer closed; also
// a message cut short because its sender died: "truncated"), ConnectionError
// (send to a peer that closed: EPIPE; the process never gets SIGPIPE),
// CodecError (the bytes are not a T, or the stream is not mp's framing).
//
// Performance (Pipe()): a message is a copy into a shared-memory ring; a
// receiver that waits spins for a learned, bounded time before it sleeps, so
// a quick reply costs no system call. fileno() of a receiving end is an epoll
// fd; once it has been asked for, every message that finds the receiver's
// doorbell down also writes an eventfd (so mp::wait and poll(2) see it), which
// costs a system call per such send.
//
// Safety: a Connection is a cheap handle; copies share one end. As in
// Python, an end is used by one thread at a time per direction: one thread may
// send while another receives on the same duplex end, but two threads sending
// (or receiving) on one end interleave their bytes, and close() must not race
// another thread's call on that end. Different ends are independent. Two
// processes that both use the same end have the same problem as two threads;
// after fork, the process that does not use an end closes it (Python's idiom).
// Visibility: a message is in the transport (the ring, or the kernel's
// buffer for Listener/Client) when send() returns, and recv() returns it
// whole; nothing else is shared between the processes.
// Lifetime: every fd is O_CLOEXEC (never leaks into exec'd programs). A child
// forked after Pipe() holds both ends; the peer sees EOF only once every
// process has closed (or dropped all handles of) the other end. close()
// closes the end for every handle of it in this process; the last handle
// dropped closes it too.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <ratio>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "mp/codec.hpp"
#include "mp/detail/clock.hpp"
#include "mp/detail/connection_core.hpp"
#include "mp/detail/message_format.hpp"
#include "mp/errors.hpp"

namespace mp {

template <class T>
class Connection;

// Defined in mp/pipe.hpp; the default argument lives here, on the first declaration.
template <class T>
std::pair<Connection<T>, Connection<T>> Pipe(bool duplex = true);

template <class T>
class Connection {
  static_assert(Encodable<T> || detail::message_format<T>::specialised,
                "mp::Connection<T> / mp::Pipe<T>: T is not Encodable, so it cannot travel between processes; "
                "give it a `template <class Archive> void serialize(Archive& ar)` member or a mp::codec<T> "
                "specialisation (see mp/codec.hpp)");

 public:
  // Connection::send(value): encodes value and writes it as one message.
  // Blocks while the ring (or the kernel's buffer) is full. Throws ValueError
  // if closed or read-only, ConnectionError if the other end was closed
  // (EPIPE; never SIGPIPE), mp::Error otherwise. On a Pipe, a receiver that
  // exited without close() after reading is noticed by the second send (the
  // first may be accepted, as a socket write racing a close is).
  void send(const T& value) {
    std::vector<std::byte> frame(detail::ConnectionCore::frame_reserve);
    if constexpr (detail::message_format<T>::specialised) {
      detail::message_format<T>::encode_into(frame, value);
    } else {
      mp::encode_into(frame, value);
    }
    core("send").send_frame(frame, "send");
  }

  // Connection::recv(): blocks for one message and decodes it as T. Throws
  // EOFError once the other end was closed and every message was read (or
  // when it closed in the middle of a message: the message is truncated),
  // CodecError if the bytes are not a T, ValueError if closed or write-only.
  T recv() {
    std::vector<std::byte> payload = core("recv").recv_bytes("recv");
    try {
      if constexpr (detail::message_format<T>::specialised) {
        return detail::message_format<T>::decode(std::span<const std::byte>(payload));
      } else {
        return mp::decode<T>(std::span<const std::byte>(payload));
      }
    } catch (const CodecError& error) {
      std::string expected;
      if constexpr (detail::message_format<T>::specialised) {
        expected = detail::message_format<T>::name();
      } else {
        expected = mp::codec_signature<T>();
      }
      throw CodecError("recv(" + core_->name() + "): a " + std::to_string(payload.size()) +
                       "-byte message does not decode as " + expected + ": " + error.what());
    }
  }

  // Connection::poll(timeout): waits up to timeout (default: not at all) and
  // returns true if recv() would not block: a message is there, or the other
  // end was closed (recv() then throws EOFError). Throws ValueError if closed
  // or write-only.
  template <class Rep = std::int64_t, class Period = std::ratio<1>>
  [[nodiscard]] bool poll(std::chrono::duration<Rep, Period> timeout = {}) {
    return core("poll").poll(detail::Deadline::after(timeout));
  }

  // Connection::send_bytes(bytes): writes bytes as one message (may be empty).
  // Errors as send().
  void send_bytes(std::span<const std::byte> bytes) { core("send_bytes").send_bytes(bytes, "send_bytes"); }

  // Connection::recv_bytes(): blocks for one message and returns its bytes.
  // Errors as recv(), except that no decoding takes place.
  [[nodiscard]] std::vector<std::byte> recv_bytes() { return core("recv_bytes").recv_bytes("recv_bytes"); }

  // Connection::close(): closes this end for every handle of it in this
  // process; later calls do nothing. Other processes' copies stay open.
  void close() noexcept {
    if (core_) core_->close();
  }

  // Connection::closed(): true once close() was called on any handle of this end here.
  [[nodiscard]] bool closed() const noexcept { return !core_ || core_->closed(); }
  // Connection::readable(): false for the sending end of Pipe(false).
  [[nodiscard]] bool readable() const noexcept { return core_ && core_->readable(); }
  // Connection::writable(): false for the receiving end of Pipe(false).
  [[nodiscard]] bool writable() const noexcept { return core_ && core_->writable(); }
  // Connection::fileno(): an fd for mp::wait() or poll(2), readable when recv()
  // would not block (on a Pipe's receiving end an epoll fd, made on the first
  // call); ValueError if closed.
  [[nodiscard]] int fileno() const { return core("fileno").fileno(); }

 private:
  explicit Connection(std::shared_ptr<detail::ConnectionCore> core) noexcept : core_(std::move(core)) {}
  friend struct detail::ConnectionAccess;

  // The end behind this handle; a moved-from handle has none (ValueError).
  detail::ConnectionCore& core(const char* call) const {
    if (!core_) throw ValueError(std::string(call) + "(): this Connection handle was moved from");
    return *core_;
  }

  std::shared_ptr<detail::ConnectionCore> core_;
};

}  // namespace mp

#include "mp/detail/connection_codec.hpp"  // a Connection as a Process argument (forkserver, spawn)
