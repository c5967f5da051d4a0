// src/after_fork/after_fork.hpp — libmp-internal: the helpers every piece of
// code that runs after fork() uses, written once (issue 11).
//
// All code mp runs between fork() and _exit()/exec lives under src/after_fork/
// (STYLE rule 7): process_child.cpp (mp::Process under "fork"), the fork
// server (forkserver.cpp), the spawn launcher, and the Pool's zygote and
// workers (pool_zygote.cpp, pool_worker.cpp).
//
// Rules for every function here: noexcept, errno-style results, nothing
// thrown. Those marked "async-signal-safe" make only system calls on memory
// the caller owns (no allocation, no locks): safe right after fork() in a
// child of a multi-threaded parent. The others (describing an exception,
// printing) may allocate: call them only once the child is an ordinary
// single-threaded program (after the user's code ran, or in a process forked
// from a single-threaded one).
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <cstddef>
#include <string>

namespace mp::detail::after_fork {

// flush_all_output(): std::cout/cerr/clog (and the wide ones) then every C
// stdio stream. The parent calls it before fork() so a child inherits no
// pending output; a child calls it before _exit() so its own output is kept.
void flush_all_output() noexcept;

// discard_inherited_output(): drops the child's copies of the stdout/stderr
// buffers: they hold only what other threads of the parent printed after the
// pre-fork flush, which the parent prints (issue 9, defect 4). A child never
// flushes what it inherited. fork() reset the stdio locks (glibc).
void discard_inherited_output() noexcept;

// flush_and_exit(code): flush_all_output() then _exit(code): never the
// parent's atexit handlers or static destructors.
[[noreturn]] void flush_and_exit(int code) noexcept;

// describe_current_exception(): in a catch handler: the exception's dynamic
// type, demangled ("mp::ValueError"), and what() ("(not derived from
// std::exception)" otherwise). Allocates; never throws (falls back to
// "unknown exception").
struct ExceptionText {
  std::string type;
  std::string message;
};
ExceptionText describe_current_exception() noexcept;

// print_exception(process_name): in a catch handler: flushes what the child
// printed so far, then "Process <name>:\n<type>: <what>\n" on stderr, as
// Python prints an exception escaping run().
void print_exception(const char* process_name) noexcept;

// open_pidfd_or_reap(pid): pidfd_open(pid). ESRCH (the child ended and was
// reaped by someone else, SIGCHLD ignored): `already_reaped`, no fd. Any other
// failure: the child is SIGKILLed and reaped (no zombie, nobody left
// unwatched) and `error` says why. Async-signal-safe.
struct PidfdResult {
  int pidfd = -1;
  int error = 0;
  bool already_reaped = false;
};
PidfdResult open_pidfd_or_reap(pid_t pid) noexcept;

// send_with_fds(socket, data, size, fds, count): one message (SEQPACKET: one
// record) carrying up to kMaxFds descriptors (SCM_RIGHTS; 253 is the kernel's
// SCM_MAX_FD: a fork server request carries a Process's handle fds). 0 or
// errno; EINTR retried; MSG_NOSIGNAL. Async-signal-safe.
inline constexpr std::size_t kMaxFds = 253;
int send_with_fds(int socket, const void* data, std::size_t size, const int* fds, std::size_t count) noexcept;
inline int send_with_fd(int socket, const void* data, std::size_t size, int fd) noexcept {
  return send_with_fds(socket, data, size, &fd, fd >= 0 ? 1 : 0);
}

// receive_with_fds(socket, data, size, fds, max, received): one message; the
// descriptors it carried (close-on-exec) go to fds[0..*received). Returns the
// byte count, 0 at end of stream, -1 with errno set. Descriptors beyond `max`
// are closed. EINTR retried. Async-signal-safe.
long receive_with_fds(int socket, void* data, std::size_t size, int* fds, std::size_t max,
                      std::size_t* received) noexcept;

// write_all(fd, iov, count) / write_all(fd, data, size): all of it, or errno
// (EPIPE when the reader is gone: MSG_NOSIGNAL on sockets, so no SIGPIPE).
// EINTR retried; `iov` is consumed. Async-signal-safe.
int write_all(int fd, iovec* iov, int count) noexcept;
int write_all(int fd, const void* data, std::size_t size) noexcept;

// read_all(fd, data, size): exactly `size` bytes: 0, or EPIPE at end of file
// first, or errno. EINTR retried. Async-signal-safe.
int read_all(int fd, void* data, std::size_t size) noexcept;

// arm_death_signal(parent, forked_on_main_thread): in a daemon child: die
// (SIGKILL) when the parent process dies, even by SIGKILL; checks the race of
// the parent dying before the call. The kernel ties PR_SET_PDEATHSIG to the
// forking *thread*; for a child forked from another thread a SIGRTMAX
// handler kills the child only if the parent process is really gone.
// Async-signal-safe.
void arm_death_signal(pid_t parent, bool forked_on_main_thread) noexcept;

// hold_death_signal_across_exec(): right before exec in a child armed by
// arm_death_signal(parent, false): blocks SIGRTMAX, whose handler exec drops
// (the death signal itself survives exec). The new program calls
// arm_death_signal() again, which unblocks it: a signal sent in between waits
// for the handler instead of killing the child. Async-signal-safe.
void hold_death_signal_across_exec() noexcept;

// on_main_thread(): gettid() == getpid().
bool on_main_thread() noexcept;

}  // namespace mp::detail::after_fork
