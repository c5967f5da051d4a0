// src/start_methods.hpp — libmp-internal: the pieces behind the forkserver and
// spawn start methods (mp/context.hpp).
//
// A launch travels as a *launch record*: a memfd holding a LaunchHeader, the
// child's name, identity and its parent's name, the parent's numbers of the
// handle fds (int32 each), then the payload (launch.hpp). forkserver passes
// the memfd and the handle fds to the server over SCM_RIGHTS (the server's
// child gets them at whatever numbers it received them), spawn leaves them
// open across exec (MP_SPAWN_FD; the handle fds keep their numbers). The child side (run_launch) and the
// server (forkserver_main) live in src/after_fork/.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "mp/detail/fd.hpp"
#include "mp/detail/launch.hpp"

namespace mp::detail {

// The launch record's header: an ABI between two runs of the same binary.
struct LaunchHeader {
  static constexpr std::uint32_t kMagic = 0x314c504d;  // "MPL1"
  std::uint32_t magic = kMagic;
  std::uint32_t version = 2;
  std::uint32_t daemon = 0;
  std::uint32_t forked_on_main_thread = 0;  // spawn: the death signal's thread rule (after_fork.hpp)
  std::uint32_t name_size = 0;
  std::uint32_t identity_size = 0;
  std::uint32_t parent_name_size = 0;
  std::int32_t parent_pid = 0;
  std::uint32_t has_entry = 0;  // 0: the empty run() (a plain Process without target)
  std::uint32_t fd_count = 0;   // handle fds that come with the launch
  CodeAddress entry;
  std::uint64_t payload_size = 0;
};
static_assert(sizeof(LaunchHeader) == 64);

struct LaunchRequest {
  std::string name;
  std::string identity;
  bool daemon = false;
  LaunchEntry entry = nullptr;
  std::vector<std::byte> payload;
  std::vector<int> fds;  // the handles' fds (borrowed), by index in the payload's fd channel
};

// What the parent holds for a child made by forkserver or spawn.
struct Launched {
  pid_t pid = 0;
  UniqueFd pidfd;      // signals (pidfd_send_signal works on any process)
  UniqueFd status_fd;  // forkserver only: the server writes the exit code here
};

// write_launch_record(request): a sealed-size memfd holding the record. Throws mp::Error.
UniqueFd write_launch_record(const LaunchRequest& request);

// forkserver_launch(record, daemon, fds) / spawn_launch(record, daemon, fds):
// start the child, passing it the handle fds; throw ProcessError/mp::Error
// with the reason (forkserver: at most kMaxLaunchFds handle fds).
inline constexpr std::size_t kMaxLaunchFds = 251;  // after_fork::kMaxFds minus the record and status fds
Launched forkserver_launch(int record_fd, bool daemon, const std::vector<int>& fds);
Launched spawn_launch(int record_fd, bool daemon, const std::vector<int>& fds);

// run_launch(record_fd, fds, fd_count, death_parent, parent_forked_on_main_thread):
// in the new child: read the record, become that Process (current_process,
// parent_process), arm the daemon death signal against `death_parent`, run the
// entry with the handle fds, leave with the exit code. `fds` (fd_count of
// them) are the handle fds as the fork server received them; nullptr: they
// were inherited across exec at the numbers the record lists (spawn). Never
// returns. (src/after_fork/launch_child.cpp)
[[noreturn]] void run_launch(int record_fd, const int* fds, std::size_t fd_count, pid_t death_parent,
                             bool parent_forked_on_main_thread) noexcept;

// forkserver_main(control_fd): the fork server's loop. Never returns.
// (src/after_fork/forkserver_main.cpp)
[[noreturn]] void forkserver_main(int control_fd) noexcept;

// Server protocol (SOCK_SEQPACKET): the parent sends a StartRequest carrying
// [record memfd, status pipe write end, fd_count handle fds]; the server answers a StartReply
// carrying the child's pidfd (none on error). When the child ends the server
// reaps it and writes its exit code (int: N, or -S) into the status pipe.
struct StartRequest {
  std::uint32_t magic = LaunchHeader::kMagic;
  std::uint32_t daemon = 0;
  std::uint32_t fd_count = 0;  // handle fds after the record and the status pipe
  std::uint32_t reserved = 0;
};
struct StartReply {
  std::int32_t pid = 0;
  std::int32_t error = 0;  // errno of the server's fork/pidfd_open
};

// start_forkserver_at_init(): from mp::init(); never throws. forkserver.cpp
void start_forkserver_at_init() noexcept;

// context.cpp
void note_process_started() noexcept;
void warn_if_forking_with_threads(bool method_chosen) noexcept;
[[nodiscard]] bool init_was_called() noexcept;
[[nodiscard]] const std::vector<std::string>& saved_arguments() noexcept;
[[nodiscard]] int count_threads() noexcept;  // from /proc/self/stat; 0 if unknown

}  // namespace mp::detail
