// mp/wait.hpp — mp::wait: block until one of several file descriptors is ready.
//
// The C++ form of Python's multiprocessing.connection.wait(). It takes plain
// file descriptors: a Process's sentinel(), a Connection's fileno(), or any fd
// of your own, and returns the ones that are ready, in the order given.
//
//   mp::Process quick(work, 0), slow(work, 1000);
//   quick.start();
//   slow.start();
//   std::vector<int> sentinels{quick.sentinel(), slow.sentinel()};
//   std::vector<int> ready = mp::wait(sentinels, std::chrono::seconds(10));  // {quick.sentinel()}
//
// "Ready" means read() would not block: data is there, the peer hung up (EOF),
// the fd reports an error, or, for a sentinel (a pidfd), the process ended.
//
// Safety: a free function; call it from any thread of any process on fds that
// process holds. Several threads may wait on the same fds at once (each sees
// the readiness; none consumes it).
// Visibility: readiness is a kernel fact at the moment poll(2) returns; it says
// nothing about memory, and a fd ready then may be drained by someone else
// before you read it.
// Lifetime: wait() never takes ownership of, duplicates or closes an fd.
#pragma once

#include <chrono>
#include <initializer_list>
#include <span>
#include <vector>

#include "mp/detail/clock.hpp"
#include "mp/detail/export.hpp"

namespace mp {

namespace detail {
// wait_for_fds(fds, deadline): poll(2) until one fd is ready or the deadline
// passes (EINTR restarts with the remaining time). Throws mp::ValueError for an
// fd that is not open, mp::Error for any other poll failure.
MP_API std::vector<int> wait_for_fds(std::span<const int> fds, Deadline deadline);
}  // namespace detail

// mp::wait(fds)
// Blocks until at least one fd in `fds` is ready and returns the ready ones in
// the order given. An empty `fds` would block forever: it throws mp::ValueError.
// Throws mp::ValueError when an fd is not open.
[[nodiscard]] inline std::vector<int> wait(std::span<const int> fds) {
  return detail::wait_for_fds(fds, detail::Deadline::never());
}

// mp::wait(fds, timeout)
// As wait(fds), but gives up after `timeout` and then returns an empty vector
// (a zero or negative timeout only looks, as in Python). Empty `fds` is allowed
// here: it simply waits out the timeout.
template <class Rep, class Period>
[[nodiscard]] std::vector<int> wait(std::span<const int> fds, std::chrono::duration<Rep, Period> timeout) {
  return detail::wait_for_fds(fds, detail::Deadline::after(timeout));
}

// mp::wait({a, b}) and mp::wait({a, b}, timeout): the same, for a braced list.
[[nodiscard]] inline std::vector<int> wait(std::initializer_list<int> fds) {
  return wait(std::span<const int>(fds.begin(), fds.size()));
}
template <class Rep, class Period>
[[nodiscard]] std::vector<int> wait(std::initializer_list<int> fds,
                                    std::chrono::duration<Rep, Period> timeout) {
  return wait(std::span<const int>(fds.begin(), fds.size()), timeout);
}

}  // namespace mp
