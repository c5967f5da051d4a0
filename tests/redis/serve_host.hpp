// tests/redis/serve_host.hpp — a worker host (mp::redis::serve) in a forked
// child, for the Redis Pool tests: started with start_host, stopped the way an
// operator stops one (SIGTERM), which must end it with exit code 0.
#pragma once

#include <signal.h>

#include <gtest/gtest.h>

#include <string>

#include "mp/redis/pool.hpp"
#include "support/child.hpp"

namespace mp::test {

// start_host(url, name, processes): a child running serve(url, name, {processes}).
inline pid_t start_host(const std::string& url, const std::string& name, int processes) {
  return fork_child([=] { return mp::redis::serve(url, name, {processes}); });
}

// stop_host(host): SIGTERM, then reaped; a host that does not exit 0 fails the test.
inline void stop_host(pid_t host) {
  ::kill(host, SIGTERM);
  EXPECT_EQ(wait_child(host), 0);
}

}  // namespace mp::test
