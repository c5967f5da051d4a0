// Helper for process_test: output pending in C stdio and in an unsynchronised
// std::cout when start() forks must be printed once, not twice.
#include <cstdio>
#include <iostream>

#include "mp/process.hpp"

int main() {
  std::ios::sync_with_stdio(false);  // std::cout now buffers on its own
  std::cout << "cout-pending\n";
  std::printf("stdio-pending\n");
  mp::Process child([] {
    std::cout << "[child-cout]\n";
    std::printf("[child-stdio]\n");
  });
  child.start();
  child.join();
  std::cout << "[main-end]" << std::endl;
  return child.exitcode() == 0 ? 0 : 1;
}
