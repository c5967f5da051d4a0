// mp/pipe.hpp — mp::Pipe<T>(duplex): two connected mp::Connection<T> ends,
// and mp::wait() over their fileno()s and processes' sentinels.
//
// Python's multiprocessing.Pipe. Pipe<T>() is duplex: each end sends and
// receives. Pipe<T>(false) is one-way: the first end only receives, the
// second only sends. Messages travel through shared memory (a memfd with a
// byte ring per direction; nothing in /dev/shm): a send is a copy into the
// ring, and the kernel is only involved when a receiver sleeps (a waiting
// recv spins briefly first, while the CPUs are not oversubscribed: see
// mp/detail/event_count.hpp). A socketpair between the ends tells each end
// when every process has closed the other (EOFError, ConnectionError), as
// the socket did before.
//
//   void f(mp::Connection<Message> conn) {      // Message: tuple<int, optional<int>, string>
//     conn.send({42, std::nullopt, "hello"});
//     conn.close();
//   }
//   auto [parent_conn, child_conn] = mp::Pipe<Message>();
//   mp::Process p(f, child_conn);
//   p.start();
//   auto [number, nothing, text] = parent_conn.recv();   // 42, nullopt, "hello"
//   p.join();
//
// Safety: see mp/connection.hpp: one thread per end and direction at a time;
// different ends are independent.
// Visibility: a message sent is received whole and in order; nothing else is
// shared.
// Lifetime: every fd is O_CLOEXEC (per Pipe: the memfd, one eventfd per
// direction, one socket per end; fileno() of a receiving end adds an epoll
// fd). A process forked after Pipe() (by
// mp::Process, mp::Pool or fork) holds both ends: as in Python, each process
// closes the end it does not use, or the reader never sees EOF while the
// unused write end lives on in it. An end is closed by close() or when this
// process drops its last handle of it.
#pragma once

#include <utility>

#include "mp/connection.hpp"
#include "mp/detail/connection_core.hpp"
#include "mp/wait.hpp"

namespace mp {

// Pipe<T>(duplex): a connected pair of ends. duplex == false: first only
// receives, second only sends (misuse throws ValueError "connection is
// write-only" / "read-only"). Throws mp::Error naming memfd_create, eventfd or
// socketpair and the reason when the system refuses (e.g. out of fds).
template <class T>
std::pair<Connection<T>, Connection<T>> Pipe(bool duplex) {  // duplex defaults to true (mp/connection.hpp)
  auto [first, second] = detail::make_connection_pair(duplex);
  return {detail::ConnectionAccess::wrap<Connection<T>>(std::move(first)),
          detail::ConnectionAccess::wrap<Connection<T>>(std::move(second))};
}

}  // namespace mp
