// mp::Process and friends (parent side). The child side is in
// after_fork/process_child.cpp; pidfd watching and reaping in reap.cpp.
#include "mp/process.hpp"

#include <cxxabi.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <new>
#include <string>
#include <typeinfo>

#include "mp/context.hpp"
#include "mp/detail/spawn.hpp"
#include "mp/detail/system_error.hpp"
#include "mp/errors.hpp"
#include "process_table.hpp"
#include "start_methods.hpp"

namespace mp {
namespace detail {

// demangled_name(type): the demangled name of a type, for messages.
std::string demangled_name(const std::type_info& type) {
  int status = 0;
  char* demangled = abi::__cxa_demangle(type.name(), nullptr, nullptr, &status);
  std::string name = status == 0 && demangled != nullptr ? demangled : type.name();
  std::free(demangled);
  return name;
}

namespace {
// How long a daemon gets between SIGTERM and SIGKILL when its owner goes away.
constexpr auto kDaemonGrace = std::chrono::seconds(2);

void exit_hook() {
  finish_children();
  stop_forkserver();  // after the children: joining a forkserver child needs the server
}
}  // namespace

ProcessTable& process_table() noexcept {
  // Never destroyed (placement new into static storage): the atexit hook and
  // late static destructors of Process objects still use it.
  alignas(ProcessTable) static unsigned char storage[sizeof(ProcessTable)];
  static ProcessTable* table = [] {
    auto* created = ::new (static_cast<void*>(storage)) ProcessTable;
    created->main_info = ProcessInfo("MainProcess", ::getpid());
    return created;
  }();
  return *table;
}

ProcessInfo next_child_info(const char* prefix) {
  ProcessTable& table = process_table();
  int number = 0;
  std::string identity;
  {
    std::lock_guard lock(table.mutex);
    number = ++table.name_counter;
    if (table.current != nullptr) identity = ProcessInfoAccess::identity(*table.current);
  }
  if (!identity.empty()) identity += ':';
  identity += std::to_string(number);
  ProcessInfo info(std::string(prefix) + "-" + identity);
  ProcessInfoAccess::set_identity(info, std::move(identity));
  return info;
}

void finish_children() noexcept {
  {
    // The common case at the end of a child: no children of its own. Return
    // without allocating (each page a fresh child writes is a copy-on-write fault).
    ProcessTable& table = process_table();
    std::lock_guard lock(table.mutex);
    if (table.children.empty()) return;
  }
  try {
    // As Python's atexit function: first tell every daemon to stop, then reap all.
    for (Process* child : active_children())
      if (child->daemon()) child->terminate();
    for (Process* child : active_children()) {
      if (child->daemon() && !child->join(kDaemonGrace)) child->kill();
      child->join();
    }
  } catch (...) {
    // At exit there is nobody left to tell; ~Process reaps what is left.
  }
}

}  // namespace detail

namespace {

std::string describe(const ProcessInfo& info) {
  std::string text = "Process " + info.name();
  if (info.pid() != 0) text += " (pid " + std::to_string(info.pid()) + ")";
  return text;
}

}  // namespace

// Process::Process()
Process::Process() : info_(detail::next_child_info("Process")), creator_pid_(::getpid()) {}

// Process::steal_from(): the body of both moves; takes the process-table lock.
void Process::steal_from(Process& other) noexcept {
  detail::ProcessTable& table = detail::process_table();
  std::lock_guard lock(table.mutex);
  info_ = std::move(other.info_);
  daemon_ = other.daemon_;
  // Relaxed: the table lock (held) orders it; see Process::state_.
  state_.store(other.state_.exchange(State::moved_from, std::memory_order_relaxed),
               std::memory_order_relaxed);
  creator_pid_ = other.creator_pid_;
  pidfd_ = std::move(other.pidfd_);
  exitcode_ = other.exitcode_;
  target_ = std::move(other.target_);
  method_ = other.method_;
  status_fd_ = std::move(other.status_fd_);
  moved_from_type_ = other.moved_from_type_ != nullptr && *other.moved_from_type_ != typeid(other)
                         ? other.moved_from_type_  // `other` was sliced already: keep the original type
                         : &typeid(other);
  other.info_.pid_ = 0;
  std::replace(table.children.begin(), table.children.end(), &other, this);  // INV2
}

// Process::Process(Process&&)
Process::Process(Process&& other) noexcept { steal_from(other); }

// Process::operator=(Process&&)
Process& Process::operator=(Process&& other) noexcept {
  if (this == &other) return *this;
  apply_exit_policy();
  steal_from(other);
  return *this;
}

// Process::~Process()
Process::~Process() { apply_exit_policy(); }

void Process::apply_exit_policy() noexcept {
  if (state() == State::created || state() == State::moved_from) return;
  // An object inherited from the parent is not ours to reap: the child only
  // closes its copy of the sentinel (with pidfd_).
  if (creator_pid_ != ::getpid()) return;
  try {
    if (poll_state() == State::started) {
      if (daemon_) {
        terminate();
        if (!join(detail::kDaemonGrace)) kill();
      }
      join();
    }
  } catch (...) {
    // Destructors do not throw; the status of a lost child is simply gone.
  }
  detail::ProcessTable& table = detail::process_table();
  std::lock_guard lock(table.mutex);
  std::erase(table.children, this);  // INV2
}

void Process::check_owner(const char* what) const {
  if (state() == State::moved_from)
    throw ProcessError(std::string("Process::") + what + "(): this Process was moved from");
  if (creator_pid_ != ::getpid())
    throw ProcessError(std::string("Process::") + what + "(" + info_.name() + "): can only " + what +
                       " a child process of the process that created the object (this is pid " +
                       std::to_string(::getpid()) + ", the object belongs to pid " +
                       std::to_string(creator_pid_) + ")");
}

void Process::check_started(const char* what) const {
  if (state() == State::created)
    throw ProcessError(std::string("Process::") + what + "(" + info_.name() +
                       "): the process has not been started; call start() first");
}

// Process::start()
void Process::start() {
  check_owner("start");
  if (state() != State::created)
    throw ProcessError("Process::start(" + describe(info_) + "): cannot start a process twice");
  if (moved_from_type_ != nullptr && *moved_from_type_ != typeid(*this))
    throw ProcessError("Process::start(" + describe(info_) + "): this " +
                       detail::demangled_name(typeid(*this)) + " was moved out of a " +
                       detail::demangled_name(*moved_from_type_) +
                       ", which sliced away that subclass's run() and fields; keep Process subclasses by "
                       "pointer (std::unique_ptr<mp::Process>), not by value in a container of mp::Process");
  const StartMethod method = method_.value_or(get_start_method());
  detail::ProcessTable& table = detail::process_table();
  {
    std::lock_guard lock(table.mutex);
    table.children.reserve(table.children.size() + 1);  // so registering after the start cannot fail
    if (!table.exit_hook_registered) {
      if (std::atexit(&detail::exit_hook) != 0) throw std::bad_alloc();
      table.exit_hook_registered = true;
    }
  }
  detail::note_process_started();
  if (method == StartMethod::fork) {
    detail::warn_if_forking_with_threads(method_.has_value());
    start_forked();
  } else {
    start_travelling(method);
  }
}

void Process::start_forked() {
  detail::ProcessTable& table = detail::process_table();
  detail::SpawnResult spawned =
      detail::spawn_child({&info_, daemon_}, detail::ChildBody{&Process::child_entry, this});
  if (spawned.error != 0)
    detail::throw_system_error(spawned.failed_call, "Process " + info_.name(), spawned.error);
  std::lock_guard lock(table.mutex);
  info_.pid_ = spawned.pid;
  pidfd_ = std::move(spawned.pidfd);
  state_.store(spawned.already_reaped ? State::lost : State::started,
               std::memory_order_relaxed);  // under the table lock
  table.children.push_back(this);           // INV2 (capacity reserved above)
}

void Process::start_travelling(StartMethod method) {
  detail::LaunchRequest request;
  request.name = info_.name();
  request.identity = detail::ProcessInfoAccess::identity(info_);
  request.daemon = daemon_;
  const std::string why =
      std::string("Process::start(") + info_.name() + "): under the " + to_string(method) + " start method ";
  detail::OutgoingFds fds;  // borrowed from the handles among the arguments, which this object keeps
  if (target_) {
    if (!target_->encode(request.payload, request.entry, fds))
      throw ProcessError(
          why +
          "the target must travel to a fresh process: a function pointer, a capture-less lambda or a "
          "function object with trivially copyable or codec-serialisable state, and arguments that "
          "are codec-serialisable and default-constructible; this one is not (use "
          "StartMethod::fork, or Process(StartMethod::fork, ...))");
  } else if (typeid(*this) != typeid(Process)) {
    const detail::RegisteredProcess* registered = detail::find_registered_process(typeid(*this));
    if (registered == nullptr)
      throw ProcessError(
          why + "a Process subclass must be registered: add MP_REGISTER_PROCESS(" +
          detail::demangled_name(typeid(*this)) +
          ") at namespace scope (and give it a serialize() member with the fields run() needs)");
    registered->encode(*this, request.payload, fds);
    request.entry = registered->entry;
  }
  request.fds = fds.fds();
  detail::UniqueFd record = detail::write_launch_record(request);
  detail::Launched launched = method == StartMethod::forkserver
                                  ? detail::forkserver_launch(record.get(), daemon_, request.fds)
                                  : detail::spawn_launch(record.get(), daemon_, request.fds);
  detail::ProcessTable& table = detail::process_table();
  std::lock_guard lock(table.mutex);
  info_.pid_ = launched.pid;
  pidfd_ = std::move(launched.pidfd);
  status_fd_ = std::move(launched.status_fd);
  state_.store(State::started, std::memory_order_relaxed);  // under the table lock
  table.children.push_back(this);                           // INV2 (capacity reserved above)
}

int Process::child_entry(void* self) {
  static_cast<Process*>(self)->run();
  return 0;
}

// Process::run()
void Process::run() {
  if (target_) target_->invoke();
}

Process::State Process::refresh_locked() {
  if (state() != State::started) return state();
  if (status_fd_) {
    // forkserver: the server reaped the child and writes its exit code here.
    int code = 0;
    const ssize_t n = ::read(status_fd_.get(), &code, sizeof code);
    if (n == static_cast<ssize_t>(sizeof code)) {
      exitcode_ = code;
      state_.store(State::ended, std::memory_order_relaxed);  // under the table lock, after exitcode_
    } else if (n >= 0) {
      state_.store(State::lost, std::memory_order_relaxed);  // the server ended without reporting
    } else if (errno != EAGAIN && errno != EINTR) {
      detail::throw_system_error("read", describe(info_) + " (exit status from the fork server)", errno);
    }
    return state();
  }
  detail::ReapOutcome outcome = detail::try_reap(pidfd_.get());
  switch (outcome.state) {
    case detail::ChildState::running: break;
    case detail::ChildState::ended:
      exitcode_ = outcome.exitcode;
      state_.store(State::ended, std::memory_order_relaxed);  // under the table lock, after exitcode_
      break;
    case detail::ChildState::lost: state_.store(State::lost, std::memory_order_relaxed); break;
    case detail::ChildState::failed: detail::throw_system_error("waitid", describe(info_), outcome.error);
  }
  return state();
}

Process::State Process::poll_state() {
  std::lock_guard lock(detail::process_table().mutex);
  return refresh_locked();
}

void Process::throw_lost() const {
  throw ProcessError("Process::join(" + describe(info_) +
                     "): the child was reaped by someone else (waitpid(-1) or SIGCHLD set to SIG_IGN?); "
                     "its exit code is lost");
}

// Process::join(timeout)
bool Process::join_until(detail::Deadline deadline) {
  check_owner("join");
  check_started("join");
  for (;;) {
    State state = poll_state();
    if (state == State::lost) throw_lost();
    if (state == State::ended) return true;
    int rc = detail::wait_readable(watched_fd(), deadline);
    if (rc == ETIMEDOUT) {
      state = poll_state();
      if (state == State::lost) throw_lost();
      return state == State::ended;
    }
    if (rc != 0) detail::throw_system_error("poll", describe(info_), rc);
  }
}

// Process::join()
void Process::join() { join_until(detail::Deadline::never()); }

// Process::is_alive()
bool Process::is_alive() {
  if (detail::process_table().current == &info_) return true;  // the child asking about itself
  check_owner("test");
  if (state() == State::created) return false;
  return poll_state() == State::started;
}

// Process::exitcode()
std::optional<int> Process::exitcode() {
  if (state() == State::created) return std::nullopt;
  check_owner("query");
  State state = poll_state();
  if (state == State::lost) throw_lost();
  if (state == State::ended) return exitcode_;
  return std::nullopt;
}

void Process::send(int signal, const char* what) {
  check_owner(what);
  check_started(what);
  std::lock_guard lock(detail::process_table().mutex);
  if (state() != State::started) return;  // already reaped: nothing to signal (as Python)
  int rc = detail::signal_child(pidfd_.get(), signal);
  if (rc != 0 && rc != ESRCH) detail::throw_system_error("pidfd_send_signal", describe(info_), rc);
}

// Process::terminate()
void Process::terminate() { send(SIGTERM, "terminate"); }

// Process::kill()
void Process::kill() { send(SIGKILL, "kill"); }

// Process::sentinel()
int Process::sentinel() const {
  check_started("sentinel");
  if (state() == State::moved_from) throw ProcessError("Process::sentinel(): this Process was moved from");
  return watched_fd();
}

// Process::set_daemon(daemonic)
void Process::set_daemon(bool daemonic) {
  if (state() != State::created)
    throw ProcessError("Process::set_daemon(" + describe(info_) + "): the process has already been started");
  daemon_ = daemonic;
}

const ProcessInfo& current_process() noexcept {
  detail::ProcessTable& table = detail::process_table();
  return table.current != nullptr ? *table.current : table.main_info;
}

std::vector<Process*> active_children() {
  detail::ProcessTable& table = detail::process_table();
  std::lock_guard lock(table.mutex);
  std::vector<Process*> alive;
  for (Process* child : table.children)
    if (child->refresh_locked() == Process::State::started) alive.push_back(child);
  return alive;
}

int cpu_count() noexcept {
  for (int cpus = 1024; cpus <= (1 << 16); cpus *= 2) {
    cpu_set_t* set = CPU_ALLOC(cpus);
    if (set == nullptr) break;
    const std::size_t size = CPU_ALLOC_SIZE(cpus);
    CPU_ZERO_S(size, set);
    if (::sched_getaffinity(0, size, set) == 0) {
      int count = CPU_COUNT_S(size, set);
      CPU_FREE(set);
      return count > 0 ? count : 1;
    }
    const int err = errno;
    CPU_FREE(set);
    if (err != EINVAL) break;  // EINVAL: the mask is larger than `cpus`; try a bigger one
  }
  long online = ::sysconf(_SC_NPROCESSORS_ONLN);
  return online > 0 ? static_cast<int>(online) : 1;
}

}  // namespace mp
