// src/redis/per_process.cpp — keep_forever (see per_process.hpp).
#include "per_process.hpp"

#include <vector>

namespace mp::redis::impl {

void keep_forever(std::shared_ptr<void> object) {
  static auto* kept = new std::vector<std::shared_ptr<void>>();  // never freed: see per_process.hpp
  static std::mutex mutex;
  std::lock_guard lock(mutex);
  kept->push_back(std::move(object));
}

}  // namespace mp::redis::impl
