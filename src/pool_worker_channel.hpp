// src/pool_worker_channel.hpp — private to the Pool: the pool's end of one
// worker's task ring (pool_wire.hpp, "Channels").
//
// send_chunk() appends a task frame to the batch being built; flush() puts
// the batch as one ring record, so a window of small chunks costs the worker
// one get. A put never blocks (the pool's mutex is held): the ring is a
// sparse reservation that only a 2 GiB backlog fills, and a batch it cannot
// take now stays here (wants_write()) until a later flush, which the
// supervisor retries on a short timer.
//
// Safety: every member is used under the pool's mutex. Lifetime: the ring
// belongs to PoolCore; a channel only points to it.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "mp/detail/pool_job.hpp"
#include "mp/detail/ring.hpp"
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
  explicit WorkerChannel(Ring* ring) : ring_(ring) {}

  [[nodiscard]] bool is_open() const noexcept { return ring_ != nullptr; }

  // WorkerChannel::send_chunk(chunk): appends a task frame to the batch;
  // flush() puts it (once per dispatch: one record for a window of chunks).
  void send_chunk(const QueuedChunk& chunk);
  // WorkerChannel::send_exit(): appends the exit frame and flushes.
  void send_exit();
  // WorkerChannel::flush(): puts the batch as one record if the ring takes
  // it now; else keeps it (wants_write()).
  void flush() noexcept;
  [[nodiscard]] bool wants_write() const noexcept { return !batch_.empty(); }

  // WorkerChannel::discard(): the worker died: empties its ring (the chunks
  // it had not started go back to the dispatcher, INV4) and the batch.
  // Taking the ring's consumer side repairs it if the worker died holding it.
  void discard() noexcept;

 private:
  void queue(const void* header, std::size_t size, const std::byte* payload, std::size_t payload_size);

  Ring* ring_ = nullptr;
  std::vector<std::byte> batch_;  // frames not yet put
};

// decode_failure(payload, prefix): a worker's error frame (u32 type length,
// type, message) as a RemoteError failure whose message starts with prefix.
FailurePtr decode_failure(const std::vector<std::byte>& payload, const std::string& prefix);

}  // namespace mp::detail
