// src/redis/lease_keeper.cpp — LeaseKeeper (see lease_keeper.hpp).
#include "lease_keeper.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "mp/errors.hpp"

namespace mp::redis::impl {

LeaseKeeper::LeaseKeeper(const Endpoint& endpoint, std::chrono::milliseconds lease, std::string holder,
                         Clock::time_point leased_at, Renew renew)
    : link_(endpoint),
      lease_(lease),
      renew_(std::move(renew)),
      holder_(std::move(holder)),
      renewed_at_(leased_at) {
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd_ < 0) throw mp::Error(std::string("eventfd(redis lease keeper): ") + std::strerror(errno));
  link_.set_interrupt(wake_fd_);
  thread_ = std::thread([this] { loop(); });
}

LeaseKeeper::~LeaseKeeper() {
  (void)stop();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

bool LeaseKeeper::stop() noexcept {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);  // interrupts a renewal in flight
  if (thread_.joinable()) thread_.join();
  link_.disconnect();
  std::lock_guard lock(mutex_);
  return lost_;
}

std::string LeaseKeeper::holder() {
  std::lock_guard lock(mutex_);
  return holder_;
}

bool LeaseKeeper::surely_held(const std::string& holder) {
  std::lock_guard lock(mutex_);
  return !lost_ && holder == holder_ && Clock::now() - renewed_at_ < lease_ / 2;
}

void LeaseKeeper::abandon_after_fork() noexcept {
  link_.close_after_fork();
  if (wake_fd_ >= 0) ::close(wake_fd_);
  wake_fd_ = -1;
}

void LeaseKeeper::loop() {
  const auto period = lease_ / 3;
  std::unique_lock lock(mutex_);
  while (!stop_ && !lost_) {
    wake_.wait_for(lock, period, [this] { return stop_; });
    if (stop_) break;
    std::string holder = holder_;
    lock.unlock();
    auto sent_at = Clock::now();
    std::optional<std::string> next;
    bool answered = false;
    try {
      next = renew_(link_, holder, Deadline::after(period));
      answered = true;
    } catch (...) {  // NOLINT(bugprone-empty-catch): could not tell; try again next tick
      link_.disconnect();
    }
    lock.lock();
    if (!answered) continue;
    if (!next) {
      lost_ = true;
    } else {
      holder_ = *next;
      renewed_at_ = sent_at;
    }
  }
}

}  // namespace mp::redis::impl
