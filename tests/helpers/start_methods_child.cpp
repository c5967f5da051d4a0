// Helper for the start method tests: a program that calls mp::init() first,
// so it can start children under spawn too. Usage:
//   start_methods_child MODE METHOD      METHOD: fork | forkserver | spawn
// MODE memory: the child exits with a global the parent changed after init()
//   (42 under fork, 0 under spawn: a fresh run; forkserver: 0 when the server
//   started at init);
// args: a capture-less lambda with a std::string and a std::vector (exit 7);
// subclass: a registered Process subclass with a field (exit 25);
// parent: the child checks parent_process() (exit 0);
// exception: the child throws mp::ValueError (exit 1, message on stderr);
// daemon: starts a daemon that sleeps, prints "daemon <pid> alive" and
//   "ready", then waits to be SIGKILLed.
// handles: every kind of handle passed to children (start_methods_handles.hpp),
//   one line "<kind> ok" (or "<kind> FAILED: why") each;
// handle_starts: 200 starts with a Queue, a Lock and a Pipe end as arguments;
//   prints "fds +N shm +M" (the growth of this process's fds and of /dev/shm).
// Prints "exitcode N" for the modes that join.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "mp/context.hpp"
#include "mp/errors.hpp"
#include "mp/process.hpp"
#include "start_methods_handles.hpp"

namespace {

int g_changed_after_init = 0;

void exit_with_global() { mp::exit(g_changed_after_init); }

void sleep_forever() {
  for (;;) ::pause();
}

struct Squarer : mp::Process {
  Squarer() = default;
  explicit Squarer(int value) : n(value) {}
  void run() override { mp::exit(n * n); }
  template <class Archive>
  void serialize(Archive& ar) {
    ar(n);
  }
  int n = 0;
};

}  // namespace

MP_REGISTER_PROCESS(Squarer)

int main(int argc, char** argv) {
  mp::init(argc, argv);
  g_changed_after_init = 42;
  if (argc < 3) return 2;
  const std::string mode = argv[1];
  const std::string name = argv[2];
  mp::StartMethod method = mp::StartMethod::fork;
  if (name == "forkserver") method = mp::StartMethod::forkserver;
  if (name == "spawn") method = mp::StartMethod::spawn;
  mp::set_start_method(method);

  auto report = [](mp::Process& p) {
    p.start();
    p.join();
    std::printf("exitcode %d\n", p.exitcode().value_or(-1000));
    return 0;
  };
  if (mode == "memory") {
    mp::Process p(method, exit_with_global);
    return report(p);
  }
  if (mode == "args") {
    mp::Process p(
        method, [](std::string s, std::vector<int> v) { mp::exit(static_cast<int>(s.size() + v.size())); },
        std::string("hello"), std::vector<int>{1, 2});
    return report(p);
  }
  if (mode == "subclass") {
    Squarer p(5);
    return report(p);
  }
  if (mode == "parent") {
    mp::Process p(
        method,
        [](int expected) {
          auto parent = mp::parent_process();
          mp::exit(parent && parent->pid() == expected && parent->name() == "MainProcess" ? 0 : 3);
        },
        static_cast<int>(::getpid()));
    return report(p);
  }
  if (mode == "exception") {
    mp::Process p(method, [] { throw mp::ValueError("bad thing"); });
    return report(p);
  }
  if (mode == "handles") return mp::test::run_handle_checks(method);
  if (mode == "handle_starts") return mp::test::run_handle_starts(method, 200);
  if (mode == "daemon") {
    mp::Process p(method, sleep_forever);
    p.set_daemon(true);
    p.start();
    std::printf("daemon %d alive\nready\n", static_cast<int>(p.pid()));
    std::fflush(stdout);
    sleep_forever();
  }
  return 2;
}
