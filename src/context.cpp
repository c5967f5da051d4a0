// Start methods (mp/context.hpp): the chosen method, init(), parent_process(),
// the fork-with-threads warning, the registry of MP_REGISTER_PROCESS types and
// code addresses that survive exec. The fork server's client is in
// forkserver.cpp, the spawn launcher in after_fork/spawn_launch.cpp.
#include "mp/context.hpp"

#include <fcntl.h>
#include <link.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "after_fork/after_fork.hpp"
#include "mp/errors.hpp"
#include "process_table.hpp"
#include "start_methods.hpp"

namespace mp {
namespace detail {
namespace {

struct StartMethodState {
  std::mutex mutex;  // guards everything below
  std::optional<StartMethod> chosen;
  std::vector<std::string> arguments;
  std::vector<RegisteredProcess> registered;
};

StartMethodState& state() {
  static StartMethodState* instance = new StartMethodState;  // never destroyed: used at exit
  return *instance;
}

// relaxed: flags read and written without ordering other data.
std::atomic<bool> g_process_started{false};
std::atomic<bool> g_method_chosen{false};
std::atomic<bool> g_init_called{false};
std::atomic<bool> g_warned{false};

struct FindObject {
  std::uintptr_t address = 0;
  std::uint32_t index = 0;
  std::uint32_t found = UINT32_MAX;
  std::uintptr_t base = 0;
};

int find_object(dl_phdr_info* info, std::size_t, void* data) {
  auto* search = static_cast<FindObject*>(data);
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& segment = info->dlpi_phdr[i];
    if (segment.p_type != PT_LOAD) continue;
    const std::uintptr_t start = info->dlpi_addr + segment.p_vaddr;
    if (search->address >= start && search->address < start + segment.p_memsz) {
      search->found = search->index;
      search->base = info->dlpi_addr;
      return 1;
    }
  }
  ++search->index;
  return 0;
}

struct FindBase {
  std::uint32_t wanted = 0;
  std::uint32_t index = 0;
  bool found = false;
  std::uintptr_t base = 0;
};

int find_base(dl_phdr_info* info, std::size_t, void* data) {
  auto* search = static_cast<FindBase*>(data);
  if (search->index++ != search->wanted) return 0;
  search->found = true;
  search->base = info->dlpi_addr;
  return 1;
}

// A re-run of this program as the fork server (forkserver.cpp starts it with
// MP_FORKSERVER_FD when this process already had threads): become the server
// before main() runs. Started from a thread other than the main one
// (MP_FORKSERVER_PARENT), it first re-arms the death signal's handler, which
// exec dropped (SIGRTMAX stayed blocked until now: see forkserver.cpp).
__attribute__((constructor)) void become_forkserver_if_asked() {
  const char* fd_text = std::getenv("MP_FORKSERVER_FD");
  if (fd_text == nullptr) return;
  const int fd = std::atoi(fd_text);
  ::unsetenv("MP_FORKSERVER_FD");
  if (const char* parent_text = std::getenv("MP_FORKSERVER_PARENT")) {
    const pid_t parent = static_cast<pid_t>(std::atoi(parent_text));
    ::unsetenv("MP_FORKSERVER_PARENT");
    after_fork::arm_death_signal(parent, false);
  }
  forkserver_main(fd);
}

}  // namespace

CodeAddress code_address_of(const void* function) noexcept {
  FindObject search;
  search.address = reinterpret_cast<std::uintptr_t>(function);
  ::dl_iterate_phdr(&find_object, &search);
  CodeAddress address;
  if (search.found == UINT32_MAX) return address;
  address.object = search.found;
  address.offset = search.address - search.base;
  return address;
}

const void* code_pointer_from(CodeAddress address) noexcept {
  if (address.object == UINT32_MAX) return nullptr;
  FindBase search;
  search.wanted = address.object;
  ::dl_iterate_phdr(&find_base, &search);
  if (!search.found) return nullptr;
  return reinterpret_cast<const void*>(search.base + address.offset);
}

void register_process(const RegisteredProcess& registration) {
  StartMethodState& s = state();
  std::lock_guard lock(s.mutex);
  s.registered.push_back(registration);
}

const RegisteredProcess* find_registered_process(const std::type_info& type) noexcept {
  StartMethodState& s = state();
  std::lock_guard lock(s.mutex);
  for (const RegisteredProcess& each : s.registered)
    if (*each.type == type) return &each;  // never erased: the pointer stays valid
  return nullptr;
}

void ProcessAccess::adopt_current_identity(Process& process) {
  process.info_ = current_process();
  process.creator_pid_ = ::getppid();  // not ours to start or join: it is us
}

void note_process_started() noexcept { g_process_started.store(true, std::memory_order_relaxed); }

bool init_was_called() noexcept { return g_init_called.load(std::memory_order_relaxed); }

const std::vector<std::string>& saved_arguments() noexcept { return state().arguments; }

int count_threads() noexcept {
  char buffer[1024];
  const int fd = ::open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  const ssize_t n = ::read(fd, buffer, sizeof buffer - 1);
  ::close(fd);
  if (n <= 0) return 0;
  buffer[n] = '\0';
  // Fields after the command name (which may contain spaces) start after the last ')'.
  const char* at = std::strrchr(buffer, ')');
  if (at == nullptr) return 0;
  // ") S ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime priority
  // nice num_threads"
  int field = 2;
  for (const char* p = at + 1; *p != '\0'; ++p) {
    if (*p == ' ') {
      ++field;
      if (field == 20) return std::atoi(p + 1);
    }
  }
  return 0;
}

void warn_if_forking_with_threads(bool method_chosen) noexcept {
  if (method_chosen || g_method_chosen.load(std::memory_order_relaxed)) return;
  if (g_warned.load(std::memory_order_relaxed)) return;
  const int threads = count_threads();
  if (threads <= 1) return;
  if (g_warned.exchange(true, std::memory_order_relaxed)) return;  // one warning per process
  std::fprintf(stderr,
               "mp: warning: this process (pid %d) has %d threads; fork() copies only the calling one, so a "
               "child may deadlock on a lock another thread held. Use mp::set_start_method("
               "mp::StartMethod::forkserver) (or pass StartMethod::forkserver to the Process, or set "
               "PoolOptions::start_method for a Pool), or choose "
               "StartMethod::fork explicitly to silence this warning.\n",
               static_cast<int>(::getpid()), threads);
}

}  // namespace detail

const char* to_string(StartMethod method) noexcept {
  switch (method) {
    case StartMethod::fork: return "fork";
    case StartMethod::forkserver: return "forkserver";
    case StartMethod::spawn: return "spawn";
  }
  return "?";
}

void init(int argc, char** argv) {
  detail::StartMethodState& s = detail::state();
  {
    std::lock_guard lock(s.mutex);
    s.arguments.assign(argv, argv + argc);
  }
  detail::g_init_called.store(true, std::memory_order_relaxed);
  if (const char* fd_text = std::getenv("MP_SPAWN_FD")) {
    const int fd = std::atoi(fd_text);
    ::unsetenv("MP_SPAWN_FD");
    // nullptr: the handle fds were inherited at the numbers the record lists;
    // 0: the record says how to arm the death signal.
    detail::run_launch(fd, nullptr, 0, 0, true);
  }
  detail::start_forkserver_at_init();
}

void set_start_method(StartMethod method, bool force) {
  detail::StartMethodState& s = detail::state();
  std::lock_guard lock(s.mutex);
  if (!force && detail::g_process_started.load(std::memory_order_relaxed) && s.chosen != method)
    throw ProcessError(std::string("mp::set_start_method(") + to_string(method) +
                       "): a process was already started with the start method \"" +
                       to_string(s.chosen.value_or(StartMethod::fork)) +
                       "\"; pass force = true to change it");
  s.chosen = method;
  detail::g_method_chosen.store(true, std::memory_order_relaxed);
}

StartMethod get_start_method() {
  detail::StartMethodState& s = detail::state();
  std::lock_guard lock(s.mutex);
  return s.chosen.value_or(StartMethod::fork);
}

std::vector<StartMethod> get_all_start_methods() {
  return {StartMethod::fork, StartMethod::forkserver, StartMethod::spawn};
}

std::optional<ProcessInfo> parent_process() {
  const detail::ProcessTable& table = detail::process_table();
  if (table.parent == nullptr) return std::nullopt;
  return *table.parent;
}

}  // namespace mp
