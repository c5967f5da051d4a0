// src/redis/link_pool.cpp — LinkPool (see link_pool.hpp).
#include "link_pool.hpp"

namespace mp::redis::impl {

LinkPool::Lease LinkPool::take() {
  {
    std::lock_guard lock(mutex_);
    if (!idle_.empty()) {
      auto link = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(link));
    }
  }
  return Lease(this, std::make_unique<Link>(endpoint_));
}

void LinkPool::close_after_fork() noexcept {
  std::unique_lock lock(mutex_, std::try_to_lock);  // a parent thread may have held it at fork
  if (!lock.owns_lock()) return;
  for (auto& link : idle_) link->close_after_fork();
}

void LinkPool::settle_all(Deadline deadline) noexcept {
  std::lock_guard lock(mutex_);
  for (auto& link : idle_) (void)link->settle(deadline);
}

void LinkPool::give_back(std::unique_ptr<Link> link) {
  std::lock_guard lock(mutex_);
  if (idle_.size() < 8) idle_.push_back(std::move(link));
}

}  // namespace mp::redis::impl
