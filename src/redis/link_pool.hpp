// src/redis/link_pool.hpp — a handful of idle links for one process (private to libmp_redis).
//
// A thread takes a link for a call and gives it back, so blocking calls from
// several threads never share a socket. At most 8 idle links are kept.
//
// Safety: take/give back from any thread (mutex_ guards idle_). Lifetime: the
// pool belongs to the process that made it; a forked child calls
// close_after_fork() and never uses it.
#pragma once

#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "link.hpp"

namespace mp::redis::impl {

class LinkPool {
 public:
  explicit LinkPool(Endpoint endpoint) : endpoint_(std::move(endpoint)) {}
  LinkPool(const LinkPool&) = delete;
  LinkPool& operator=(const LinkPool&) = delete;

  class Lease {
   public:
    Lease(LinkPool* pool, std::unique_ptr<Link> link) : pool_(pool), link_(std::move(link)) {}
    Lease(Lease&&) noexcept = default;
    Lease& operator=(Lease&&) = delete;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() {
      if (link_) pool_->give_back(std::move(link_));
    }
    Link* operator->() const noexcept { return link_.get(); }
    Link& operator*() const noexcept { return *link_; }

   private:
    LinkPool* pool_;
    std::unique_ptr<Link> link_;
  };

  // LinkPool::take(): an idle link (maybe not connected), or a new one.
  Lease take();
  // LinkPool::close_after_fork(): in a child that abandons this pool: closes the child's
  // copies of the idle sockets (the parent's connections are untouched), sends nothing.
  void close_after_fork() noexcept;
  // LinkPool::settle_all(deadline): every idle link reads what its run_later commands owe.
  void settle_all(Deadline deadline) noexcept;
  [[nodiscard]] const Endpoint& endpoint() const noexcept { return endpoint_; }

 private:
  void give_back(std::unique_ptr<Link> link);

  Endpoint endpoint_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<Link>> idle_;  // guarded by mutex_
};

}  // namespace mp::redis::impl
