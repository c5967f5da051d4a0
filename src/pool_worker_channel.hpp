// src/pool_worker_channel.hpp — private to the Pool: the supervisor's end of
// one worker's stream socket (task frames out, result frames in).
//
// Writes never block: frames wait in an outbox and the supervisor polls for
// POLLOUT (wants_write()). Reads never block: read() takes what is there (at
// most a budget, so one chatty worker cannot starve the others) and returns
// the complete result frames.
//
// Safety: the outbox half (send_chunk, send_exit, flush, wants_write) is used
// under the pool's mutex (callers dispatch too); the inbox half (read, eof)
// by the supervisor thread only.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "mp/detail/fd.hpp"
#include "mp/detail/pool_job.hpp"
#include "pool_dispatcher.hpp"
#include "pool_wire.hpp"

namespace mp::detail {

struct ResultFrame {
  pool_wire::ResultHeader header;
  std::vector<std::byte> payload;
};

class WorkerChannel {
 public:
  WorkerChannel() = default;
  explicit WorkerChannel(UniqueFd fd) : fd_(std::move(fd)) {}

  [[nodiscard]] bool is_open() const noexcept { return fd_.valid(); }
  [[nodiscard]] int fd() const noexcept { return fd_.get(); }

  // WorkerChannel::send_chunk(chunk): queues a task frame; flush() writes it
  // (once per batch: one system call for a window of chunks).
  void send_chunk(const QueuedChunk& chunk);
  // WorkerChannel::send_exit(): queues the exit frame and writes what the
  // socket takes now.
  void send_exit();
  // WorkerChannel::flush(): writes the outbox until the socket is full. A
  // dead worker's frames are dropped (its exit report handles its chunks).
  void flush() noexcept;
  [[nodiscard]] bool wants_write() const noexcept { return outbox_sent_ < outbox_.size(); }

  // WorkerChannel::read(): what the worker sent so far, as complete frames.
  std::vector<ResultFrame> read();
  // WorkerChannel::eof(): the worker closed its end (it exited).
  [[nodiscard]] bool eof() const noexcept { return eof_; }

 private:
  void queue(const void* header, std::size_t size, const std::byte* payload, std::size_t payload_size);

  UniqueFd fd_;
  std::vector<std::byte> outbox_;  // pool mutex
  std::size_t outbox_sent_ = 0;    // pool mutex
  std::vector<std::byte> inbox_;   // supervisor only
  bool eof_ = false;               // supervisor only
};

// decode_failure(payload, prefix): a worker's error frame (u32 type length,
// type, message) as a RemoteError failure whose message starts with prefix.
FailurePtr decode_failure(const std::vector<std::byte>& payload, const std::string& prefix);

}  // namespace mp::detail
