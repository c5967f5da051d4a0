// src/write_all.cpp — see src/write_all.hpp. Async-signal-safe.
#include "write_all.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>

namespace mp::detail {

int write_all(int fd, iovec* iov, int count, bool maybe_socket) noexcept {
  bool socket = maybe_socket;
  while (count > 0) {
    ssize_t written;
    if (socket) {
      msghdr message{};
      message.msg_iov = iov;
      message.msg_iovlen = static_cast<std::size_t>(count);
      written = ::sendmsg(fd, &message, MSG_NOSIGNAL);
      if (written < 0 && errno == ENOTSOCK) {
        socket = false;
        continue;
      }
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

}  // namespace mp::detail
