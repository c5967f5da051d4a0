// src/pool_worker_channel.cpp — WorkerChannel: one worker's socket.
#include "pool_worker_channel.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace mp::detail {

using namespace pool_wire;

void WorkerChannel::queue(const void* header, std::size_t size, const std::byte* payload,
                          std::size_t payload_size) {
  const auto* raw = static_cast<const std::byte*>(header);
  outbox_.insert(outbox_.end(), raw, raw + size);
  if (payload_size > 0) outbox_.insert(outbox_.end(), payload, payload + payload_size);
}

void WorkerChannel::send_chunk(const QueuedChunk& chunk) {
  TaskHeader header{static_cast<std::uint32_t>(ToWorker::run_chunk), chunk.item_count, chunk.task_id,
                    static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(chunk.runner)),
                    chunk.payload.size()};
  queue(&header, sizeof header, chunk.payload.data(), chunk.payload.size());  // the caller flushes
}

void WorkerChannel::send_exit() {
  TaskHeader header{static_cast<std::uint32_t>(ToWorker::exit), 0, 0, 0, 0};
  queue(&header, sizeof header, nullptr, 0);
  flush();
}

void WorkerChannel::flush() noexcept {
  while (outbox_sent_ < outbox_.size()) {
    const ssize_t n = ::send(fd_.get(), outbox_.data() + outbox_sent_, outbox_.size() - outbox_sent_,
                             MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      outbox_sent_ += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;  // the supervisor polls POLLOUT
    break;  // EPIPE/ECONNRESET: the worker is dead; its exit report requeues or fails its chunks
  }
  outbox_.clear();
  outbox_sent_ = 0;
}

std::vector<ResultFrame> WorkerChannel::read() {
  std::vector<ResultFrame> frames;
  if (!fd_ || eof_) return frames;
  constexpr std::size_t kReadSize = std::size_t{1} << 16;
  std::size_t budget = std::size_t{8} << 20;  // then let the other workers have a turn
  while (budget > 0) {
    const std::size_t old_size = inbox_.size();
    inbox_.resize(old_size + kReadSize);
    const ssize_t n = ::read(fd_.get(), inbox_.data() + old_size, kReadSize);
    inbox_.resize(old_size + static_cast<std::size_t>(std::max<ssize_t>(n, 0)));
    if (n > 0) {
      budget -= std::min(budget, static_cast<std::size_t>(n));
      if (static_cast<std::size_t>(n) < kReadSize) break;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) eof_ = true;
    break;
  }
  std::size_t at = 0;
  while (inbox_.size() - at >= sizeof(ResultHeader)) {
    ResultHeader header;
    std::memcpy(&header, inbox_.data() + at, sizeof header);
    if (inbox_.size() - at - sizeof header < header.payload_size) break;
    const auto begin = inbox_.begin() + static_cast<std::ptrdiff_t>(at + sizeof header);
    frames.push_back(
        {header, std::vector<std::byte>(begin, begin + static_cast<std::ptrdiff_t>(header.payload_size))});
    at += sizeof header + header.payload_size;
  }
  inbox_.erase(inbox_.begin(), inbox_.begin() + static_cast<std::ptrdiff_t>(at));
  return frames;
}

FailurePtr decode_failure(const std::vector<std::byte>& bytes, const std::string& prefix) {
  std::uint32_t type_size = 0;
  std::string type = "unknown exception";
  std::string message;
  if (bytes.size() >= sizeof type_size) {
    std::memcpy(&type_size, bytes.data(), sizeof type_size);
    if (bytes.size() - sizeof type_size >= type_size) {
      const char* text = reinterpret_cast<const char*>(bytes.data()) + sizeof type_size;
      type.assign(text, type_size);
      message.assign(text + type_size, bytes.size() - sizeof type_size - type_size);
    }
  }
  return remote_failure(type, prefix + message);
}

}  // namespace mp::detail
