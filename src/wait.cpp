// mp::wait — poll(2) over a list of fds (see include/mp/wait.hpp).
#include "mp/wait.hpp"

#include <poll.h>

#include <cerrno>
#include <string>

#include "mp/detail/system_error.hpp"
#include "mp/errors.hpp"

namespace mp::detail {

std::vector<int> wait_for_fds(std::span<const int> fds, Deadline deadline) {
  if (fds.empty() && deadline.is_never())
    throw ValueError("mp::wait: no file descriptors given and no timeout: it would block forever");
  std::vector<pollfd> entries;
  entries.reserve(fds.size());
  for (int fd : fds) {
    if (fd < 0) throw ValueError("mp::wait: " + std::to_string(fd) + " is not a file descriptor");
    entries.push_back(pollfd{fd, POLLIN, 0});
  }
  for (;;) {
    int rc = ::poll(entries.data(), entries.size(), deadline.poll_timeout_ms());
    if (rc < 0) {
      if (errno == EINTR) continue;  // the deadline is absolute: retrying never stretches the wait
      throw_system_error("poll", "mp::wait", errno);
    }
    if (rc == 0) {
      // poll rounds its timeout to ms; a wake-up a hair early must not return "nothing" too soon.
      if (deadline.expired()) return {};
      continue;
    }
    std::vector<int> ready;
    for (const pollfd& entry : entries) {
      if (entry.revents & POLLNVAL)
        throw ValueError("mp::wait: file descriptor " + std::to_string(entry.fd) + " is not open");
      if (entry.revents != 0) ready.push_back(entry.fd);  // POLLIN, POLLHUP or POLLERR: read() won't block
    }
    return ready;
  }
}

}  // namespace mp::detail
