// process_basics — Python's first multiprocessing example:
//
//   def f(name):
//       print('hello', name)
//   if __name__ == '__main__':
//       p = Process(target=f, args=('bob',))
//       p.start()
//       p.join()
#include <unistd.h>

#include <cassert>
#include <cstdio>
#include <string>

#include "mp/process.hpp"

void greet(std::string name) {
  std::printf("hello %s (from %s, pid %d, parent %d)\n", name.c_str(), mp::current_process().name().c_str(),
              static_cast<int>(::getpid()), static_cast<int>(::getppid()));
}

int main() {
  // The example at the top of mp/process.hpp:
  mp::Process p(greet, std::string("bob"));  // args decay-copied, as std::thread
  p.start();                                 // fork; the child runs greet("bob")
  p.join();                                  // wait and reap
  assert(p.exitcode() == 0);

  std::printf("%s (pid %d) ran %s with pid %d, exitcode %d\n", mp::current_process().name().c_str(),
              static_cast<int>(::getpid()), p.name().c_str(), static_cast<int>(p.pid()), *p.exitcode());
  return p.exitcode() == 0 ? 0 : 1;
}
