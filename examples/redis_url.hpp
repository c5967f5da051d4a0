// examples/redis_url.hpp — which Redis server the Redis examples talk to.
#pragma once

#include <cstdlib>
#include <string>

// server_url(arg): a redis:// url as given, a bare port on this machine, or,
// when no argument was given, $MP_REDIS_URL, $MP_REDIS_PORT on this machine,
// else redis://127.0.0.1:6379.
inline std::string server_url(const char* arg) {
  std::string given = arg != nullptr ? arg : "";
  if (given.empty()) {
    if (const char* env = std::getenv("MP_REDIS_URL")) return env;
    if (const char* port = std::getenv("MP_REDIS_PORT")) return std::string("redis://127.0.0.1:") + port;
    return "redis://127.0.0.1:6379";
  }
  if (given.rfind("redis://", 0) == 0) return given;
  return "redis://127.0.0.1:" + given;  // a bare port
}
