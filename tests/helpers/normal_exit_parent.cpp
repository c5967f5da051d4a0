// Helper for process_test: a parent that ends normally ("return" from main or
// "mp_exit") while a daemon child would run forever and a non-daemon child is
// still working. mp's atexit hook must terminate the daemon and join the
// non-daemon, so this program's exit leaves no child behind.
//
// The Process objects are statics: constructed before the first start()
// registers mp's hook, they are destroyed after the hook ran, so it is the
// hook (not ~Process) that does the work here; with mp::exit (std::exit in the
// main program) main's locals would not be destroyed at all.
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "mp/process.hpp"

int main(int argc, char** argv) {
  const bool use_mp_exit = argc > 1 && std::strcmp(argv[1], "mp_exit") == 0;
  static mp::Process daemon([] {
    ::sleep(60);
    std::printf("daemon woke\n");  // never: the exit hook terminates it first
  });
  daemon.set_daemon(true);
  static mp::Process worker([] {
    ::usleep(200000);
    std::printf("non-daemon finished\n");
  });
  daemon.start();
  worker.start();
  std::printf("daemon pid %d\n", static_cast<int>(daemon.pid()));
  std::printf("main done\n");
  std::fflush(stdout);
  if (use_mp_exit) mp::exit(0);
  return 0;
}
