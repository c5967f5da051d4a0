// src/redis/command.cpp — random_hex (see command.hpp).
#include <sys/random.h>

#include <cerrno>
#include <cstring>

#include "command.hpp"
#include "mp/errors.hpp"

namespace mp::redis::impl {

std::string random_hex(std::size_t bytes) {
  std::vector<unsigned char> raw(bytes);
  std::size_t got = 0;
  while (got < bytes) {
    ssize_t n = ::getrandom(raw.data() + got, bytes - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw mp::Error(std::string("getrandom(redis token): ") + std::strerror(errno));
    }
    got += static_cast<std::size_t>(n);
  }
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes * 2);
  for (unsigned char c : raw) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

}  // namespace mp::redis::impl
