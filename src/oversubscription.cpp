// src/oversubscription.cpp — see mp/detail/oversubscription.hpp.
#include "mp/detail/oversubscription.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <cstdlib>

#include "mp/detail/clock.hpp"

namespace mp::detail {
namespace {

// Relaxed everywhere: a process-local hint; a stale or racy value only makes
// one wait spin (or not) when it should not have.
std::atomic<std::int64_t> next_sample_ns{0};
std::atomic<bool> last_answer{false};

long online_cpus() noexcept {
  static const long cpus = [] {
    const long n = ::sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? n : 1L;
  }();
  return cpus;
}

// runnable_threads(): /proc/loadavg's "running/total" field's first number,
// or -1 if it cannot be read.
long runnable_threads() noexcept {
  const int fd = ::open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  std::array<char, 128> text{};
  const ssize_t n = ::read(fd, text.data(), text.size() - 1);
  ::close(fd);
  if (n <= 0) return -1;
  // "0.39 0.41 0.52 3/412 12345": skip three fields.
  const char* at = text.data();
  for (int field = 0; field < 3; ++field) {
    while (*at != '\0' && *at != ' ') ++at;
    while (*at == ' ') ++at;
  }
  char* end = nullptr;
  const long running = std::strtol(at, &end, 10);
  return (end != at && *end == '/') ? running : -1;
}

}  // namespace

bool cpus_oversubscribed() noexcept {
  const std::int64_t now =
      std::chrono::duration_cast<std::chrono::nanoseconds>(MonotonicClock::now().time_since_epoch()).count();
  if (now < next_sample_ns.load(std::memory_order_relaxed))
    return last_answer.load(std::memory_order_relaxed);
  next_sample_ns.store(
      now + std::chrono::duration_cast<std::chrono::nanoseconds>(kOversubscriptionSamplePeriod).count(),
      std::memory_order_relaxed);
  const long running = runnable_threads();
  const bool answer = too_many_runnable(running, online_cpus());  // -1 (unreadable): false
  last_answer.store(answer, std::memory_order_relaxed);
  return answer;
}

}  // namespace mp::detail
