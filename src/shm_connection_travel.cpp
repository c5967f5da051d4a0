// src/shm_connection_travel.cpp — a shared-memory Pipe end that travels to a
// child that is not a fork (forkserver, spawn): ShmConnection::travel() lists
// the fds the end lives on, rebuild() maps and wraps them in the child
// (ConnectionCore::travel, mp/detail/connection_core.hpp).
//
// The fds, in this order: the end's socket (its peer's hang-up, its sender's
// wake-up), the region's memfd, then the eventfd of each channel. The
// metadata says which channel the end sends on and receives from. The child
// maps the memfd again (SharedRegion::adopt) and checks the region's magic,
// version and size before it trusts a byte of it. Both processes then hold
// the end, as after fork: the peer sees EOF once every holder closed it.
#include <cstdint>
#include <cstring>
#include <string>

#include "mp/errors.hpp"
#include "shm_connection.hpp"

namespace mp::detail {
namespace {

struct ShmTravelMetadata {
  std::uint32_t magic;
  std::uint32_t version;
  std::int32_t send_channel;     // -1: a one-way Pipe's receiving end
  std::int32_t receive_channel;  // -1: a one-way Pipe's sending end
  std::uint32_t channel_count;
  std::uint32_t reserved;
};
static_assert(sizeof(ShmTravelMetadata) == 24);

[[noreturn]] void refuse(const std::string& why) {
  throw CodecError("Connection: a travelled shared-memory Pipe end " + why);
}

}  // namespace

bool ShmConnection::travel(ConnectionTravel& out) const {
  const int socket = socket_.load(std::memory_order_relaxed);  // relaxed: see socket_
  if (socket < 0) throw ValueError("travel(): connection is closed");
  const shm_pipe::ShmPipeRegion& layout = *files_->layout;
  ShmTravelMetadata metadata{};
  metadata.magic = shm_pipe::kMagic;
  metadata.version = shm_pipe::kVersion;
  metadata.send_channel = out_ != nullptr ? static_cast<std::int32_t>(out_ - layout.channels) : -1;
  metadata.receive_channel = in_ != nullptr ? static_cast<std::int32_t>(in_ - layout.channels) : -1;
  metadata.channel_count = layout.channel_count;
  out.rebuild = &ShmConnection::rebuild;
  out.fds = {socket, files_->region.fd()};
  for (std::uint32_t c = 0; c < layout.channel_count; ++c) out.fds.push_back(files_->doorbells[c].get());
  const auto* bytes = reinterpret_cast<const std::byte*>(&metadata);
  out.metadata.assign(bytes, bytes + sizeof metadata);
  return true;
}

std::shared_ptr<ConnectionCore> ShmConnection::rebuild(std::span<UniqueFd> fds,
                                                       std::span<const std::byte> metadata) {
  ShmTravelMetadata m{};
  if (metadata.size() != sizeof m)
    refuse("needs " + std::to_string(sizeof m) + " bytes of metadata, got " +
           std::to_string(metadata.size()));
  std::memcpy(&m, metadata.data(), sizeof m);
  if (m.magic != shm_pipe::kMagic || m.version != shm_pipe::kVersion)
    refuse("was made by another version of mp (metadata magic/version)");
  if (m.channel_count < 1 || m.channel_count > 2 || fds.size() != 2 + m.channel_count)
    refuse("needs " + std::to_string(2 + m.channel_count) + " fds, got " + std::to_string(fds.size()));
  auto valid_channel = [&](std::int32_t c) {
    return c >= -1 && c < static_cast<std::int32_t>(m.channel_count);
  };
  if (!valid_channel(m.send_channel) || !valid_channel(m.receive_channel) ||
      (m.send_channel < 0 && m.receive_channel < 0))
    refuse("names channels the region does not have");
  for (const UniqueFd& fd : fds)
    if (!fd) refuse("came without one of its fds");

  auto files = std::make_shared<ShmPipeFiles>();
  files->region =
      SharedRegion::adopt(fds[1].release(), "Pipe");  // owns the memfd from here, even if it throws
  if (files->region.size() < shm_pipe::ShmPipeRegion::bytes_for(m.channel_count))
    refuse("has a region of " + std::to_string(files->region.size()) + " bytes, too small");
  auto* layout = reinterpret_cast<shm_pipe::ShmPipeRegion*>(files->region.data());
  if (layout->magic != shm_pipe::kMagic || layout->version != shm_pipe::kVersion ||
      layout->channel_count != m.channel_count || layout->ring_bytes != shm_pipe::kRingBytes)
    refuse("has a region that is not a Pipe of this version of mp");
  files->layout = layout;
  for (std::uint32_t c = 0; c < m.channel_count; ++c) files->doorbells[c] = std::move(fds[2 + c]);
  auto core =
      std::make_shared<ShmConnection>(std::move(files), fds[0].get(), m.send_channel, m.receive_channel);
  (void)fds[0].release();  // owned by the core from here
  return core;
}

}  // namespace mp::detail
