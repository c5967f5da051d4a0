// A program outside mp's tree linking mp::redis (no server needed: a malformed
// url is refused before any connection, with mp::ValueError).
#include <mp/redis.hpp>

#include <cstdio>

int main() {
  try {
    mp::redis::Queue<int> queue("not-a-url", "consumer");
    std::printf("redis consumer failed: a malformed url was accepted\n");
    return 1;
  } catch (const mp::ValueError& error) {
    std::printf("redis consumer ok: %s\n", error.what());
    return 0;
  }
}
