// src/pool_worker_channel.cpp — WorkerChannel: the pool's end of one worker's task ring.
#include "pool_worker_channel.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace mp::detail {

using namespace pool_wire;

void WorkerChannel::queue(const void* header, std::size_t size, const std::byte* payload,
                          std::size_t payload_size) {
  const auto* raw = static_cast<const std::byte*>(header);
  batch_.insert(batch_.end(), raw, raw + size);
  if (payload_size > 0) batch_.insert(batch_.end(), payload, payload + payload_size);
}

void WorkerChannel::send_chunk(const QueuedChunk& chunk) {
  TaskHeader header{static_cast<std::uint32_t>(ToWorker::run_chunk), chunk.item_count, chunk.task_id,
                    static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(chunk.runner)),
                    chunk.payload.size()};
  queue(&header, sizeof header, chunk.payload.data(), chunk.payload.size());  // the dispatcher flushes
}

void WorkerChannel::send_exit() {
  TaskHeader header{static_cast<std::uint32_t>(ToWorker::exit), 0, 0, 0, 0};
  queue(&header, sizeof header, nullptr, 0);
  flush();
}

void WorkerChannel::flush() noexcept {
  if (batch_.empty() || ring_ == nullptr) return;
  // Non-blocking: only the pool (under its mutex) puts here, so the
  // producer lock is free; would_block means the ring is full.
  const RingStatus status = ring_->put(batch_, Deadline::never(), true);
  if (status == RingStatus::would_block) return;  // the supervisor retries
  // ok; or a broken ring (lock_error, corrupted): the worker cannot get
  // anything more, its death (or the pool's end) settles its chunks.
  batch_.clear();
}

void WorkerChannel::discard() noexcept {
  batch_.clear();
  if (ring_ == nullptr) return;
  std::vector<std::byte> scratch;
  for (;;) {
    GetTarget target;
    target.buffer = &scratch;
    if (ring_->get(target, Deadline::never(), true) != RingStatus::ok) break;
    scratch.clear();
  }
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
