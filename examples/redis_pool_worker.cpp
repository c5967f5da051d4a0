// examples/redis_pool_worker.cpp URL — a worker host: runs the "collatz" pool's tasks in a local
// mp::Pool of 2 processes until SIGTERM. Start it on as many machines as you like.
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "mp/redis/pool.hpp"
#include "redis_pool_tasks.hpp"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s redis://host:port\n", argv[0]);
    return 2;
  }
  mp::redis::ServeOptions options;
  options.processes = 2;
  options.lease = std::chrono::seconds(1);  // if this host dies, its tasks go back within ~2 s
  std::printf("worker %d serving\n", static_cast<int>(::getpid()));
  std::fflush(stdout);
  int code = mp::redis::serve(argv[1], "collatz", options);
  std::printf("worker %d stopped\n", static_cast<int>(::getpid()));
  return code;
}
