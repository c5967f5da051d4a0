// queue_demo: a child process puts its results on a Queue; the parent gets them.
// Python:
//   def work(q): [q.put(i * i) for i in range(5)]; q.put("done")
//   q = Queue(); p = Process(target=work, args=(q,)); p.start(); ...
#include <cstdio>
#include <string>

#include "mp/mp.hpp"

int main() {
  mp::Queue<std::string> q;
  mp::Process child(
      [](mp::Queue<std::string> results) {
        for (int i = 1; i <= 5; ++i)
          results.put("square of " + std::to_string(i) + " is " + std::to_string(i * i));
        results.put("done");
      },
      q);
  child.start();
  for (std::string line = q.get(); line != "done"; line = q.get())
    std::printf("parent got: %s\n", line.c_str());
  child.join();
  std::printf("child exited with %d, queue empty: %s\n", child.exitcode().value_or(-1),
              q.empty() ? "yes" : "no");
}
