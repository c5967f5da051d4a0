// terminate_process — Python's terminate() example:
//
//   p = multiprocessing.Process(target=time.sleep, args=(1000,))
//   print(p, p.is_alive())
//   p.start(); print(p, p.is_alive())
//   p.terminate(); time.sleep(0.1); print(p, p.is_alive())
//   p.join(); print(p, p.is_alive())
//   p.exitcode == -signal.SIGTERM
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "mp/process.hpp"

void report(const char* when, mp::Process& p) {
  auto code = p.exitcode();
  std::printf("%-10s %s alive=%s exitcode=%s\n", when, p.name().c_str(), p.is_alive() ? "true" : "false",
              code ? std::to_string(*code).c_str() : "none");
}

int main() {
  mp::Process p(::sleep, 1000u);
  report("created", p);
  p.start();
  report("started", p);
  p.terminate();
  p.join();
  report("joined", p);
  std::printf("exitcode == -SIGTERM: %s\n", p.exitcode() == -SIGTERM ? "true" : "false");
  return p.exitcode() == -SIGTERM ? 0 : 1;
}
