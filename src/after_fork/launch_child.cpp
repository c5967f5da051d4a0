// src/after_fork/launch_child.cpp — a child of the forkserver or spawn start
// method becomes its Process: reads the launch record, takes the name, the
// identity and the parent it was given, arms the daemon death signal, runs the
// entry and leaves with _exit(). Runs in a fork of the single-threaded fork
// server, or in a fresh run of the program (init()): ordinary C++ is allowed.
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "after_fork/after_fork.hpp"
#include "mp/errors.hpp"
#include "mp/process.hpp"
#include "process_table.hpp"
#include "start_methods.hpp"

namespace mp::detail {
namespace {

[[noreturn]] void bad_record(const char* why) noexcept {
  after_fork::flush_all_output();
  static const char prefix[] = "mp: a child started by forkserver/spawn could not read its launch record: ";
  (void)after_fork::write_all(2, prefix, sizeof prefix - 1);
  (void)after_fork::write_all(2, why, std::strlen(why));
  (void)after_fork::write_all(2, "\n", 1);
  ::_exit(70);
}

}  // namespace

void run_launch(int record_fd, const int* received_fds, std::size_t received_count, pid_t death_parent,
                bool parent_forked_on_main_thread) noexcept {
  after_fork::discard_inherited_output();
  std::vector<char> record;
  LaunchHeader header;
  try {
    struct stat info {};
    if (::fstat(record_fd, &info) != 0) bad_record("fstat failed");
    record.resize(static_cast<std::size_t>(info.st_size));
    if (::pread(record_fd, record.data(), record.size(), 0) != static_cast<ssize_t>(record.size()))
      bad_record("short read");
  } catch (...) {
    bad_record("out of memory");
  }
  ::close(record_fd);
  if (record.size() < sizeof header) bad_record("truncated");
  std::memcpy(&header, record.data(), sizeof header);
  if (header.magic != LaunchHeader::kMagic || header.version != 2) bad_record("not an mp launch record");
  const std::size_t strings = std::size_t{header.name_size} + header.identity_size + header.parent_name_size;
  const std::size_t fd_numbers = std::size_t{header.fd_count} * sizeof(std::int32_t);
  if (record.size() != sizeof header + strings + fd_numbers + header.payload_size)
    bad_record("sizes do not add up");
  if (received_fds != nullptr && received_count != header.fd_count) bad_record("the fds do not match it");
  const char* at = record.data() + sizeof header;

  ProcessTable& table = process_table();
  std::string name(at, header.name_size);
  at += header.name_size;
  std::string identity(at, header.identity_size);
  at += header.identity_size;
  std::string parent_name(at, header.parent_name_size);
  at += header.parent_name_size;
  // The handle fds: as the fork server received them, or (spawn) inherited
  // across exec at the numbers the parent had them under.
  std::vector<UniqueFd> handle_fds;
  try {
    handle_fds.reserve(header.fd_count);
    for (std::size_t i = 0; i < header.fd_count; ++i) {
      std::int32_t number;
      std::memcpy(&number, at + i * sizeof number, sizeof number);
      handle_fds.emplace_back(received_fds != nullptr ? received_fds[i] : number);
    }
  } catch (...) {
    bad_record("out of memory");
  }
  at += fd_numbers;
  auto* me = new (std::nothrow) ProcessInfo(std::move(name), ::getpid());
  auto* parent = new (std::nothrow) ProcessInfo(std::move(parent_name), header.parent_pid);
  if (me == nullptr || parent == nullptr) bad_record("out of memory");
  ProcessInfoAccess::set_identity(*me, std::move(identity));
  {
    std::lock_guard lock(table.mutex);
    table.current = me;
    table.parent = parent;
    table.children.clear();
    table.name_counter = 0;
    table.in_child = true;
  }
  if (header.daemon != 0) {
    if (death_parent == 0) {
      after_fork::arm_death_signal(header.parent_pid, header.forked_on_main_thread != 0);
    } else {
      after_fork::arm_death_signal(death_parent, parent_forked_on_main_thread);
    }
  }
  int code = 0;
  try {
    IncomingFds fds(std::move(handle_fds));
    if (header.has_entry != 0) {
      auto entry = reinterpret_cast<LaunchEntry>(const_cast<void*>(code_pointer_from(header.entry)));
      if (entry == nullptr) throw ProcessError("the launch record names code that is not in this program");
      entry(std::span<const std::byte>(reinterpret_cast<const std::byte*>(at), header.payload_size), fds);
    }
  } catch (...) {
    after_fork::print_exception(me->name().c_str());
    code = 1;
  }
  finish_child_and_exit(code);
}

}  // namespace mp::detail
