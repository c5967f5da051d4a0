// src/after_fork/spawn_launch.cpp — the spawn start method: fork, then at once
// exec /proc/self/exe with the launch record's fd in MP_SPAWN_FD; the new run
// reaches mp::init(), which runs the child (launch_child.cpp). The handle fds
// (a Queue's memfd, a Pipe end: the record lists their numbers) cross exec
// too: the child clears their close-on-exec flag in its own fd table, so the
// parent's stay close-on-exec. Nothing goes through the file system. Between
// fork() and execve() only async-signal-safe calls on memory prepared before
// fork().
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "after_fork/after_fork.hpp"
#include "mp/detail/system_error.hpp"
#include "mp/errors.hpp"
#include "start_methods.hpp"

extern char** environ;

namespace mp::detail {

Launched spawn_launch(int record_fd, bool daemon, const std::vector<int>& handle_fds) {
  if (!init_was_called())
    throw ProcessError(
        "Process::start(): the spawn start method runs this program again and needs mp::init(argc, argv) as "
        "the first line of main(), which runs the child there; call it (or use forkserver)");
  const std::vector<std::string>& arguments = saved_arguments();
  std::vector<std::string> argument_copies(arguments.begin(), arguments.end());
  std::vector<char*> argv;
  argv.reserve(argument_copies.size() + 1);
  for (auto& each : argument_copies) argv.push_back(each.data());
  argv.push_back(nullptr);
  std::vector<std::string> environment;
  for (char** e = environ; *e != nullptr; ++e)
    if (std::strncmp(*e, "MP_SPAWN_FD=", 12) != 0 && std::strncmp(*e, "MP_FORKSERVER_FD=", 17) != 0 &&
        std::strncmp(*e, "MP_FORKSERVER_PARENT=", 21) != 0)
      environment.emplace_back(*e);
  environment.push_back("MP_SPAWN_FD=" + std::to_string(record_fd));
  std::vector<char*> envp;
  envp.reserve(environment.size() + 1);
  for (auto& each : environment) envp.push_back(each.data());
  envp.push_back(nullptr);
  char exe[] = "/proc/self/exe";
  int report[2];  // close-on-exec: closes unread when exec succeeds, carries errno when it fails
  if (::pipe2(report, O_CLOEXEC) != 0) throw_system_error("pipe2", "spawn", errno);
  UniqueFd report_read(report[0]);
  UniqueFd report_write(report[1]);
  const pid_t parent = ::getpid();
  const bool main_thread = after_fork::on_main_thread();
  after_fork::flush_all_output();
  const pid_t pid = ::fork();
  if (pid == 0) {
    // ---- the child until exec: async-signal-safe only ----
    after_fork::discard_inherited_output();
    if (daemon) after_fork::arm_death_signal(parent, main_thread);  // PR_SET_PDEATHSIG survives exec
    // Its handler does not (off the main thread): held until run_launch() re-arms it.
    if (daemon && !main_thread) after_fork::hold_death_signal_across_exec();
    ::fcntl(record_fd, F_SETFD, 0);                           // the record crosses exec
    for (const int fd : handle_fds) ::fcntl(fd, F_SETFD, 0);  // and so do the handles' fds
    ::execve(exe, argv.data(), envp.data());
    const int error = errno;
    (void)after_fork::write_all(report_write.get(), &error, sizeof error);
    ::_exit(127);
  }
  if (pid < 0) throw_system_error("fork", "spawn", errno);
  report_write.reset();
  int exec_error = 0;
  const int rc = after_fork::read_all(report_read.get(), &exec_error, sizeof exec_error);
  after_fork::PidfdResult watched = after_fork::open_pidfd_or_reap(pid);
  if (rc == 0) {
    if (watched.pidfd >= 0) {
      while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
      }
      ::close(watched.pidfd);
    }
    throw_system_error("execve", "spawn of /proc/self/exe", exec_error);
  }
  if (watched.error != 0) throw_system_error("pidfd_open", "spawn", watched.error);
  Launched launched;
  launched.pid = pid;
  if (watched.already_reaped) throw ProcessError("spawn: the child was reaped by someone else at once");
  launched.pidfd.reset(watched.pidfd);
  return launched;
}

}  // namespace mp::detail
