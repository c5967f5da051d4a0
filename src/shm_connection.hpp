// src/shm_connection.hpp — the shared-memory transport under mp::Pipe()
// (private to libmp): messages move through byte rings in a memfd region
// (src/shm_pipe_layout.hpp); the kernel is only involved when a side sleeps.
//
// Per Pipe, process-local handles on:
//   - the region (a memfd, MAP_SHARED; nothing in /dev/shm);
//   - a socketpair(AF_UNIX, SOCK_STREAM), one socket per end. It carries no
//     messages. It is how each end learns that the other is gone: the kernel
//     reports POLLHUP once every process closed (or died holding) the peer's
//     socket, exactly when the socket Pipe gave EOF/EPIPE. It is also the
//     sender's wake-up: a receiver that freed space for a sleeping sender
//     sends one byte on its socket, which makes the sender's readable.
//   - one eventfd per direction (EFD_NONBLOCK): the receiver's wake-up ("the
//     doorbell"), written by the sender only when the receiver is, or may be,
//     asleep in poll(2) (src/shm_connection_wait.cpp states the protocol).
// fileno() of a receiving end is an epoll fd (made on first use) that is
// readable when the doorbell rings or the peer's socket hangs up; from then
// on the doorbell is kept rung whenever bytes are unread (INV4), so
// mp::wait() and poll(2) on it work as on a socket.
//
// Safety: as ConnectionCore (one sender and one receiver per end at a time).
// Visibility: a message's bytes are published by a release store of
// write_position that the receiver's acquire load pairs with.
// Lifetime: every fd is O_CLOEXEC. Both ends made in one process share one
// ShmPipeFiles (the region and the eventfds); close() closes this end's
// socket (and epoll fd) at once and drops its share of the files.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "mp/detail/clock.hpp"
#include "mp/detail/connection_core.hpp"
#include "mp/detail/fd.hpp"
#include "mp/detail/shm.hpp"
#include "shm_pipe_layout.hpp"

namespace mp::detail {

// The files one process holds for a Pipe, shared by the ends it holds.
struct ShmPipeFiles {
  SharedRegion region;
  shm_pipe::ShmPipeRegion* layout = nullptr;
  UniqueFd doorbells[2];  // eventfd per channel: the receiver's wake-up
};

class ShmConnection final : public ConnectionCore {
 public:
  // send_channel / receive_channel: the channel this end sends on / receives
  // from, or -1 (a one-way Pipe's receiving / sending end).
  ShmConnection(std::shared_ptr<ShmPipeFiles> files, int socket, int send_channel,
                int receive_channel) noexcept;
  ~ShmConnection() override;

  void send_bytes(std::span<const std::byte> payload, const char* call) override;
  void send_frame(std::span<std::byte> frame, const char* call) override;
  [[nodiscard]] std::vector<std::byte> recv_bytes(const char* call) override;
  [[nodiscard]] bool poll(Deadline deadline) override;
  void close() noexcept override;
  [[nodiscard]] bool closed() const noexcept override { return socket_.load(std::memory_order_relaxed) < 0; }
  [[nodiscard]] bool readable() const noexcept override { return in_ != nullptr; }
  [[nodiscard]] bool writable() const noexcept override { return out_ != nullptr; }
  [[nodiscard]] int fileno() const override;
  [[nodiscard]] std::string name() const override;

  // ShmConnection::travel(out) / rebuild(fds, metadata): see
  // src/shm_connection_travel.cpp (the fds: socket, memfd, eventfds).
  [[nodiscard]] bool travel(ConnectionTravel& out) const override;
  static std::shared_ptr<ConnectionCore> rebuild(std::span<UniqueFd> fds,
                                                 std::span<const std::byte> metadata);

 private:
  enum class Input : unsigned char { ready, peer_closed, timed_out };

  void check_usable(const char* call, bool for_reading) const;

  // --- sending (src/shm_connection.cpp) ---
  void write_message(std::span<const std::byte> payload, const char* call);
  void check_receiver_alive(const char* call);
  [[nodiscard]] std::uint64_t free_space(std::uint64_t position) noexcept;
  void publish(std::uint64_t position) noexcept;
  [[noreturn]] void throw_peer_closed(const char* call) const;

  // --- waiting and waking (src/shm_connection_wait.cpp) ---
  // wait_for_input(target, deadline): until write_position > target.
  [[nodiscard]] Input wait_for_input(std::uint64_t target, Deadline deadline);
  // wait_for_space(position, call): until the ring has room after position;
  // ConnectionError if the receiving end is gone.
  void wait_for_space(std::uint64_t position, const char* call);
  void wake_receiver() noexcept;                        // after a publish
  void release_input(std::uint64_t position) noexcept;  // read_position = position; wake a sleeping sender
  // drain_doorbell(wait): the receiver empties its eventfd and lowers the
  // doorbell; true (doorbell left up) when a ring's write is still owed and
  // !wait (src/shm_connection_wait.cpp, "The owed write").
  bool drain_doorbell(bool wait_for_owed_write) noexcept;
  void settle_doorbell() noexcept;                   // INV4 before returning to the user
  [[nodiscard]] bool peer_hung_up() const noexcept;  // poll(socket, 0)

  std::shared_ptr<ShmPipeFiles> files_;
  // This end's socket, or -1 once closed. Relaxed everywhere: the number is
  // the only state; close() racing a call is a documented misuse.
  std::atomic<int> socket_;
  shm_pipe::ShmChannel* out_ = nullptr;  // the channel this end sends on
  std::byte* out_ring_ = nullptr;
  int out_doorbell_ = -1;               // the peer's eventfd
  shm_pipe::ShmChannel* in_ = nullptr;  // the channel this end receives from
  std::byte* in_ring_ = nullptr;
  int in_doorbell_ = -1;
  mutable UniqueFd epoll_;  // fileno() of a receiving end, made on first use

  // Process-local views (a fork copies them; each is only ever behind the
  // shared word it caches, so a stale copy is conservative).
  std::uint64_t known_read_ = 0;     // sender: <= out_->read_position
  std::uint64_t known_written_ = 0;  // receiver: <= in_->write_position
  std::uint64_t published_ = 0;      // sender: the last position it published
  // check_receiver_alive's hints (see there).
  std::uint64_t read_at_last_send_ = ~std::uint64_t{0};
  std::uint32_t closes_seen_ = 0;
  std::uint32_t liveness_backoff_ = 0;
  std::uint32_t sends_until_look_ = 0;
};

}  // namespace mp::detail
