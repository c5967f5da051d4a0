// mp/listener.hpp — mp::Listener and mp::Client: connections between
// unrelated programs, and with Python's multiprocessing.connection.
//
// A Listener binds an address and accept()s connections; Client connects to
// one. Both sides may prove they know a shared authkey (an HMAC challenge in
// each direction, as Python does). The connections speak the wire protocol of
// Python's multiprocessing.connection, so a Python program's
// `Client(address, authkey=b"...")` or `Listener` talks to mp directly:
//
//   mp::Listener listener("127.0.0.1:0", 1, "secret");     // port 0: the system picks one
//   std::string where = listener.address();                 // "127.0.0.1:40123"
//   auto conn = listener.accept<mp::py::Object>();          // a Python Client connected
//   mp::py::Object request = conn.recv();                   // {"x": [1, 2.5, "s"]}
//   conn.send(mp::py::Dict{{"ok", true}});
//
// Addresses: "/path/sock" (a Unix socket; the Listener removes the file when
// closed), "@name" (an abstract Unix socket, Python's "\0name"), "host:port"
// (TCP; "[::1]:port" for IPv6; port 0 picks a free port, address() says which).
// Python writes the TCP form as the tuple ("host", port).
//
// The authkey challenge: with an authkey, accept() sends a challenge and
// checks the answer, then answers the peer's challenge; Client does the same
// in the other order. mp answers whichever form the peer asks: Python 3.12+
// sends "{sha256}" + 40 random bytes and wants "{sha256}" + HMAC-SHA256
// (also sha384, sha3_256, sha3_384, md5 by name); Python <= 3.11 sends 20
// random bytes and wants a bare HMAC-MD5. mp sends the modern form by
// default, which both kinds of Python answer (3.11 answers it with HMAC-MD5,
// which mp accepts, as Python 3.12 does); ConnectionOptions::challenge =
// ChallengeDigest::legacy_md5 sends the 3.11 form instead. Without an authkey
// there is no challenge (as in Python): anyone who can connect is served.
//
// Messages: Python's framing (a 4-byte big-endian length; beyond 2^31 - 1
// bytes, -1 then an 8-byte length). send_bytes/recv_bytes carry raw bytes;
// Connection<mp::py::Object> (mp/py.hpp) carries pickles of plain data; any
// other T travels in mp's codec inside the same framing (mp peers only).
//
// Limits (a hostile or broken peer): a message longer than
// ConnectionOptions::max_message_size (default 1 GiB) is refused before
// anything is allocated (CodecError; the connection is closed), and memory
// for a message grows only as its bytes arrive. A peer that connects and
// says nothing fails the challenge after handshake_timeout (default 10 s),
// so one silent peer delays accept() at most that long. Challenge messages
// are at most 256 bytes, as in Python.
//
// Errors: AuthenticationError (the peer failed the challenge, rejected ours,
// closed during it or said nothing in time); ValueError (a malformed address,
// a closed Listener); mp::Error naming the call, the address and the system's
// reason (bind: Address already in use; connect: Connection refused).
//
// Safety: a Listener is a cheap handle; copies share one socket. accept() may
// be called from several threads at once (each gets its own connection);
// close() must not race them. Connections follow mp/connection.hpp's rules.
// Visibility: a message is in the kernel when send returns; nothing else is shared.
// Lifetime: every fd is O_CLOEXEC. The socket closes on close() or when the
// last handle in this process goes; a Unix socket's file is removed then by
// the process that bound it (never by a forked child).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "mp/connection.hpp"
#include "mp/detail/connection_core.hpp"

namespace mp {

// The form of the challenge mp sends (it answers any form a peer sends).
enum class ChallengeDigest : unsigned char {
  sha256,      // Python 3.12+: "{sha256}" + 40 random bytes, answered with "{sha256}" + HMAC-SHA256
  legacy_md5,  // Python <= 3.11: 20 random bytes, answered with a bare HMAC-MD5
};

struct ConnectionOptions {
  ChallengeDigest challenge = ChallengeDigest::sha256;
  // How long the peer may take over the whole challenge before it fails.
  std::chrono::milliseconds handshake_timeout{10'000};
  // The longest message a connection accepts from its peer.
  std::uint64_t max_message_size = std::uint64_t{1} << 30;
};

namespace detail {
class ListenerSocket;
// client_connect(address, authkey, options): a connected, authenticated core
// speaking Python's framing. Errors as Client().
std::shared_ptr<ConnectionCore> client_connect(std::string_view address,
                                               const std::optional<std::string>& authkey,
                                               const ConnectionOptions& options);
}  // namespace detail

class Listener {
 public:
  // Listener(address, backlog, authkey[, options]): binds and listens. Throws
  // ValueError for a malformed address, mp::Error when the system refuses
  // (bind: Address already in use).
  explicit Listener(std::string_view address, int backlog = 1, std::optional<std::string> authkey = {});
  Listener(std::string_view address, int backlog, std::optional<std::string> authkey,
           ConnectionOptions options);

  // Listener::accept<T>(): blocks for a peer, runs the challenge (with an
  // authkey) and returns the connection. Throws AuthenticationError if the
  // peer fails it (that connection is closed; the Listener goes on serving),
  // ValueError if the Listener is closed, mp::Error for a system failure.
  template <class T>
  [[nodiscard]] Connection<T> accept() {
    return detail::ConnectionAccess::wrap<Connection<T>>(accept_core());
  }

  // Listener::address(): what was bound, with the real port ("127.0.0.1:40123").
  [[nodiscard]] std::string address() const;
  // Listener::last_accepted(): the last accepted peer's address ("host:port",
  // a Unix socket's path, "" for an unnamed Unix peer); nullopt before the first.
  [[nodiscard]] std::optional<std::string> last_accepted() const;
  // Listener::fileno(): the listening socket, readable when accept() would not
  // block (for mp::wait). ValueError if closed.
  [[nodiscard]] int fileno() const;
  // Listener::close(): stops listening (and removes a Unix socket's file);
  // later calls do nothing. Accepted connections stay open.
  void close() noexcept;

 private:
  std::shared_ptr<detail::ConnectionCore> accept_core();
  std::shared_ptr<detail::ListenerSocket> socket_;
};

// Client<T>(address, authkey[, options]): connects to a Listener (mp's or
// Python's) and, with an authkey, answers its challenge then sends one.
// Throws AuthenticationError if either side fails the challenge, ValueError
// for a malformed address, mp::Error naming connect() and the address when
// nobody listens there.
template <class T>
[[nodiscard]] Connection<T> Client(std::string_view address, const std::optional<std::string>& authkey,
                                   const ConnectionOptions& options) {
  return detail::ConnectionAccess::wrap<Connection<T>>(detail::client_connect(address, authkey, options));
}
template <class T>
[[nodiscard]] Connection<T> Client(std::string_view address, std::optional<std::string> authkey = {}) {
  return Client<T>(address, authkey, ConnectionOptions{});
}

}  // namespace mp
