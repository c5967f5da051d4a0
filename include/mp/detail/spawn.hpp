// mp/detail/spawn.hpp — fork a child that runs a callable; watch, signal and
// reap it through its pidfd. The machinery under mp::Process, and what the Pool
// builds its workers on.
//
// Use: spawn_child({&info, die_with_parent}, child_body(callable)) forks and
// returns {pid, pidfd} (or the failed call and its errno); poll the pidfd or
// wait_and_reap(pidfd, deadline) to learn the exit code; signal_child(pidfd,
// SIGTERM) to stop it. mp::Process (src/process.cpp) is the reference user.
//
// What the child does (src/after_fork/process_child.cpp, with all code between fork()
// and _exit()): it resets mp's process table (no inherited children, name
// counter from 1), makes `*identity` its current_process(), arms the daemon
// death signal when asked, calls body.run(body.context), prints an escaping
// exception as "Process <name>:\n<type>: <what>" (exit code 1), terminates its
// own daemon children and joins the others (as Python does at a child's exit),
// flushes C stdio and iostreams and leaves with _exit(code): never the parent's
// atexit handlers or static destructors.
//
// Safety: every function is noexcept and reports errno; none throws (the mp::
// edge, Process, turns results into exceptions). spawn_child() may be called
// from any thread; it serialises with every other mp fork in the process.
// reap functions on one pidfd must not race each other (the first reaper wins,
// the second sees `lost`): mp::Process does it under its process-table lock.
// Visibility: the child starts with a copy of the parent's memory as it was at
// fork(); nothing written afterwards on either side is seen by the other.
// Lifetime: the caller owns the returned pidfd and must reap the child (until
// reaped it is a zombie). A daemon (die_with_parent) child gets SIGKILL when the
// parent process dies, even by SIGKILL; see process.hpp for the thread rules.
#pragma once

#include <sys/types.h>

#include <type_traits>

#include "mp/detail/clock.hpp"
#include "mp/detail/fd.hpp"

namespace mp {
class ProcessInfo;
}

namespace mp::detail {

// What a child runs: a plain function pointer and its context, so that the
// code after fork() needs no allocation to call it. run() returns the exit code.
struct ChildBody {
  int (*run)(void* context);
  void* context;
};

// child_body(f): a ChildBody calling `f()` (which returns int or void); `f` must
// outlive spawn_child() (the child gets its own copy of the memory).
template <class F>
ChildBody child_body(F& callable) noexcept {
  return ChildBody{[](void* context) -> int {
                     auto& f = *static_cast<F*>(context);
                     if constexpr (std::is_void_v<decltype(f())>) {
                       f();
                       return 0;
                     } else {
                       return static_cast<int>(f());
                     }
                   },
                   &callable};
}

struct SpawnOptions {
  ProcessInfo* identity = nullptr;  // becomes current_process() in the child (its pid is filled in there)
  bool die_with_parent = false;     // daemon: PR_SET_PDEATHSIG + the getppid() race check
};

struct SpawnResult {
  pid_t pid = 0;
  UniqueFd pidfd;                     // readable once the child ended
  bool already_reaped = false;        // ended and reaped by someone else before we got a pidfd
                                      // (SIGCHLD ignored): pidfd is then an fd that is readable at once
  int error = 0;                      // errno of the call that failed, 0 on success
  const char* failed_call = nullptr;  // "fork", "pidfd_open" or "eventfd"
};

// spawn_child(options, body): flushes stdio and iostreams, forks, and returns
// the child's pid and pidfd (or the error; no child is left behind on error).
[[nodiscard]] SpawnResult spawn_child(const SpawnOptions& options, ChildBody body) noexcept;

// The state of a child as its reaper sees it.
enum class ChildState {
  running,  // not ended yet
  ended,    // reaped now: `exitcode` holds N (exit status) or -S (killed by signal S)
  lost,     // someone else reaped it (waitpid(-1), SIGCHLD ignored): its status is gone
  failed,   // waitid/poll failed with `error`
};
struct ReapOutcome {
  ChildState state = ChildState::running;
  int exitcode = 0;
  int error = 0;
};

// try_reap(pidfd): waitid(P_PIDFD, WNOHANG): reaps the child if it has ended.
[[nodiscard]] ReapOutcome try_reap(int pidfd) noexcept;

// wait_readable(pidfd, deadline): poll until the child ended: 0 once it has,
// ETIMEDOUT when the deadline passed, else the errno of poll (EBADF for a
// closed fd). EINTR restarts with the remaining time. Does not reap.
[[nodiscard]] int wait_readable(int pidfd, Deadline deadline) noexcept;

// wait_and_reap(pidfd, deadline): wait_readable() then try_reap(); `running`
// on timeout.
[[nodiscard]] ReapOutcome wait_and_reap(int pidfd, Deadline deadline) noexcept;

// signal_child(pidfd, signal): pidfd_send_signal; 0, or errno (ESRCH: already
// reaped). Never hits a recycled pid.
[[nodiscard]] int signal_child(int pidfd, int signal) noexcept;

}  // namespace mp::detail
