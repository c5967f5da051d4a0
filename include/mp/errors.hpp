// mp/errors.hpp — every exception mp throws at its public edge.
//
// All derive from mp::Error, itself a std::runtime_error, so one
// `catch (const mp::Error&)` catches everything mp raises. The names follow
// Python's multiprocessing / queue modules (Full, Empty, TimeoutError, ...).
//
//   try { q.get_nowait(); } catch (const mp::Empty&) { /* nothing there */ }
//
// Safety: exception objects are ordinary values; copy them freely.
// Visibility: n/a. Lifetime: n/a.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>

#include "mp/detail/export.hpp"

namespace mp {

// The root of every mp exception.
class MP_API Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A put could not complete: put_nowait on a full queue, or put(timeout) ran out.
class MP_API Full : public Error {
 public:
  Full() : Error("queue is full") {}
  using Error::Error;
};

// A get found nothing: get_nowait on an empty queue, or get(timeout) ran out.
class MP_API Empty : public Error {
 public:
  Empty() : Error("queue is empty") {}
  using Error::Error;
};

// The queue was shut down (Queue::shutdown): puts refuse, gets drain then refuse.
class MP_API ShutDown : public Error {
 public:
  ShutDown() : Error("queue was shut down") {}
  using Error::Error;
};

// A timed wait that must report its timeout (AsyncResult::get(timeout), ...).
class MP_API TimeoutError : public Error {
 public:
  using Error::Error;
};

// Misuse of a Process: started twice, joined before start, set_daemon after start.
class MP_API ProcessError : public Error {
 public:
  using Error::Error;
};

// A bad argument or state: releasing an unheld lock, task_done() too often,
// a closed queue or connection used.
class MP_API ValueError : public Error {
 public:
  using Error::Error;
};

// Connection::recv when the peer closed and nothing is left to read.
class MP_API EOFError : public Error {
 public:
  using Error::Error;
};

// A Barrier was aborted, reset or timed out while a party waited.
class MP_API BrokenBarrier : public Error {
 public:
  BrokenBarrier() : Error("barrier is broken") {}
  using Error::Error;
};

// An exception escaped a task run in a child; type_name() says what it was.
class MP_API RemoteError : public Error {
 public:
  RemoteError(std::string type_name, const std::string& message)
      : Error(message), type_name_(std::move(type_name)) {}
  // RemoteError::type_name(): the (demangled) type of the exception in the child.
  [[nodiscard]] const std::string& type_name() const noexcept { return type_name_; }

 private:
  std::string type_name_;
};

// A pool worker died while running the task; the message says which signal or code.
class MP_API WorkerLost : public Error {
 public:
  using Error::Error;
};

// Bytes could not be decoded as the requested type (truncated, corrupted, another type).
class MP_API CodecError : public Error {
 public:
  using Error::Error;
};

// A peer is gone: a server behind a handle (Redis) cannot be reached or was
// lost, or a Connection's other end closed before a send (Python's
// BrokenPipeError is a ConnectionError too); says which and why.
class MP_API ConnectionError : public Error {
 public:
  using Error::Error;
};

// A lease-based lock was released or renewed after its lease had run out.
class MP_API LockLost : public Error {
 public:
  using Error::Error;
};

// A pool task ran longer than its task_timeout; its worker was killed and replaced.
class MP_API TaskTimeout : public TimeoutError {
 public:
  using TimeoutError::TimeoutError;
};

// AsyncResult::get() of a task that cancel() stopped before it delivered.
class MP_API Cancelled : public Error {
 public:
  Cancelled() : Error("task was cancelled") {}
  using Error::Error;
};

// A Listener/Client peer failed the authkey challenge, or a Redis server
// refused the url's credentials (never retried as an outage).
class MP_API AuthenticationError : public ProcessError {
 public:
  using ProcessError::ProcessError;
};

}  // namespace mp
