// mp/process.hpp — mp::Process: run a function in a forked child process, the
// C++ form of Python's multiprocessing.Process (start method "fork").
//
//   void greet(std::string name) { std::printf("hello %s\n", name.c_str()); }
//   mp::Process p(greet, std::string("bob"));   // args decay-copied, as std::thread
//   p.start();                                  // fork; the child runs greet("bob")
//   p.join();                                   // wait and reap
//   assert(p.exitcode() == 0);
//
// (That is the "fork" start method, the default; "forkserver", safe in a
// program that runs threads, and "spawn" are in mp/context.hpp.)
//
// Or subclass and override run(). The child runs run(); run() returning gives
// exit code 0, mp::exit(n) gives n, an exception escaping run() prints
//   Process Process-1:
//   std::runtime_error: what it said
// on stderr and gives 1; a signal S gives -S. The child leaves with _exit():
// it never runs the parent's atexit handlers or static destructors. C stdio
// and std::cout/cerr/clog are flushed before fork() and in the child before
// _exit(), so output buffered before start() is never printed twice (flush
// your own std::ofstream or FILE* opened with a custom buffer yourself). The
// child discards, never flushes, the stdout/stderr buffers it inherited: what
// other threads printed after the pre-fork flush is printed by the parent only.
//
// States: created --start()--> started --(reaped by join/is_alive/exitcode)--> ended.
// Misuse is an mp::ProcessError: start() twice, join()/terminate()/sentinel()
// before start(), set_daemon() after start(), and, in a child, start()/join()/
// is_alive()/terminate() on a Process object the child inherited from its
// parent ("can only join a child process", as Python says).
//
// Daemons: a daemon child dies with its parent. At normal exit (return from
// main, std::exit) an atexit hook terminates the parent's daemon children and
// joins the others, as Python does; when the parent dies abruptly (SIGKILL, a
// crash) the kernel kills its daemons (PR_SET_PDEATHSIG(SIGKILL), plus a
// getppid() check for the parent dying during fork). The kernel ties that
// death signal to the forking *thread*, not the process; so for a daemon
// started from any thread other than the main one, mp asks instead for SIGRTMAX
// with a tiny handler that kills the child only if its parent process is really
// gone (getppid() changed). A daemon started from a short-lived thread thus
// survives that thread. Such a child should leave SIGRTMAX alone (do not block
// or re-handle it) to keep that guarantee. A child that exec()s loses both.
//
// Safety: a Process object is used by the thread(s) of the process that created
// it; start(), set_name(), set_daemon(), moves and destruction must not race
// other calls on the same object. join(), is_alive(), exitcode(), terminate()
// and kill() may run concurrently on one object (reaping happens once, under an
// internal lock). current_process(), active_children() and cpu_count() may be
// called from any thread.
// Fork in a multi-threaded parent copies only the thread that calls start():
// the child has no other threads, and any lock another thread held at fork()
// stays locked forever in the child. mp itself takes care of C stdio, iostreams,
// malloc (glibc) and its own process table; the rest is yours: do not start a
// Process while another thread holds a lock the child will need, and in the
// child do not rely on threads, thread pools or their queues from the parent.
// Visibility: the child starts with a copy of the parent's memory as it was at
// fork(), including the target and its arguments; later writes on either side
// are private. Share data through mp's Queue, Pipe, Value, ... instead.
// Lifetime: ~Process reaps the child: a daemon still running gets terminate()
// (and SIGKILL if it has not ended 2 s later), a non-daemon is joined; so no
// zombie is ever left behind. Moving a Process moves the child's ownership (and
// its entry in active_children()); a moved-from Process is empty and may only
// be destroyed or assigned to. The sentinel fd lives as long as the object.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "mp/detail/clock.hpp"
#include "mp/detail/export.hpp"
#include "mp/detail/fd.hpp"
#include "mp/detail/launch.hpp"
#include "mp/wait.hpp"

namespace mp {

class Process;
namespace detail {
struct ProcessInfoAccess;  // src/: fills in a child's own pid right after fork
struct ProcessAccess;      // src/ and MP_REGISTER_PROCESS: run() and the fields a launch needs
}  // namespace detail

// How a child is made (see mp/context.hpp, "Start methods"): fork (the child
// is a copy of this process), forkserver (forked by a single-threaded server
// started from a quiet state), spawn (a fresh run of this program).
enum class StartMethod { fork, forkserver, spawn };

// Who a process is: the value current_process() returns.
class ProcessInfo {
 public:
  ProcessInfo() = default;
  explicit ProcessInfo(std::string name, pid_t pid = 0) : name_(std::move(name)), pid_(pid) {}

  // ProcessInfo::name(): "MainProcess", or the name of the Process the child runs.
  [[nodiscard]] const std::string& name() const noexcept { return name_; }
  // ProcessInfo::pid(): that process's pid.
  [[nodiscard]] pid_t pid() const noexcept { return pid_; }

 private:
  friend class Process;
  friend struct detail::ProcessInfoAccess;
  std::string name_;
  pid_t pid_ = 0;
  std::string identity_;  // Python's _identity: "3" for Process-3, "3:1" for its first child
};

namespace detail {

// The type-erased target of a Process: the decay-copied callable and arguments.
class ProcessTarget {
 public:
  virtual ~ProcessTarget() = default;
  virtual void invoke() = 0;
  // ProcessTarget::encode(out, entry, fds): for forkserver/spawn: the payload
  // and trampoline of the target, the fds of the handles among its arguments
  // (borrowed: this target keeps them open); false when the types cannot travel.
  virtual bool encode(std::vector<std::byte>& out, LaunchEntry& entry, OutgoingFds& fds) const = 0;
};

template <class F, class... Args>
class BoundProcessTarget final : public ProcessTarget {
 public:
  template <class G, class... A>
  explicit BoundProcessTarget(G&& f, A&&... args) : bound_(std::forward<G>(f), std::forward<A>(args)...) {}
  // Called once, in the child: like std::thread, the copies are passed as rvalues.
  void invoke() override {
    std::apply([](auto&... parts) { std::invoke(std::move(parts)...); }, bound_);
  }
  bool encode(std::vector<std::byte>& out, LaunchEntry& entry, OutgoingFds& fds) const override {
    if constexpr (target_travels<F, Args...>) {
      std::apply([&out, &fds](const auto&... parts) { encode_target(out, fds, parts...); }, bound_);
      entry = &run_travelled_target<F, Args...>;
      return true;
    } else {
      return false;
    }
  }

 private:
  std::tuple<F, Args...> bound_;
};

// next_child_info(prefix): the identity of the next child this process makes,
// named "prefix-N" ("prefix-P:N" in a child whose identity is P), numbered as
// Python does; Process uses "Process", the Pool may use its own prefix.
MP_API ProcessInfo next_child_info(const char* prefix);

}  // namespace detail

class MP_API Process {
 public:
  // Process::Process(): subclass style; override run().
  Process();

  // Process::Process(target, args...): the child calls target(args...). The
  // target and arguments are decay-copied now, as std::thread does; a callable
  // that cannot be called with those arguments does not compile.
  template <class F, class... Args>
  requires(!std::is_same_v<std::remove_cvref_t<F>, Process> &&
           !std::is_same_v<std::remove_cvref_t<F>, StartMethod>) explicit Process(F&& target, Args&&... args)
      : Process() {
    static_assert(std::is_invocable_v<std::decay_t<F>, std::decay_t<Args>...>,
                  "mp::Process: the target cannot be called with these arguments (they are decay-copied "
                  "and passed as rvalues, as with std::thread)");
    target_ = std::make_unique<detail::BoundProcessTarget<std::decay_t<F>, std::decay_t<Args>...>>(
        std::forward<F>(target), std::forward<Args>(args)...);
  }

  // Process::Process(Process&&): takes over `other`'s child (or target).
  // Process::Process(method, target, args...): as above, started with the
  // given start method whatever get_start_method() says (see mp/context.hpp).
  // Under forkserver and spawn the target and arguments must be able to travel
  // (what Pool accepts): anything else does not compile.
  template <class F, class... Args>
  explicit Process(StartMethod method, F&& target, Args&&... args)
      : Process(std::forward<F>(target), std::forward<Args>(args)...) {
    static_assert(
        detail::callable_travels<std::decay_t<F>>,
        "mp::Process(StartMethod, ...): under forkserver and spawn the target must travel to a "
        "fresh process: a function pointer, a capture-less lambda, or a function object whose state "
        "is trivially copyable or codec-serialisable (use StartMethod::fork for any callable)");
    static_assert(
        (detail::LaunchArgument<std::decay_t<Args>> && ...),
        "mp::Process(StartMethod, ...): under forkserver and spawn the arguments travel by mp's codec: "
        "each must be codec-serialisable and default-constructible, or a handle on a shared object "
        "(Queue, Lock, Value, Connection, ...) (use StartMethod::fork for others)");
    method_ = method;
  }

  Process(Process&& other) noexcept;

  // Slicing (issue 9, defect 10): a subclass keeps its run() and fields in the
  // derived part, which a plain mp::Process cannot hold. So
  //   mp::Process p = Squarer(3);                     // does not compile
  //   std::vector<mp::Process> v; v.emplace_back(Squarer(3));   // does not compile
  // (this constructor is protected: only a subclass's own constructors may
  // pass a subclass object to Process's move constructor). The language still
  // lets a Squarer bind to `Process&&`, so `v.push_back(Squarer(3))` compiles;
  // that Process remembers it was moved out of a Squarer and start() throws
  // ProcessError saying so, instead of silently running the empty base run().
  // Keep subclasses by pointer: std::vector<std::unique_ptr<mp::Process>>.
 protected:
  // clang-format off
  // NOLINTBEGIN(bugprone-forwarding-reference-overload): constrained to subclasses, on purpose
  template <class Subclass_would_be_sliced_keep_it_by_pointer>
    requires(std::is_base_of_v<Process, std::remove_cvref_t<Subclass_would_be_sliced_keep_it_by_pointer>> &&
             !std::is_same_v<std::remove_cvref_t<Subclass_would_be_sliced_keep_it_by_pointer>, Process>)
  Process(Subclass_would_be_sliced_keep_it_by_pointer&& subclass_object) noexcept
      : Process(static_cast<Process&&>(subclass_object)) {}
  // NOLINTEND(bugprone-forwarding-reference-overload)
  // clang-format on

 public:
  // Process::operator=(Process&&): applies ~Process's policy to the child this
  // object held, then takes over `other`'s.
  Process& operator=(Process&& other) noexcept;
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  // Process::~Process(): not started or already reaped: nothing to do. Still
  // running: daemon -> terminate(), then SIGKILL after 2 s, then reap;
  // otherwise join(). Never throws.
  virtual ~Process();

  // Process::start(): forks; the child runs run() and exits. Throws ProcessError
  // when started twice, when moved from, or when the object was inherited from
  // a parent process; mp::Error when fork/pidfd_open fail (e.g. EAGAIN, EMFILE).
  void start();

  // Process::join(): blocks until the child has ended, then reaps it. Throws
  // ProcessError before start() or in a process that is not the child's parent,
  // or if the child's status was lost (someone else reaped it).
  void join();

  // Process::join(timeout): as join(), but waits at most `timeout`; returns
  // true once the child has ended (and has been reaped), false if still running.
  template <class Rep, class Period>
  bool join(std::chrono::duration<Rep, Period> timeout) {
    return join_until(detail::Deadline::after(timeout));
  }

  // Process::is_alive(): true from start() until the child ended (reaps it
  // when it has). False before start(). ProcessError in a non-parent process.
  [[nodiscard]] bool is_alive();

  // Process::terminate() / kill(): send SIGTERM / SIGKILL (no-op once ended).
  // ProcessError before start() or in a non-parent process.
  void terminate();
  void kill();

  // Process::exitcode(): nullopt until the child has ended (never started
  // included); then N for exit(N) / mp::exit(N) / 0 after run() returned, 1
  // after an exception, -S when killed by signal S. Reaps when it can.
  [[nodiscard]] std::optional<int> exitcode();

  // Process::pid(): the child's pid; 0 before start().
  [[nodiscard]] pid_t pid() const noexcept { return info_.pid_; }

  // Process::sentinel(): a pidfd that becomes readable when the child ends,
  // for mp::wait() and poll(2); owned by this object. ProcessError before start().
  [[nodiscard]] int sentinel() const;

  // Process::name() / set_name(): "Process-1", "Process-2", ... by default
  // ("Process-3:1" for the first child of a child named Process-3).
  [[nodiscard]] const std::string& name() const noexcept { return info_.name_; }
  void set_name(std::string name) { info_.name_ = std::move(name); }

  // Process::daemon() / set_daemon(): see "Daemons" above. set_daemon after
  // start() throws ProcessError.
  [[nodiscard]] bool daemon() const noexcept { return daemon_; }
  void set_daemon(bool daemonic);

 protected:
  // Process::run(): what the child does; by default target(args...).
  virtual void run();

 private:
  enum class State : unsigned char {
    created,    // not started: pid 0, no sentinel
    started,    // forked; child running or ended but not reaped yet
    ended,      // reaped: exitcode_ holds the result
    lost,       // ended, but someone else reaped it: the status is unknown
    moved_from  // emptied by a move: may only be destroyed or assigned to
  };

  // Process::state(): relaxed load, see state_.
  [[nodiscard]] State state() const noexcept { return state_.load(std::memory_order_relaxed); }
  bool join_until(detail::Deadline deadline);
  void check_owner(const char* what) const;
  void check_started(const char* what) const;
  void apply_exit_policy() noexcept;
  void steal_from(Process& other) noexcept;  // both moves: takes the table lock, empties `other`
  void send(int signal, const char* what);
  // Reaps if ended; returns the state after. poll_state() takes the
  // process-table lock, refresh_locked() expects it held.
  State poll_state();
  State refresh_locked();
  [[noreturn]] void throw_lost() const;

  friend std::vector<Process*> active_children();
  friend struct detail::ProcessAccess;
  void start_forked();
  void start_travelling(StartMethod method);
  [[nodiscard]] int watched_fd() const noexcept { return status_fd_ ? status_fd_.get() : pidfd_.get(); }
  static int child_entry(void* self);

  ProcessInfo info_;  // name and pid (pid 0 before start)
  bool daemon_ = false;
  // Written only under the process-table lock (started/ended/lost, moves).
  // Read with that lock for every decision about the child; read without it
  // only by the misuse checks (created? moved from?), whose answer no
  // concurrent reaper can change. Relaxed everywhere: the lock orders what
  // needs ordering (exitcode_ is written before `ended` under the same lock).
  std::atomic<State> state_{State::created};
  pid_t creator_pid_ = 0;   // getpid() of the process that constructed this object
  detail::UniqueFd pidfd_;  // the sentinel
  int exitcode_ = 0;        // valid in State::ended
  std::unique_ptr<detail::ProcessTarget> target_;
  // The dynamic type of the object this one was moved from (nullptr: never
  // moved into). start() compares it with its own dynamic type: a mismatch
  // means a subclass was sliced into a plain Process (see "Slicing").
  const std::type_info* moved_from_type_ = nullptr;
  // The start method chosen for this Process (unset: get_start_method() at start()).
  std::optional<StartMethod> method_;
  // forkserver: the child is the server's, not ours; the server reaps it and
  // writes its exit code (an int) into this pipe, whose read end is the sentinel.
  detail::UniqueFd status_fd_;
};

// mp::current_process(): "MainProcess" in the main program; in a child, the
// name and pid of the Process it runs.
[[nodiscard]] MP_API const ProcessInfo& current_process() noexcept;

// mp::active_children(): this process's started, still-running children (those
// that ended are reaped on the way, as in Python). The pointers are valid until
// the objects are moved or destroyed.
[[nodiscard]] MP_API std::vector<Process*> active_children();

// mp::cpu_count(): the number of CPUs this process may run on (its
// sched_getaffinity mask), at least 1.
[[nodiscard]] MP_API int cpu_count() noexcept;

// mp::exit(code): in a child started by mp, ends it now with exit code `code`
// (after flushing stdio/iostreams and reaping its own children as at the end
// of run(); no destructors of the current stack run). In the main program it
// is std::exit(code).
[[noreturn]] MP_API void exit(int code);

}  // namespace mp
