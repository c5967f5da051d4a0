// src/shm_pipe_layout.hpp — the shared-memory layout of a Pipe() (private to
// libmp): an ABI between the processes that hold its ends.
//
// One memfd region per Pipe: a header, one ShmChannel per direction (two for
// a duplex Pipe, one for Pipe(false)), then one byte ring per channel. A
// channel has exactly one sending end and one receiving end (one sender and
// one receiver at a time: Connection's Safety rule). Messages are framed as
// on the socket Pipe: an 8-byte little-endian length, then the payload; a
// message larger than the ring streams through it (the sender publishes each
// chunk it copied, the receiver frees each chunk it copied out).
//
// Positions are byte counts since the Pipe was made (64-bit: they never wrap
// in practice); the ring offset of position p is p % ring_bytes.
//   INV1  read_position <= write_position <= read_position + ring_bytes.
//   INV2  bytes in [read_position, write_position) are published and never
//         overwritten: the sender writes only at and after write_position,
//         below read_position + ring_bytes.
//   INV3  doorbell == 1 whenever the receiver's eventfd was (or is about to
//         be) written since the receiver last drained it; an eventfd write is
//         always preceded by winning doorbell 0 -> 1 (no write without it),
//         and the receiver lowers it only once that write has landed (or its
//         ringer is presumed dead).
//   INV4  armed == 1 (fileno() was handed out for this receiving end, so a
//         thread may sleep in poll(2)/mp::wait on it at any moment): when the
//         receiver returns from recv()/poll() with unread bytes, the doorbell
//         is rung (src/shm_connection_wait.cpp, settle_doorbell).
//
// Layout rules (STYLE rule 5): standard layout, lock-free atomics, each side's
// hot word on its own cache line; a magic and version word checked when a
// region is adopted by a process that is not a fork (the travel hook).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "mp/detail/event_count.hpp"

namespace mp::detail::shm_pipe {

inline constexpr std::uint32_t kMagic = 0x6d705069;  // "mpPi"
inline constexpr std::uint32_t kVersion = 1;
inline constexpr std::size_t kCacheLine = 64;
// Bytes of ring per direction. Small messages are a memcpy into it; larger
// ones stream through it, so it bounds the memory a Pipe keeps (pages are
// allocated as the positions first pass over them), not the message size. As
// large as what an AF_UNIX socket buffered (~208 KiB by default), so a thread
// that sends before it receives, which worked on the socket Pipe, still does.
inline constexpr std::size_t kRingBytes = std::size_t{256} << 10;
static_assert((kRingBytes & (kRingBytes - 1)) == 0, "the ring size is a power of two");
// How long a receiver waits for a ring's eventfd write that is owed (its
// ringer won the doorbell but has not written yet) before it presumes the
// ringer dead (src/shm_connection_wait.cpp, "The owed write"). The write is
// normally one instruction away; the grace only has to outlast a descheduled
// ringer on a loaded machine (stalls of 100 ms were measured here), and is
// only spent in full when a ringer was killed between its two steps.
inline constexpr std::chrono::milliseconds kOwedWriteGrace{1000};
// A sender asleep for space is woken once this much is free (a batch).
inline constexpr std::size_t kSpaceWakeBytes = kRingBytes / 4;

struct ShmChannel {
  // The sender's line. write_position: bytes published; stored (release) only
  // by the sender, after the bytes are in the ring (INV2).
  alignas(kCacheLine) std::atomic<std::uint64_t> write_position{0};
  // The receiver's line. read_position: bytes consumed; stored (release) only
  // by the receiver, after it copied them out (the sender may then reuse them).
  alignas(kCacheLine) std::atomic<std::uint64_t> read_position{0};
  // The receiver's wake state, read by the sender after each publish. The
  // receiver raises data_ready's flag before it sleeps; the sender claims it
  // (EventCount::claim_wake) and rings the receiver's eventfd.
  alignas(kCacheLine) EventCount data_ready;
  std::atomic<std::uint32_t> doorbell{0};         // INV3
  std::atomic<std::uint32_t> armed{0};            // INV4; set once, never cleared
  std::atomic<std::uint32_t> receiver_closes{0};  // bumped by close() of the receiving end (a hint, see send)
  std::uint32_t reserved0 = 0;
  // The sender's wake state, read by the receiver after it frees space: the
  // sender raises space_ready's flag before it sleeps for space; the receiver
  // claims it and sends one byte on its socket (the sender polls its own).
  alignas(kCacheLine) EventCount space_ready;
};

struct ShmPipeRegion {
  std::uint32_t magic = kMagic;
  std::uint32_t version = kVersion;
  std::uint32_t ring_bytes = static_cast<std::uint32_t>(kRingBytes);
  std::uint32_t channel_count = 0;  // 2: duplex; 1: Pipe(false)
  // channels[0]: first end -> second end (duplex) or second -> first (one-way);
  // channels[1]: second end -> first end (duplex only).
  alignas(kCacheLine) ShmChannel channels[2];

  // ring(c): the ring of channel c, right after this header.
  [[nodiscard]] std::byte* ring(std::size_t c) noexcept {
    return reinterpret_cast<std::byte*>(this) + sizeof(ShmPipeRegion) + c * ring_bytes;
  }
  [[nodiscard]] static constexpr std::size_t bytes_for(std::size_t channel_count) noexcept {
    return sizeof(ShmPipeRegion) + channel_count * kRingBytes;
  }
};

static_assert(std::is_standard_layout_v<ShmChannel> && std::is_standard_layout_v<ShmPipeRegion>,
              "Pipe's shared region is an ABI between processes");
static_assert(std::is_trivially_destructible_v<ShmPipeRegion>, "nobody runs destructors in shared memory");
static_assert(sizeof(ShmChannel) == 4 * kCacheLine, "ShmChannel layout changed: bump kVersion");
static_assert(sizeof(ShmPipeRegion) == 9 * kCacheLine, "ShmPipeRegion layout changed: bump kVersion");
static_assert(std::atomic<std::uint64_t>::is_always_lock_free &&
              std::atomic<std::uint32_t>::is_always_lock_free);

}  // namespace mp::detail::shm_pipe
