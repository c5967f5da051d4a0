// mp/detail/connection_core.hpp — the transport seam under mp::Connection<T>.
//
// A Connection<T> handle holds a shared_ptr to one ConnectionCore: the untyped
// end of a connection that moves whole messages (byte strings, the empty one
// included). The template above it only encodes and decodes; how the bytes
// travel is the core's business, behind these virtual members:
//
//   transport            made by                      framing of one message
//   -------------------  ---------------------------  ------------------------------------------
//   ShmConnection        Pipe(): byte rings in a      8-byte little-endian length, then payload,
//                        memfd region, one per        streamed through the ring when larger
//                        direction                    than it
//   StreamConnection,    make_stream_connection_pair  8-byte little-endian length, then payload
//     mp framing         (socketpair / pipe2)
//   StreamConnection,    Listener::accept, Client     Python's multiprocessing.connection: 4-byte
//     Python framing     (a Unix or TCP socket)       big-endian signed length; -1 then an 8-byte
//                                                     big-endian length beyond 2^31 - 1 bytes
//
// ShmConnection lives in src/shm_connection.hpp, StreamConnection in
// src/stream_connection.hpp; a new transport derives
// from ConnectionCore and is handed to Connection<T> by a factory, nothing in
// the template changes.
//
// Travel (a Connection passed to a Process under forkserver or spawn, whose
// child is not a fork of this process): ConnectionCore::travel() says which
// fds carry the end, a few bytes of metadata, and the factory that rebuilds
// the end in the child from those fds and bytes (ConnectionTravel below). mp
// passes the fds (SCM_RIGHTS to the fork server, inheritance across exec for
// spawn) and the factory as a code address. A transport that does not
// override travel() cannot travel: passing it raises ProcessError.
//
// Safety: like Python's Connection, one end is meant to be used by one thread
// at a time in each direction: a sender and a receiver may use the same
// duplex end concurrently, but two threads sending (or two receiving) on the
// same end interleave their bytes, and close() must not race another thread's
// call on the same end.
// Visibility: a message is complete in the transport before the sender's
// send() returns; nothing else is shared between the processes.
// Lifetime: the core owns what it transports over (an fd, a mapping); close()
// or the last handle in this process dropping the core releases it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "mp/detail/clock.hpp"
#include "mp/detail/export.hpp"
#include "mp/detail/fd.hpp"

namespace mp::detail {

class ConnectionCore;

// ConnectionTravel: what ConnectionCore::travel() fills in.
//   fds       the descriptors the end lives on, borrowed: the core keeps them
//             open (they are passed while the launching Process object lives);
//   metadata  transport-specific bytes (kind, framing, offsets, ...);
//   rebuild   runs in the child: gets the received fds, in the same order and
//             owned (it release()s the ones it keeps; the rest are closed after
//             it returns) and the metadata; returns the end, or throws
//             (CodecError for metadata it does not understand). It travels as
//             a code address (the child is a run of the same program), so it
//             must be a plain function of libmp or the program.
struct ConnectionTravel {
  using Rebuild = std::shared_ptr<ConnectionCore> (*)(std::span<UniqueFd> fds,
                                                      std::span<const std::byte> metadata);
  Rebuild rebuild = nullptr;
  std::vector<int> fds;
  std::vector<std::byte> metadata;
};

class MP_API ConnectionCore {
 public:
  // Bytes a sender reserves at the front of an encoded frame (see
  // send_frame): room for any transport's header, so the header and the
  // payload leave in one write without copying the payload.
  static constexpr std::size_t frame_reserve = 16;

  ConnectionCore() = default;
  virtual ~ConnectionCore() = default;
  ConnectionCore(const ConnectionCore&) = delete;
  ConnectionCore& operator=(const ConnectionCore&) = delete;

  // ConnectionCore::send_bytes(payload): writes one message. Blocks until it
  // is all in the transport. ValueError when closed or read-only;
  // ConnectionError when the peer closed (EPIPE; never SIGPIPE); CodecError
  // when the message exceeds what the framing or the peer allows.
  virtual void send_bytes(std::span<const std::byte> payload, const char* call) = 0;

  // ConnectionCore::send_frame(frame): `frame` starts with frame_reserve
  // spare bytes followed by the payload; the transport may write its header
  // into the spare bytes. Errors as send_bytes.
  virtual void send_frame(std::span<std::byte> frame, const char* call) = 0;

  // ConnectionCore::recv_bytes(): blocks for one whole message and returns
  // it. EOFError when the peer closed at a message boundary, or in the middle
  // of a message (says so); ValueError when closed or write-only; CodecError
  // when the stream is not this transport's framing or a message is larger
  // than the connection accepts (the connection is then closed: the stream
  // can no longer be trusted).
  [[nodiscard]] virtual std::vector<std::byte> recv_bytes(const char* call) = 0;

  // ConnectionCore::poll(deadline): true when recv would not block (a
  // message is there, or the peer closed). ValueError when closed or
  // write-only.
  [[nodiscard]] virtual bool poll(Deadline deadline) = 0;

  // ConnectionCore::close(): releases the transport once; later calls do nothing.
  virtual void close() noexcept = 0;

  [[nodiscard]] virtual bool closed() const noexcept = 0;
  [[nodiscard]] virtual bool readable() const noexcept = 0;
  [[nodiscard]] virtual bool writable() const noexcept = 0;

  // ConnectionCore::fileno(): an fd that polls readable when recv would not
  // block (for mp::wait); ValueError when closed.
  [[nodiscard]] virtual int fileno() const = 0;

  // ConnectionCore::name(): "connection fd N", for error messages; unlike
  // fileno() it never throws and changes nothing (a shared-memory end's
  // fileno() makes an epoll fd and arms the doorbell).
  [[nodiscard]] virtual std::string name() const = 0;

  // ConnectionCore::travel(out): fills `out` (see ConnectionTravel) so this
  // end can be rebuilt in a child that is not a fork of this process, and
  // returns true; false when the transport cannot travel (the default).
  // ValueError when closed. The end stays usable here: both processes then
  // hold it, as after fork.
  [[nodiscard]] virtual bool travel(ConnectionTravel& out) const {
    (void)out;
    return false;
  }
};

// make_connection_pair(duplex): the two cores of a Pipe, over shared memory
// (src/shm_connection.hpp): a memfd region with a ring per direction, a
// socketpair that tells each end when the other is gone, an eventfd per
// direction; all O_CLOEXEC. duplex == false: the first end only receives, the
// second only sends. Throws mp::Error naming the call on failure.
MP_API std::pair<std::shared_ptr<ConnectionCore>, std::shared_ptr<ConnectionCore>> make_connection_pair(
    bool duplex);

// make_stream_connection_pair(duplex): the same over the kernel: a
// socketpair(AF_UNIX, SOCK_STREAM) for duplex, else pipe2 (first reads,
// second writes); mp framing, O_CLOEXEC. For tests of the stream framing and
// for comparisons; Pipe() does not use it.
MP_API std::pair<std::shared_ptr<ConnectionCore>, std::shared_ptr<ConnectionCore>>
make_stream_connection_pair(bool duplex);

// ConnectionAccess: how factories outside the template (Pipe, Listener,
// Client) wrap a core in a typed handle without making the constructor public.
struct ConnectionAccess {
  template <class Handle>
  static Handle wrap(std::shared_ptr<ConnectionCore> core) noexcept {
    return Handle(std::move(core));
  }
  // ConnectionAccess::core(handle): the end behind a handle (null when moved from).
  template <class Handle>
  static const std::shared_ptr<ConnectionCore>& core(const Handle& handle) noexcept {
    return handle.core_;
  }
};

}  // namespace mp::detail
