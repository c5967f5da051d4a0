// wait_for_processes — multiprocessing.connection.wait() over sentinels: react
// to whichever child ends first, as in
//
//   for s in wait([p.sentinel for p in procs], timeout=10): ...
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <vector>

#include "mp/process.hpp"
#include "mp/wait.hpp"

void work(unsigned milliseconds) { ::usleep(milliseconds * 1000); }

int main() {
  // The example at the top of mp/wait.hpp:
  mp::Process quick(work, 0u), slow(work, 1000u);
  quick.start();
  slow.start();
  std::vector<int> sentinels{quick.sentinel(), slow.sentinel()};
  std::vector<int> ready = mp::wait(sentinels, std::chrono::seconds(10));  // {quick.sentinel()}

  std::printf("first ready: %s\n",
              ready.front() == quick.sentinel() ? quick.name().c_str() : slow.name().c_str());
  slow.terminate();                                           // no need to wait a second for it
  std::vector<int> slow_ready = mp::wait({slow.sentinel()});  // blocks until it has ended
  std::printf("after terminate: %s ended: %s\n", slow.name().c_str(), slow_ready.size() == 1 ? "yes" : "no");
  quick.join();
  slow.join();
  std::printf("exitcodes %d and %d\n", *quick.exitcode(), *slow.exitcode());
  return 0;
}
