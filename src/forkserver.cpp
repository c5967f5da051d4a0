// The fork server's client (parent side of the forkserver start method) and
// the launch record writer. The server itself runs after fork (or exec) and
// lives in after_fork/forkserver_main.cpp.
//
// One server per process, started on first use (or at mp::init): forked when
// this process has one thread (a quiet state: nothing can be locked), else a
// fresh run of this program (/proc/self/exe with MP_FORKSERVER_FD, caught by a
// constructor in context.cpp before main()). Requests are one round trip on a
// SOCK_SEQPACKET socket, serialised by `mutex`.
//
// The server dies with this process (after_fork::arm_death_signal). Started
// from a thread other than the main one, that is PR_SET_PDEATHSIG(SIGRTMAX)
// plus a handler that kills the server only if this process is really gone
// (the kernel sends the signal when the starting *thread* exits). exec keeps
// the death signal but drops the handler, whose default action would kill a
// re-run server with that thread: so the re-run starts with SIGRTMAX blocked
// and re-arms the handler before anything else (MP_FORKSERVER_PARENT, caught
// with MP_FORKSERVER_FD in context.cpp), and a signal that came meanwhile
// waits for the handler.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "after_fork/after_fork.hpp"
#include "mp/detail/system_error.hpp"
#include "mp/errors.hpp"
#include "process_table.hpp"
#include "start_methods.hpp"

extern char** environ;

namespace mp::detail {
namespace {

struct ForkServer {
  std::mutex mutex;  // guards everything below and serialises round trips
  int control = -1;  // our end of the socket
  pid_t pid = 0;     // the server
  pid_t owner = 0;   // getpid() of the process that started it (a child must start its own)
};

ForkServer& server() {
  static ForkServer* instance = new ForkServer;  // never destroyed: used at exit by late Process destructors
  return *instance;
}

[[noreturn]] void fail(const char* call, int error) { throw_system_error(call, "the mp fork server", error); }

// start_server_locked(s): a quiet fork when we are single-threaded, else re-run the program.
void start_server_locked(ForkServer& s) {
  int ends[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ends) != 0) fail("socketpair", errno);
  UniqueFd ours(ends[0]);
  UniqueFd theirs(ends[1]);
  const pid_t parent = ::getpid();
  const bool main_thread = after_fork::on_main_thread();
  const bool quiet = count_threads() == 1;
  std::vector<std::string> environment;
  std::vector<char*> envp;
  char exe[] = "/proc/self/exe";
  char* argv[] = {exe, nullptr};
  if (!quiet) {
    for (char** e = environ; *e != nullptr; ++e)
      if (std::strncmp(*e, "MP_FORKSERVER_FD=", 17) != 0 && std::strncmp(*e, "MP_SPAWN_FD=", 12) != 0 &&
          std::strncmp(*e, "MP_FORKSERVER_PARENT=", 21) != 0)
        environment.emplace_back(*e);
    environment.push_back("MP_FORKSERVER_FD=" + std::to_string(theirs.get()));
    if (!main_thread) environment.push_back("MP_FORKSERVER_PARENT=" + std::to_string(parent));
    for (auto& each : environment) envp.push_back(each.data());
    envp.push_back(nullptr);
  }
  after_fork::flush_all_output();
  ProcessTable& table = process_table();
  table.mutex.lock();  // INV1 of process_table.hpp: the server inherits a consistent table
  const pid_t pid = ::fork();
  if (pid == 0) {
    // ---- the server's first moments (after fork): async-signal-safe only ----
    after_fork::discard_inherited_output();
    after_fork::arm_death_signal(parent, main_thread);
    if (quiet) {
      table.mutex.unlock();  // INV1: inherited locked from the forking thread, which we are
      forkserver_main(theirs.get());
    }
    ::fcntl(theirs.get(), F_SETFD, 0);  // keep it across exec
    if (!main_thread) after_fork::hold_death_signal_across_exec();
    ::execve(exe, argv, envp.data());
    ::_exit(127);  // the parent sees the socket close
  }
  const int fork_error = errno;
  table.mutex.unlock();
  if (pid < 0) fail("fork", fork_error);
  s.control = ours.release();
  s.pid = pid;
  s.owner = parent;
}

}  // namespace

UniqueFd write_launch_record(const LaunchRequest& request) {
  const ProcessInfo& me = current_process();
  LaunchHeader header;
  header.daemon = request.daemon ? 1 : 0;
  header.forked_on_main_thread = after_fork::on_main_thread() ? 1 : 0;
  header.name_size = static_cast<std::uint32_t>(request.name.size());
  header.identity_size = static_cast<std::uint32_t>(request.identity.size());
  header.parent_name_size = static_cast<std::uint32_t>(me.name().size());
  header.parent_pid = static_cast<std::int32_t>(::getpid());
  header.has_entry = request.entry != nullptr ? 1 : 0;
  if (request.entry != nullptr) {
    header.entry = code_address_of(reinterpret_cast<const void*>(request.entry));
    if (header.entry.object == UINT32_MAX)
      throw ProcessError("Process " + request.name + ": its entry point is in no loaded object");
  }
  header.payload_size = request.payload.size();
  header.fd_count = static_cast<std::uint32_t>(request.fds.size());
  std::vector<std::int32_t> fd_numbers(request.fds.begin(), request.fds.end());
  UniqueFd record(::memfd_create("mp-launch", MFD_CLOEXEC));
  if (!record) throw_system_error("memfd_create", "Process " + request.name, errno);
  iovec parts[] = {{&header, sizeof header},
                   {const_cast<char*>(request.name.data()), request.name.size()},
                   {const_cast<char*>(request.identity.data()), request.identity.size()},
                   {const_cast<char*>(me.name().data()), me.name().size()},
                   {fd_numbers.data(), fd_numbers.size() * sizeof(std::int32_t)},
                   {const_cast<std::byte*>(request.payload.data()), request.payload.size()}};
  if (int rc = after_fork::write_all(record.get(), parts, 6); rc != 0)
    throw_system_error("write", "the launch record of Process " + request.name, rc);
  return record;
}

Launched forkserver_launch(int record_fd, bool daemon, const std::vector<int>& handle_fds) {
  if (handle_fds.size() > kMaxLaunchFds)
    throw ProcessError("Process::start(): under forkserver a Process takes at most " +
                       std::to_string(kMaxLaunchFds) +
                       " shared objects (handles) as arguments; this one has " +
                       std::to_string(handle_fds.size()) + " (use spawn, or pass fewer handles)");
  int status_ends[2];
  if (::pipe2(status_ends, O_CLOEXEC) != 0) throw_system_error("pipe2", "the mp fork server", errno);
  UniqueFd status_read(status_ends[0]);
  UniqueFd status_write(status_ends[1]);
  ::fcntl(status_read.get(), F_SETFL, O_NONBLOCK);
  ForkServer& s = server();
  std::lock_guard lock(s.mutex);
  if (s.control >= 0 && s.owner != ::getpid()) {
    // Inherited from our parent by fork: that server is our parent's, not ours.
    ::close(s.control);
    s.control = -1;
  }
  for (int attempt = 0;; ++attempt) {
    if (s.control < 0) start_server_locked(s);
    StartRequest request;
    request.daemon = daemon ? 1 : 0;
    request.fd_count = static_cast<std::uint32_t>(handle_fds.size());
    std::vector<int> fds{record_fd, status_write.get()};
    fds.insert(fds.end(), handle_fds.begin(), handle_fds.end());
    int rc = after_fork::send_with_fds(s.control, &request, sizeof request, fds.data(), fds.size());
    StartReply reply;
    int pidfd = -1;
    std::size_t received = 0;
    long n = -1;
    if (rc == 0) {
      n = after_fork::receive_with_fds(s.control, &reply, sizeof reply, &pidfd, 1, &received);
      rc = n < 0 ? errno : 0;
    }
    if (rc == 0 && n == static_cast<long>(sizeof reply)) {
      if (reply.error != 0) {
        if (received == 1) ::close(pidfd);
        throw_system_error("fork", "the mp fork server (pid " + std::to_string(s.pid) + ")", reply.error);
      }
      Launched launched;
      launched.pid = reply.pid;
      launched.pidfd.reset(received == 1 ? pidfd : -1);
      launched.status_fd = std::move(status_read);
      return launched;
    }
    if (received == 1) ::close(pidfd);
    // The server is gone (killed, or its re-run failed): start a new one, once.
    ::close(s.control);
    s.control = -1;
    if (attempt > 0)
      throw ProcessError("mp fork server (pid " + std::to_string(s.pid) +
                         "): it ended without answering; could not start the process");
  }
}

}  // namespace mp::detail

namespace mp::detail {

// start_forkserver_at_init(): mp::init() starts the server from its quiet
// state (the first line of main), so the server's children see the program as
// it was then. Failure is not fatal: the server is then started on first use.
void start_forkserver_at_init() noexcept {
  ForkServer& s = server();
  std::lock_guard lock(s.mutex);
  if (s.control >= 0) return;
  try {
    start_server_locked(s);
  } catch (...) {
  }
}

// stop_forkserver(): close our end and reap the server (it exits when it sees
// the end of the stream; its daemon children die with it). Called at normal
// exit after the children were finished (process.cpp's exit hook), and by tests.
void stop_forkserver() noexcept {
  ForkServer& s = server();
  std::lock_guard lock(s.mutex);
  if (s.control < 0) return;
  if (s.owner == ::getpid()) {
    // shutdown, not only close: a forked child (a Pool's zygote, the user's
    // fork) may hold a copy of this fd, and the server must still see the end.
    ::shutdown(s.control, SHUT_RDWR);
  }
  ::close(s.control);
  s.control = -1;
  if (s.owner != ::getpid()) return;  // inherited: not our child
  while (::waitpid(s.pid, nullptr, 0) < 0 && errno == EINTR) {
  }
  s.pid = 0;
}

}  // namespace mp::detail
