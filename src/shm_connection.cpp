// src/shm_connection.cpp — the shared-memory Pipe (src/shm_connection.hpp):
// making a pair, sending, receiving, poll, fileno, close. How it waits and
// wakes is in src/shm_connection_wait.cpp.
#include "shm_connection.hpp"

#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <new>
#include <utility>

#include "mp/detail/system_error.hpp"
#include "mp/errors.hpp"

namespace mp::detail {
namespace {

using shm_pipe::kRingBytes;
constexpr std::uint64_t kRingMask = kRingBytes - 1;
constexpr std::size_t kHeaderBytes = 8;  // the payload length, little-endian
// A longer length is not something an mp sender wrote (as the socket Pipe).
constexpr std::uint64_t kMaxMessage = std::uint64_t{1} << 47;
// A large message's buffer starts here and doubles as bytes arrive.
constexpr std::size_t kFirstChunk = std::size_t{64} << 20;
// A receiver frees a streamed message's space this often, so the sender
// refills one part of the ring while the receiver empties another.
constexpr std::size_t kStreamChunk = kRingBytes / 4;

void copy_into_ring(std::byte* ring, std::uint64_t position, const std::byte* from,
                    std::size_t size) noexcept {
  const std::size_t offset = position & kRingMask;
  const std::size_t first = std::min(size, kRingBytes - offset);
  std::memcpy(ring + offset, from, first);
  if (size > first) std::memcpy(ring, from + first, size - first);
}

void copy_from_ring(const std::byte* ring, std::uint64_t position, std::byte* to, std::size_t size) noexcept {
  const std::size_t offset = position & kRingMask;
  const std::size_t first = std::min(size, kRingBytes - offset);
  std::memcpy(to, ring + offset, first);
  if (size > first) std::memcpy(to + first, ring, size - first);
}

}  // namespace

ShmConnection::ShmConnection(std::shared_ptr<ShmPipeFiles> files, int socket, int send_channel,
                             int receive_channel) noexcept
    : files_(std::move(files)), socket_(socket) {
  shm_pipe::ShmPipeRegion& layout = *files_->layout;
  if (send_channel >= 0) {
    out_ = &layout.channels[send_channel];
    out_ring_ = layout.ring(static_cast<std::size_t>(send_channel));
    out_doorbell_ = files_->doorbells[send_channel].get();
    // Relaxed: the pair is made before any other thread or process sees it.
    published_ = out_->write_position.load(std::memory_order_relaxed);
    known_read_ = out_->read_position.load(std::memory_order_relaxed);
  }
  if (receive_channel >= 0) {
    in_ = &layout.channels[receive_channel];
    in_ring_ = layout.ring(static_cast<std::size_t>(receive_channel));
    in_doorbell_ = files_->doorbells[receive_channel].get();
  }
}

ShmConnection::~ShmConnection() { close(); }

std::string ShmConnection::name() const {
  return "connection fd " + std::to_string(socket_.load(std::memory_order_relaxed));  // relaxed: see socket_
}

void ShmConnection::check_usable(const char* call, bool for_reading) const {
  if (closed()) throw ValueError(std::string(call) + "(): connection is closed");
  if (for_reading && !readable()) throw ValueError(std::string(call) + "(): connection is write-only");
  if (!for_reading && !writable()) throw ValueError(std::string(call) + "(): connection is read-only");
}

void ShmConnection::close() noexcept {
  const int socket = socket_.exchange(-1, std::memory_order_relaxed);  // relaxed: see socket_
  if (socket < 0) return;
  ::close(socket);  // once, never retried on EINTR
  // Release: pairs with the acquire in check_receiver_alive(): a sender that
  // sees the bump looks at the socket, which the kernel closed above.
  if (in_ != nullptr) in_->receiver_closes.fetch_add(1, std::memory_order_release);
  epoll_.reset();
  files_.reset();  // unmaps and closes the eventfds when the other end is gone from here too
}

int ShmConnection::fileno() const {
  const int socket = socket_.load(std::memory_order_relaxed);  // relaxed: see socket_
  if (socket < 0) throw ValueError("fileno(): connection is closed");
  if (in_ == nullptr) return socket;  // a sending end never polls readable but at hang-up
  if (epoll_) return epoll_.get();
  UniqueFd epoll(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll) throw_system_error("epoll_create1", name(), errno);
  epoll_event doorbell{};
  doorbell.events = EPOLLIN;
  epoll_event hang_up{};
  hang_up.events = EPOLLRDHUP;  // not EPOLLIN: the socket's bytes wake this end's sender, not its receiver
  if (::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, in_doorbell_, &doorbell) != 0 ||
      ::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, socket, &hang_up) != 0)
    throw_system_error("epoll_ctl", name(), errno);
  // INV4 from now on. Relaxed + fence: the fence pairs with the sender's W2;
  // a sender that missed armed == 1 published bytes that settle_doorbell sees.
  in_->armed.store(1, std::memory_order_relaxed);
  full_fence();
  auto& self = const_cast<ShmConnection&>(*this);  // fileno() is const in the interface; arming is not
  self.epoll_ = std::move(epoll);
  self.settle_doorbell();
  return epoll_.get();
}

// --- sending ---

void ShmConnection::throw_peer_closed(const char* call) const {
  throw ConnectionError(system_message(call, name(), EPIPE) + ": the other end of the connection was closed");
}

// ShmConnection::check_receiver_alive(call): the socket Pipe's EPIPE, without
// a system call per send. Looks at the socket (poll, no wait) when the
// receiving end was closed somewhere since the last look, or when nothing was
// read since this process's previous send (the receiver may have died or
// exited without closing); while the receiver keeps not reading and the
// socket keeps saying it lives, those looks back off (every 1, 2, 4 ... 64
// sends), so a producer that runs ahead of a live consumer makes few system
// calls. A receiver that read and then exited without close() is noticed at
// the second send after it left (the first is lost, as a socket write racing
// a close is); a full ring is noticed at once (wait_for_space).
void ShmConnection::check_receiver_alive(const char* call) {
  // Acquire: pairs with the release bump in close().
  const std::uint32_t closes = out_->receiver_closes.load(std::memory_order_acquire);
  const std::uint64_t read = out_->read_position.load(std::memory_order_relaxed);  // a hint
  const bool read_since = read != read_at_last_send_;
  read_at_last_send_ = read;
  if (closes == closes_seen_) {
    if (read_since) {
      liveness_backoff_ = 0;
      sends_until_look_ = 0;
      return;
    }
    if (sends_until_look_ > 0) {
      --sends_until_look_;
      return;
    }
    liveness_backoff_ = std::min<std::uint32_t>(2 * liveness_backoff_ + 1, 63);
    sends_until_look_ = liveness_backoff_;
  }
  closes_seen_ = closes;
  if (peer_hung_up()) throw_peer_closed(call);
}

std::uint64_t ShmConnection::free_space(std::uint64_t position) noexcept {
  if (position - known_read_ >= kRingBytes) {
    // Acquire: pairs with release_input(): those bytes were copied out.
    known_read_ = out_->read_position.load(std::memory_order_acquire);
  }
  return kRingBytes - (position - known_read_);
}

void ShmConnection::publish(std::uint64_t position) noexcept {
  if (position == published_) return;
  // S1. Release: pairs with the receiver's acquire loads of write_position:
  // the bytes below position are in the ring (INV2).
  out_->write_position.store(position, std::memory_order_release);
  published_ = position;
  wake_receiver();
}

void ShmConnection::write_message(std::span<const std::byte> payload, const char* call) {
  check_usable(call, false);
  check_receiver_alive(call);
  std::array<std::byte, kHeaderBytes> header{};
  for (std::size_t i = 0; i < kHeaderBytes; ++i)
    header[i] = static_cast<std::byte>((payload.size() >> (8 * i)) & 0xffU);
  // Relaxed: our own word (one sender at a time; a sender in another process
  // handed over through something that ordered its stores before ours).
  std::uint64_t position = out_->write_position.load(std::memory_order_relaxed);
  published_ = position;
  const std::array<std::span<const std::byte>, 2> pieces{std::span<const std::byte>(header), payload};
  for (std::span<const std::byte> piece : pieces) {
    while (!piece.empty()) {
      std::uint64_t room = free_space(position);
      if (room == 0) {
        publish(position);  // what fits is out: the receiver frees space as it reads
        wait_for_space(position, call);
        continue;
      }
      const std::size_t chunk = static_cast<std::size_t>(std::min<std::uint64_t>(room, piece.size()));
      copy_into_ring(out_ring_, position, piece.data(), chunk);
      position += chunk;
      piece = piece.subspan(chunk);
    }
  }
  publish(position);
}

void ShmConnection::send_bytes(std::span<const std::byte> payload, const char* call) {
  write_message(payload, call);
}

void ShmConnection::send_frame(std::span<std::byte> frame, const char* call) {
  write_message(std::span<const std::byte>(frame).subspan(frame_reserve), call);
}

// --- receiving ---

std::vector<std::byte> ShmConnection::recv_bytes(const char* call) {
  check_usable(call, true);
  shm_pipe::ShmChannel& channel = *in_;
  auto where = [&] { return std::string(call) + "(" + name() + ")"; };
  // Relaxed: our own word (one receiver at a time, as for the sender above).
  std::uint64_t position = channel.read_position.load(std::memory_order_relaxed);
  if (known_written_ < position) known_written_ = position;
  // available(n): at least n unread bytes, waiting for them if needed;
  // false when the sender is gone first.
  auto available = [&](std::uint64_t wanted) {
    if (known_written_ - position >= wanted) return true;
    // Acquire: pairs with publish(): the bytes below write_position are in the ring.
    known_written_ = channel.write_position.load(std::memory_order_acquire);
    if (known_written_ - position >= wanted) return true;
    // A streaming sender may wait for what we read. Relaxed: our own word.
    if (channel.read_position.load(std::memory_order_relaxed) != position) release_input(position);
    (void)wait_for_input(position + wanted - 1, Deadline::never());
    known_written_ = channel.write_position.load(std::memory_order_acquire);  // acquire: as above
    return known_written_ - position >= wanted;
  };

  if (!available(kHeaderBytes)) {
    const std::uint64_t came = known_written_ - position;
    settle_doorbell();
    if (came == 0)
      throw EOFError(where() + ": the other end of the connection was closed and every message was read");
    throw EOFError(where() + ": the other end closed in the middle of a message header (" +
                   std::to_string(came) + " of 8 bytes came): the message was truncated");
  }
  std::array<std::byte, kHeaderBytes> header{};
  copy_from_ring(in_ring_, position, header.data(), kHeaderBytes);
  position += kHeaderBytes;
  std::uint64_t length = 0;
  for (std::size_t i = 0; i < kHeaderBytes; ++i) length |= static_cast<std::uint64_t>(header[i]) << (8 * i);
  if (length > kMaxMessage) {
    const std::string message = where() + ": message length " + std::to_string(length) +
                                " is implausible: the shared memory is corrupted or was not written by "
                                "mp::Connection (the connection was closed: it can no longer be trusted)";
    close();
    throw CodecError(message);
  }

  const auto total = static_cast<std::size_t>(length);
  std::vector<std::byte> payload(std::min(total, kFirstChunk));
  std::size_t received = 0;
  while (received < total) {
    if (!available(1)) {
      settle_doorbell();
      throw EOFError(where() + ": the other end closed in the middle of a " + std::to_string(total) +
                     "-byte message (" + std::to_string(received) +
                     " bytes came): the message was truncated");
    }
    std::size_t chunk =
        static_cast<std::size_t>(std::min<std::uint64_t>(known_written_ - position, total - received));
    if (total > kRingBytes) chunk = std::min(chunk, kStreamChunk);
    if (received + chunk > payload.size())
      payload.resize(std::min(total, std::max(payload.size() * 2, received + chunk)));
    copy_from_ring(in_ring_, position, payload.data() + received, chunk);
    position += chunk;
    received += chunk;
    if (received < total) release_input(position);
  }
  release_input(position);
  settle_doorbell();
  return payload;
}

bool ShmConnection::poll(Deadline deadline) {
  check_usable("poll", true);
  // Relaxed: our own word; acquire: pairs with publish().
  const std::uint64_t position = in_->read_position.load(std::memory_order_relaxed);
  if (in_->write_position.load(std::memory_order_acquire) != position) return true;
  const Input input = wait_for_input(position, deadline);
  settle_doorbell();
  return input != Input::timed_out;
}

// --- making a pair ---

std::pair<std::shared_ptr<ConnectionCore>, std::shared_ptr<ConnectionCore>> make_connection_pair(
    bool duplex) {
  const std::size_t channels = duplex ? 2 : 1;
  auto files = std::make_shared<ShmPipeFiles>();
  files->region = SharedRegion::create(shm_pipe::ShmPipeRegion::bytes_for(channels), "Pipe");
  files->layout = ::new (static_cast<void*>(files->region.data())) shm_pipe::ShmPipeRegion();
  files->layout->channel_count = static_cast<std::uint32_t>(channels);
  const char* what = duplex ? "Pipe(duplex=true)" : "Pipe(duplex=false)";
  for (std::size_t c = 0; c < channels; ++c) {
    files->doorbells[c].reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!files->doorbells[c]) throw_system_error("eventfd", what, errno);
  }
  std::array<int, 2> sockets{-1, -1};
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sockets.data()) != 0)
    throw_system_error("socketpair", what, errno);
  // Own the sockets before allocating, so a bad_alloc cannot leak them.
  UniqueFd first(sockets[0]);
  UniqueFd second(sockets[1]);
  // Duplex: channel 0 carries first -> second, channel 1 second -> first.
  // One-way: the first end only receives, the second only sends, on channel 0.
  auto first_core = std::make_shared<ShmConnection>(files, first.get(), duplex ? 0 : -1, duplex ? 1 : 0);
  (void)first.release();
  auto second_core =
      std::make_shared<ShmConnection>(std::move(files), second.get(), duplex ? 1 : 0, duplex ? 0 : -1);
  (void)second.release();
  return {std::move(first_core), std::move(second_core)};
}

}  // namespace mp::detail
