// mp/detail/fd.hpp — an owning file descriptor.
//
// Safety: a UniqueFd is a plain value owned by one thread; fds are
// process-local, so a child inherits a copy of the number at fork and owns it
// independently. Lifetime: close() on destruction, never retried on EINTR
// (Linux frees the descriptor even when close reports EINTR).
#pragma once

#include <unistd.h>

#include <utility>

namespace mp::detail {

class UniqueFd {
 public:
  UniqueFd() noexcept = default;
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(std::exchange(other.fd_, -1));
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  [[nodiscard]] int get() const noexcept { return fd_; }
  [[nodiscard]] bool valid() const noexcept { return fd_ >= 0; }
  explicit operator bool() const noexcept { return valid(); }

  // UniqueFd::release(): gives up ownership without closing.
  [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }

  // UniqueFd::reset(fd): closes the old descriptor (once, no EINTR retry).
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

}  // namespace mp::detail
