// src/listener.cpp — mp::Listener and mp::Client: addresses, sockets, accept
// and connect (the challenge is in listener_auth.cpp, the framing in
// connection.cpp).
#include "mp/listener.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <mutex>
#include <string>
#include <utility>

#include "listener_auth.hpp"
#include "mp/detail/fd.hpp"
#include "mp/detail/system_error.hpp"
#include "mp/errors.hpp"
#include "stream_connection.hpp"

namespace mp {
namespace detail {
namespace {

// Memory for a Python-framed message starts here and doubles as bytes come,
// so a peer that claims a huge length and sends little costs at most this.
constexpr std::size_t python_first_chunk = std::size_t{1} << 20;

// One parsed address: a Unix socket (path or abstract) or a TCP host and port.
struct Address {
  enum class Kind : unsigned char { unix_path, unix_abstract, tcp } kind;
  std::string text;  // path, abstract name (without '@'), or host
  std::string port;  // tcp only
};

Address parse_address(std::string_view address) {
  if (address.empty()) throw ValueError("Listener/Client: the address is empty");
  if (address.front() == '@') {
    if (address.size() == 1) throw ValueError("Listener/Client: abstract socket address \"@\" has no name");
    return {Address::Kind::unix_abstract, std::string(address.substr(1)), {}};
  }
  if (address.find('/') != std::string_view::npos)
    return {Address::Kind::unix_path, std::string(address), {}};
  auto colon = address.rfind(':');
  if (colon == std::string_view::npos)
    throw ValueError("Listener/Client: address \"" + std::string(address) +
                     "\" is neither a Unix socket path (with a '/'), \"@name\" nor \"host:port\"");
  std::string host(address.substr(0, colon));
  std::string port(address.substr(colon + 1));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (port.empty() || port.find_first_not_of("0123456789") != std::string::npos || port.size() > 5 ||
      std::stoul(port) > 65535)
    throw ValueError("Listener/Client: address \"" + std::string(address) +
                     "\" has no valid port (0 to 65535)");
  return {Address::Kind::tcp, std::move(host), std::move(port)};
}

// A Unix socket address; throws ValueError when the name does not fit.
std::pair<sockaddr_un, socklen_t> unix_sockaddr(const Address& address) {
  sockaddr_un result{};
  result.sun_family = AF_UNIX;
  const bool abstract = address.kind == Address::Kind::unix_abstract;
  const std::size_t room =
      sizeof(result.sun_path) - 1;  // the leading '\0' of an abstract name, or a path's final '\0'
  if (address.text.size() > room)
    throw ValueError("Listener/Client: Unix socket name \"" + address.text + "\" is longer than " +
                     std::to_string(room) + " bytes");
  if (abstract) {
    std::memcpy(result.sun_path + 1, address.text.data(), address.text.size());
    return {result, static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + address.text.size())};
  }
  std::memcpy(result.sun_path, address.text.data(), address.text.size());
  return {result, static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.text.size() + 1)};
}

// A socket address as mp writes it: "host:port", "[v6]:port", "/path", "@name", or "" (unnamed).
std::string describe(const sockaddr_storage& storage, socklen_t length) {
  if (storage.ss_family == AF_UNIX) {
    const auto& un = reinterpret_cast<const sockaddr_un&>(storage);
    const std::size_t path_size =
        length > offsetof(sockaddr_un, sun_path) ? length - offsetof(sockaddr_un, sun_path) : 0;
    if (path_size == 0) return "";
    if (un.sun_path[0] == '\0') {
      std::string name(1, '@');
      name.append(un.sun_path + 1, path_size - 1);
      return name;
    }
    return std::string(un.sun_path, strnlen(un.sun_path, path_size));
  }
  char host[INET6_ADDRSTRLEN] = {};
  if (storage.ss_family == AF_INET) {
    const auto& in = reinterpret_cast<const sockaddr_in&>(storage);
    ::inet_ntop(AF_INET, &in.sin_addr, host, sizeof(host));
    std::string text(host);
    text.append(":").append(std::to_string(ntohs(in.sin_port)));
    return text;
  }
  if (storage.ss_family == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(storage);
    ::inet_ntop(AF_INET6, &in6.sin6_addr, host, sizeof(host));
    std::string text(1, '[');
    text.append(host).append("]:").append(std::to_string(ntohs(in6.sin6_port)));
    return text;
  }
  return "?";
}

struct AddrInfoDeleter {
  void operator()(addrinfo* info) const noexcept { ::freeaddrinfo(info); }
};
using AddrInfoPtr = std::unique_ptr<addrinfo, AddrInfoDeleter>;

AddrInfoPtr resolve(const Address& address, bool passive, const std::string& original) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = passive ? AI_PASSIVE : 0;
  addrinfo* found = nullptr;
  int status = ::getaddrinfo(address.text.empty() ? nullptr : address.text.c_str(), address.port.c_str(),
                             &hints, &found);
  if (status != 0)
    throw Error(std::string(passive ? "Listener" : "Client") + "(" + original +
                "): getaddrinfo: " + ::gai_strerror(status));
  return AddrInfoPtr(found);
}

UniqueFd make_socket(int family, const std::string& call_object) {
  UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) throw_system_error("socket", call_object, errno);
  return fd;
}

// A Python-framed connection over a connected socket.
std::shared_ptr<StreamConnection> wrap_socket(UniqueFd fd, const ConnectionOptions& options) {
  int one = 1;
  (void)::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one,
                     sizeof(one));  // fails harmlessly on Unix sockets
  auto core = std::make_shared<StreamConnection>(fd.get(), StreamConnection::Kind::socket, Framing::python,
                                                 StreamLimits{options.max_message_size, python_first_chunk});
  (void)fd.release();
  return core;
}

// first_socket(found, call, object, step): a TCP socket for the first of the
// resolved addresses on which step(fd, address) succeeds (returns 0); when
// none does, throws the last failure, naming `call` ("bind", "connect").
template <class Step>
UniqueFd first_socket(const addrinfo* found, const char* call, const std::string& object, Step step) {
  int last_error = 0;
  for (const addrinfo* candidate = found; candidate != nullptr; candidate = candidate->ai_next) {
    UniqueFd fd(::socket(candidate->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (fd && step(fd.get(), *candidate) == 0) return fd;
    last_error = errno;
  }
  throw_system_error(call, object, last_error);
}

// connect_fd(fd, address, length): connect(2), resumed after EINTR.
int connect_fd(int fd, const ::sockaddr* address, socklen_t length) {
  int status;
  do {
    status = ::connect(fd, address, length);
  } while (status != 0 && errno == EINTR);
  return status;
}

}  // namespace

// The socket behind every handle of one Listener. `mutex` guards
// last_accepted; the fd is atomic so close() racing accept() is a clean error.
class ListenerSocket {
 public:
  ListenerSocket(std::string_view address, int backlog, std::optional<std::string> authkey,
                 ConnectionOptions options)
      : authkey_(std::move(authkey)), options_(options) {
    const std::string original(address);
    Address parsed = parse_address(address);
    const std::string object = "Listener " + original;
    if (parsed.kind == Address::Kind::tcp) {
      AddrInfoPtr found = resolve(parsed, true, original);
      fd_ = first_socket(found.get(), "bind", object, [](int fd, const addrinfo& candidate) {
        int one = 1;
        (void)::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));  // as Python does on POSIX
        return ::bind(fd, candidate.ai_addr, candidate.ai_addrlen);
      });
    } else {
      auto [sockaddr, length] = unix_sockaddr(parsed);
      UniqueFd fd = make_socket(AF_UNIX, object);
      if (::bind(fd.get(), reinterpret_cast<const ::sockaddr*>(&sockaddr), length) != 0)
        throw_system_error("bind", object, errno);
      fd_ = std::move(fd);
      if (parsed.kind == Address::Kind::unix_path) {
        unlink_path_ = parsed.text;
        owner_pid_ = ::getpid();
      }
    }
    if (::listen(fd_.get(), backlog < 0 ? 0 : backlog) != 0) {
      int error = errno;
      remove_file();
      throw_system_error("listen", object, error);
    }
    sockaddr_storage bound{};
    socklen_t length = sizeof(bound);
    if (::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&bound), &length) != 0) {
      int error = errno;
      remove_file();
      throw_system_error("getsockname", object, error);
    }
    address_ = describe(bound, length);
  }
  ~ListenerSocket() { close(); }
  ListenerSocket(const ListenerSocket&) = delete;
  ListenerSocket& operator=(const ListenerSocket&) = delete;

  std::shared_ptr<ConnectionCore> accept() {
    int listening = fileno();
    sockaddr_storage peer{};
    socklen_t length = sizeof(peer);
    UniqueFd fd;
    for (;;) {
      length = sizeof(peer);
      int accepted = ::accept4(listening, reinterpret_cast<sockaddr*>(&peer), &length, SOCK_CLOEXEC);
      if (accepted >= 0) {
        fd.reset(accepted);
        break;
      }
      // A peer that gave up before we accepted it is not our error: take the next.
      if (errno == EINTR || errno == ECONNABORTED) continue;
      throw_system_error("accept", "Listener " + address_, errno);
    }
    {
      std::lock_guard lock(mutex_);
      last_accepted_ = describe(peer, length);
    }
    auto core = wrap_socket(std::move(fd), options_);
    if (authkey_) {
      Deadline deadline = Deadline::after(options_.handshake_timeout);
      try {
        deliver_challenge(*core, *authkey_, options_.challenge, deadline);
        answer_challenge(*core, *authkey_, deadline);
      } catch (const AuthenticationError& error) {
        throw AuthenticationError("Listener " + address_ + ": accept(): " + error.what());
      }
    }
    return core;
  }

  [[nodiscard]] int fileno() const {
    if (!fd_) throw ValueError("Listener " + address_ + ": the listener is closed");
    return fd_.get();
  }

  void close() noexcept {
    if (!fd_) return;
    fd_.reset();
    remove_file();
  }

  const std::string& address() const noexcept { return address_; }
  std::optional<std::string> last_accepted() const {
    std::lock_guard lock(mutex_);
    return last_accepted_;
  }

 private:
  void remove_file() noexcept {
    if (!unlink_path_.empty() && owner_pid_ == ::getpid()) ::unlink(unlink_path_.c_str());
    unlink_path_.clear();
  }

  UniqueFd fd_;
  std::string address_;
  std::string unlink_path_;  // a Unix socket's file, removed at close by the process that bound it
  pid_t owner_pid_ = 0;
  std::optional<std::string> authkey_;
  ConnectionOptions options_;
  mutable std::mutex mutex_;                  // guards last_accepted_
  std::optional<std::string> last_accepted_;  // guarded by mutex_
};

std::shared_ptr<ConnectionCore> client_connect(std::string_view address,
                                               const std::optional<std::string>& authkey,
                                               const ConnectionOptions& options) {
  const std::string original(address);
  const std::string object = "Client " + original;
  Address parsed = parse_address(address);
  UniqueFd connected;
  if (parsed.kind == Address::Kind::tcp) {
    AddrInfoPtr found = resolve(parsed, false, original);
    connected = first_socket(found.get(), "connect", object, [](int fd, const addrinfo& candidate) {
      return connect_fd(fd, candidate.ai_addr, candidate.ai_addrlen);
    });
  } else {
    auto [sockaddr, length] = unix_sockaddr(parsed);
    UniqueFd fd = make_socket(AF_UNIX, object);
    if (connect_fd(fd.get(), reinterpret_cast<const ::sockaddr*>(&sockaddr), length) != 0)
      throw_system_error("connect", object, errno);
    connected = std::move(fd);
  }
  auto core = wrap_socket(std::move(connected), options);
  if (authkey) {
    Deadline deadline = Deadline::after(options.handshake_timeout);
    try {
      answer_challenge(*core, *authkey, deadline);
      deliver_challenge(*core, *authkey, options.challenge, deadline);
    } catch (const AuthenticationError& error) {
      throw AuthenticationError(object + ": " + error.what());
    }
  }
  return core;
}

}  // namespace detail

Listener::Listener(std::string_view address, int backlog, std::optional<std::string> authkey)
    : Listener(address, backlog, std::move(authkey), ConnectionOptions{}) {}

Listener::Listener(std::string_view address, int backlog, std::optional<std::string> authkey,
                   ConnectionOptions options)
    : socket_(std::make_shared<detail::ListenerSocket>(address, backlog, std::move(authkey), options)) {}

std::shared_ptr<detail::ConnectionCore> Listener::accept_core() {
  if (!socket_) throw ValueError("Listener::accept(): this Listener handle was moved from");
  return socket_->accept();
}

std::string Listener::address() const { return socket_ ? socket_->address() : std::string(); }

std::optional<std::string> Listener::last_accepted() const {
  return socket_ ? socket_->last_accepted() : std::nullopt;
}

int Listener::fileno() const {
  if (!socket_) throw ValueError("Listener::fileno(): this Listener handle was moved from");
  return socket_->fileno();
}

void Listener::close() noexcept {
  if (socket_) socket_->close();
}

}  // namespace mp
