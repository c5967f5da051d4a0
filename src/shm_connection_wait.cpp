// src/shm_connection_wait.cpp — how the shared-memory Pipe waits and wakes
// (ShmConnection, src/shm_connection.hpp): the one wait primitive's spin
// policy (EventCount::spin_until), then poll(2) on fds, so that a peer's
// death, which only the kernel knows, ends every wait.
//
// Receiver waiting for bytes (wait_for_input):
//   R0 spin on write_position (EventCount's learned budget; no flag raised,
//      so the sender makes no system call);
//   R1 drain the eventfd, doorbell = 0;
//   R2 data_ready.prepare_wait(): raise the sleepers flag, seq_cst fence (P3);
//   R3 check write_position; if bytes came: done;
//   R4 poll({eventfd: POLLIN}, {socket: hang-up}); then back to R1.
// Sender after each publish (wake_receiver):
//   S1 write_position = p (release);
//   S2 data_ready.claim_wake(): seq_cst fence (W2), load the flag, lower it;
//   S3 if it was raised, or the end is armed (fileno() handed out):
//      doorbell.exchange(1); if that returned 0: write the eventfd.
//
// No lost wake-up. Take a publish S1 that the receiver's check R3 missed. The
// fences P3 and W2 are in one total order; had W2 come first, R3 (after P3)
// would see S1 (before W2). So P3 came first, and S2's load (after W2) sees
// the flag raised at R2 or a later value; a later 0 is another sender call's
// claim, which then rings itself. Likewise S3's exchange sees the doorbell
// stored 0 at R1 (before P3) or a later value; a later 1 is a ring whose
// eventfd write is still to come or already done and not yet drained (R1
// drains before storing 0, and a doorbell write always follows a won
// exchange: INV3). Either way the eventfd is, or becomes, readable after R1's
// drain, and the eventfd, unlike a futex word, stays readable until the
// receiver drains it at its next R1: R4 returns.
//
// The owed write. A ring is two steps (win the exchange, write the eventfd);
// a receiver that finds the doorbell up but the eventfd empty is between
// them. R1 then leaves the doorbell up (that write will wake R4), and
// settle_doorbell waits for it, up to kOwedWriteGrace, before lowering it, so
// no write lands after the receiver has taken the bytes and left (which would
// make fileno() ready with nothing to read). Only a ringer killed, or stalled
// longer than the grace, between its two steps breaks that: the doorbell is
// then lowered anyway (senders ring again), and a late write is one stale
// count, which the next R1 drains (R1 always reads the eventfd).
//
// Armed ends (INV4). A thread may sleep in mp::wait on fileno() without
// running R1..R3, so while an end is armed the sender rings at every publish
// that finds the doorbell down, and the receiver, before it returns from a
// call (settle_doorbell), either rings when bytes are unread, or drains,
// stores 0, fences, and rings if bytes came meanwhile: by the same fence
// argument (its fence against the sender's W2) either it sees those bytes or
// the sender sees doorbell 0 and rings. fileno() stores armed = 1, fences and
// settles, so a sender that missed armed == 1 has its bytes seen there.
//
// Sender waiting for space (wait_for_space) is the mirror image: spin on
// read_position, drain the socket, space_ready.prepare_wait(), check, poll the
// socket (POLLIN: a receiver's wake byte; hang-up: the receiver is gone). The
// receiver, after storing read_position (release_input), claims space_ready
// and, if a sender may sleep, sends one byte on its own socket. A sleeping
// sender waits for a quarter of the ring, and only the release that makes
// that much room wakes it, so a stream of small messages costs one wake-up
// per batch, not per message.
//
// Peer death. A process killed anywhere leaves at most a flag raised or a
// doorbell up (costing one spurious system call later); its socket is closed
// by the kernel, and every poll above includes the socket's hang-up.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>

#include "mp/detail/event_count.hpp"
#include "mp/detail/system_error.hpp"
#include "shm_connection.hpp"

namespace mp::detail {
namespace {

// ring_doorbell(channel, eventfd): S3 (and the receiver's own ring in
// settle_doorbell). Only the caller that raises the doorbell writes the eventfd.
void ring_doorbell(shm_pipe::ShmChannel& channel, int eventfd) noexcept {
  // acq_rel: pairs with the receiver's store of 0 in drain_doorbell (INV3).
  if (channel.doorbell.exchange(1, std::memory_order_acq_rel) != 0) return;
  const std::uint64_t one = 1;
  // EFD_NONBLOCK: fails only when the counter is near 2^64, i.e. readable anyway.
  (void)!::write(eventfd, &one, sizeof one);
}

constexpr short kHangUp = POLLHUP | POLLERR;

}  // namespace

bool ShmConnection::peer_hung_up() const noexcept {
  pollfd entry{socket_.load(std::memory_order_relaxed), 0, 0};  // relaxed: see socket_
  while (::poll(&entry, 1, 0) < 0 && errno == EINTR) {
  }
  return (entry.revents & kHangUp) != 0;
}

bool ShmConnection::drain_doorbell(bool wait_for_owed_write) noexcept {
  // Acquire: pairs with the winner's acq_rel exchange in ring_doorbell.
  const bool up = in_->doorbell.load(std::memory_order_acquire) != 0;
  auto read_count = [&] {
    std::uint64_t count = 0;
    return ::read(in_doorbell_, &count, sizeof count) == sizeof count;  // EFD_NONBLOCK: EAGAIN when not rung
  };
  if (up && !read_count()) {
    // The ring that raised the doorbell has not written the eventfd yet (the
    // owed write). Lowering the doorbell now would let that write land later
    // on an empty ring: fileno() would poll ready with nothing to read.
    if (!wait_for_owed_write) return true;
    pollfd entry{in_doorbell_, POLLIN, 0};
    while (::poll(&entry, 1, static_cast<int>(shm_pipe::kOwedWriteGrace.count())) < 0 && errno == EINTR) {
    }
    (void)read_count();  // nothing after the grace: the ringer died between its two steps
  }
  // R1. Release: pairs with the acq_rel exchange in ring_doorbell.
  in_->doorbell.store(0, std::memory_order_release);
  return false;
}

ShmConnection::Input ShmConnection::wait_for_input(std::uint64_t target, Deadline deadline) {
  shm_pipe::ShmChannel& channel = *in_;
  // Acquire: pairs with the sender's release store in publish(): the bytes
  // below write_position are in the ring.
  auto ready = [&] { return channel.write_position.load(std::memory_order_acquire) > target; };
  if (ready()) return Input::ready;
  if (deadline.expired()) {
    if (!peer_hung_up()) return Input::timed_out;
    return ready() ? Input::ready : Input::peer_closed;
  }
  if (channel.data_ready.spin_until(ready, deadline)) return Input::ready;  // R0
  const auto start = MonotonicClock::now();
  const int socket = socket_.load(std::memory_order_relaxed);  // relaxed: see socket_
  std::array<pollfd, 2> entries{pollfd{in_doorbell_, POLLIN, 0}, pollfd{socket, 0, 0}};
  for (;;) {
    const bool owed = drain_doorbell(false);  // R1; owed: the doorbell stays up, its write will wake R4
    (void)channel.data_ready.prepare_wait();  // R2 (the key is for futex sleeps; ours is R4)
    if (ready()) {                            // R3
      channel.data_ready.cancel_wait();
      channel.data_ready.woken_after(MonotonicClock::now() - start);
      return Input::ready;
    }
    if (deadline.expired()) {
      channel.data_ready.cancel_wait();
      if (!peer_hung_up()) return Input::timed_out;
      return ready() ? Input::ready : Input::peer_closed;
    }
    int timeout = deadline.poll_timeout_ms();
    const int grace = static_cast<int>(shm_pipe::kOwedWriteGrace.count());
    if (owed && (timeout < 0 || timeout > grace)) timeout = grace;
    const int rc = ::poll(entries.data(), entries.size(), timeout);  // R4
    if (rc < 0 && errno != EINTR) throw_system_error("poll", name(), errno);
    // An owed write that never came: its ringer died between its two steps.
    // Release: as in drain_doorbell (later senders ring again).
    if (rc == 0 && owed) channel.doorbell.store(0, std::memory_order_release);
    if (rc > 0 && (entries[1].revents & kHangUp) != 0) {
      channel.data_ready.cancel_wait();
      return ready() ? Input::ready : Input::peer_closed;
    }
  }
}

void ShmConnection::wait_for_space(std::uint64_t position, const char* call) {
  shm_pipe::ShmChannel& channel = *out_;
  // Acquire: pairs with the receiver's release store in release_input(): the
  // bytes below read_position were copied out and may be overwritten.
  auto room = [&] {
    return shm_pipe::kRingBytes - (position - channel.read_position.load(std::memory_order_acquire));
  };
  auto has_space = [&] { return room() > 0; };
  if (has_space() || channel.space_ready.spin_until(has_space, Deadline::never())) return;
  // Asleep, wait for a quarter of the ring (release_input wakes no sooner):
  // one wake-up per batch of small messages, not one per message.
  auto has_room_to_wake_for = [&] { return room() >= shm_pipe::kSpaceWakeBytes; };
  const auto start = MonotonicClock::now();
  const int socket = socket_.load(std::memory_order_relaxed);  // relaxed: see socket_
  pollfd entry{socket, POLLIN, 0};
  for (;;) {
    std::array<char, 64> wake_bytes{};
    for (;;) {  // drain the receiver's wake bytes
      const ssize_t n = ::recv(socket, wake_bytes.data(), wake_bytes.size(), MSG_DONTWAIT);
      if (n > 0) continue;
      if (n < 0 && errno == EINTR) continue;
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) throw_peer_closed(call);
      break;
    }
    (void)channel.space_ready.prepare_wait();
    if (has_room_to_wake_for()) {
      channel.space_ready.cancel_wait();
      channel.space_ready.woken_after(MonotonicClock::now() - start);
      return;
    }
    const int rc = ::poll(&entry, 1, -1);
    if (rc < 0 && errno != EINTR) throw_system_error("poll", name(), errno);
    if (rc > 0 && (entry.revents & kHangUp) != 0) throw_peer_closed(call);
  }
}

void ShmConnection::wake_receiver() noexcept {
  shm_pipe::ShmChannel& channel = *out_;
  const bool claimed = channel.data_ready.claim_wake();  // S2 (its fence is W2)
  // Relaxed: ordered after W2 by the fence; pairs with the fence in fileno().
  if (!claimed && channel.armed.load(std::memory_order_relaxed) == 0) return;
  ring_doorbell(channel, out_doorbell_);  // S3
}

void ShmConnection::release_input(std::uint64_t position) noexcept {
  shm_pipe::ShmChannel& channel = *in_;
  // Release: pairs with the sender's acquire in free_space()/wait_for_space():
  // the bytes below position were copied out (INV2).
  channel.read_position.store(position, std::memory_order_release);
  // As EventCount::claim_wake, with one more test before the flag is
  // lowered: a sleeping sender waits for kSpaceWakeBytes of room, so a
  // release that leaves less wakes nobody. Either the sender's last check saw
  // the store above, or the load below sees its raised flag (the fences);
  // the release that crosses the threshold then wakes it. A stale (smaller)
  // write_position only overstates the room: an early wake, never a lost one.
  full_fence();  // pairs with the sender's P3 in prepare_wait()
  // Relaxed: ordered by the fence (W3).
  if (channel.space_ready.sleepers.load(std::memory_order_relaxed) == 0) return;
  // Acquire: pairs with publish(); only a bound on the room (above).
  const std::uint64_t room =
      shm_pipe::kRingBytes - (channel.write_position.load(std::memory_order_acquire) - position);
  if (room < shm_pipe::kSpaceWakeBytes) return;
  if (!channel.space_ready.claim_wake()) return;
  const char wake = 1;
  // MSG_DONTWAIT: a full socket buffer already wakes the sender; MSG_NOSIGNAL:
  // a sender that is gone is no reason to raise SIGPIPE here.
  (void)::send(socket_.load(std::memory_order_relaxed), &wake, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
}

void ShmConnection::settle_doorbell() noexcept {
  shm_pipe::ShmChannel& channel = *in_;
  // Relaxed: armed only selects the protocol; fileno() settles on its own
  // after arming (file comment).
  if (channel.armed.load(std::memory_order_relaxed) == 0) return;
  const std::uint64_t position = channel.read_position.load(std::memory_order_relaxed);  // our own word
  // Acquire: pairs with publish(); unread bytes mean the doorbell must ring.
  if (channel.write_position.load(std::memory_order_acquire) != position) {
    ring_doorbell(channel, in_doorbell_);
    return;
  }
  if (channel.doorbell.load(std::memory_order_relaxed) == 0)
    return;                    // relaxed: re-read with acquire in drain
  (void)drain_doorbell(true);  // waits (briefly) for an owed write, so none lands after we return
  full_fence();  // pairs with the sender's W2: it sees doorbell 0 and rings, or we see its bytes
  if (channel.write_position.load(std::memory_order_acquire) != position)
    ring_doorbell(channel, in_doorbell_);
}

}  // namespace mp::detail
