// src/redis/command.hpp — one Redis command: its arguments, binary safe (private to libmp_redis).
#pragma once

#include <cstddef>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace mp::redis::impl {

class Command {
 public:
  Command() = default;
  Command(std::initializer_list<std::string_view> args) {
    for (auto a : args) add(a);
  }
  Command& add(std::string_view arg) {
    args_.emplace_back(arg);
    return *this;
  }
  Command& add(std::span<const std::byte> bytes) {
    args_.emplace_back(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    return *this;
  }
  Command& add(long long number) {
    args_.push_back(std::to_string(number));
    return *this;
  }
  [[nodiscard]] const std::vector<std::string>& args() const noexcept { return args_; }

 private:
  std::vector<std::string> args_;
};

// random_hex(bytes): a random hex string of 2*bytes characters (from getrandom).
std::string random_hex(std::size_t bytes);

}  // namespace mp::redis::impl
