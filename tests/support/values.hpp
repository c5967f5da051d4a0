// tests/support/values.hpp — values the unit tests make and check in more
// than one file: a reproducible byte pattern for large messages, and the
// message of the exception a call throws.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace mp::test {

// pattern(size, seed): `size` pseudo-random bytes, the same for the same seed,
// so a message that changed on the way (lost, reordered or torn) is seen.
inline std::vector<std::byte> pattern(std::size_t size, unsigned seed) {
  std::vector<std::byte> out(size);
  std::uint32_t x = seed * 2654435761U + 1;
  for (auto& b : out) {
    x = x * 1664525U + 1013904223U;
    b = static_cast<std::byte>(x >> 24);
  }
  return out;
}

// message_of<Exception>(call): what() of the Exception `call` throws; a test
// failure (and "") if it throws nothing.
template <class Exception, class F>
std::string message_of(F call) {
  try {
    call();
  } catch (const Exception& error) {
    return error.what();
  }
  ADD_FAILURE() << "expected an exception";
  return {};
}

}  // namespace mp::test
