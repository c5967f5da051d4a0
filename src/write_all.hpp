// src/write_all.hpp — write_all(fd, iov, count): every byte of an iovec list
// to a socket or a pipe (private to libmp; one helper for the connections and
// for the code that runs after fork).
//
// Sockets are written with sendmsg(MSG_NOSIGNAL), so a peer that is gone gives
// EPIPE and never SIGPIPE; an fd that is not a socket (sendmsg says ENOTSOCK)
// is written with writev, which can raise SIGPIPE: callers writing to pipes
// block it (src/connection.cpp) or run where its default is harmless.
// Partial writes and EINTR are handled; `iov` is consumed. Async-signal-safe:
// no allocation, no locks, only sendmsg/writev.
#pragma once

#include <sys/uio.h>

namespace mp::detail {

// write_all(fd, iov, count, maybe_socket): 0 when all was written, else the
// errno that stopped it. maybe_socket == false skips the sendmsg attempt (the
// caller knows fd is a pipe).
int write_all(int fd, iovec* iov, int count, bool maybe_socket = true) noexcept;

}  // namespace mp::detail
