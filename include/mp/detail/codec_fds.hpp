// mp/detail/codec_fds.hpp — the codec's out-of-band fd channel: how handles
// on shared objects (Queue, Lock, the other primitives, Value, Array,
// Connection) travel as arguments of a Process started by forkserver or spawn.
//
// A shared object lives in a memfd (mp/detail/shm.hpp) or on a socket; a child
// that is not a fork of this process can reach it only through a file
// descriptor. So the launch's Writer carries an OutgoingFds: a handle's codec
// adds its fd there (borrowed: the handle keeps it open) and writes the fd's
// index and what it needs to map it into the bytes. mp passes the fds with the
// launch (SCM_RIGHTS to the fork server, inheritance across exec for spawn),
// and the child's Reader carries an IncomingFds over the received ones: a
// handle's codec maps its region from there (once per fd, so a Value and its
// get_lock() share one mapping) or takes its socket. Nothing is named, nothing
// appears in /dev/shm or the file system.
//
//   detail::OutgoingFds out_fds;
//   std::vector<std::byte> bytes;
//   Writer writer(bytes, &out_fds);
//   writer.value(queue);                          // out_fds.fds() == {queue's memfd}
//   ... in the child, with the received fds:
//   detail::IncomingFds in_fds(std::move(received));
//   Reader reader(bytes, "arguments", &in_fds);
//   mp::Queue<int> same = codec<mp::Queue<int>>::make(reader);
//
// Safety: both are plain single-thread values, like Writer and Reader.
// Visibility: n/a (the objects' own contracts apply once mapped).
// Lifetime: OutgoingFds borrows (the handles being encoded must outlive the
// launch); IncomingFds owns what it received: a region or fd taken by a handle
// belongs to that handle, the rest is closed by release_unclaimed() or the
// destructor.
#pragma once

#include <fcntl.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "mp/detail/fd.hpp"
#include "mp/detail/shm.hpp"
#include "mp/errors.hpp"

namespace mp::detail {

class OutgoingFds {
 public:
  // OutgoingFds::add(fd): fd's index in the channel; an fd added twice (two
  // handles on one region) keeps its first index.
  std::uint32_t add(int fd) {
    const auto at = std::find(fds_.begin(), fds_.end(), fd);
    if (at != fds_.end()) return static_cast<std::uint32_t>(at - fds_.begin());
    fds_.push_back(fd);
    return static_cast<std::uint32_t>(fds_.size() - 1);
  }
  // OutgoingFds::fds(): every fd added, by index (borrowed).
  [[nodiscard]] const std::vector<int>& fds() const noexcept { return fds_; }

 private:
  std::vector<int> fds_;
};

class IncomingFds {
 public:
  IncomingFds() = default;
  // IncomingFds(fds): owns `fds` (index i is fds[i]); each is made
  // close-on-exec (a spawn child inherited them without the flag).
  explicit IncomingFds(std::vector<UniqueFd> fds) {
    slots_.reserve(fds.size());
    for (UniqueFd& fd : fds) {
      if (fd) ::fcntl(fd.get(), F_SETFD, FD_CLOEXEC);
      slots_.push_back(Slot{std::move(fd), SharedRegion(), 0});
    }
  }
  IncomingFds(const IncomingFds&) = delete;
  IncomingFds& operator=(const IncomingFds&) = delete;
  ~IncomingFds() = default;

  [[nodiscard]] std::size_t size() const noexcept { return slots_.size(); }

  // IncomingFds::region(index, what, mapped_bytes): the shared region on fd
  // `index`, mapped over mapped_bytes the first time; later calls share that
  // mapping. CodecError for an index that was not received or a size that
  // differs from the first; mp::Error when the kernel refuses the mapping.
  [[nodiscard]] SharedRegion region(std::uint32_t index, const char* what, std::size_t mapped_bytes) {
    Slot& slot = at(index, what);
    if (slot.region) {
      if (slot.region_bytes != mapped_bytes)
        throw CodecError(std::string("decode<") + what + ">: fd " + std::to_string(index) +
                         " was mapped with another size");
      return slot.region;
    }
    UniqueFd fd = own(slot, index, what);
    slot.region = SharedRegion::adopt(fd.release(), what, mapped_bytes);
    slot.region_bytes = mapped_bytes;
    return slot.region;
  }

  // IncomingFds::take(index, what): a dup of fd `index` for the caller to
  // own (a Connection's socket; two handles on one end get one dup each).
  [[nodiscard]] UniqueFd take(std::uint32_t index, const char* what) {
    Slot& slot = at(index, what);
    return duplicate(slot.fd ? slot.fd.get() : slot.region ? slot.region.fd() : -1, what);
  }

  // IncomingFds::release_unclaimed(): closes every fd no handle took; the
  // mappings already made stay with their handles.
  void release_unclaimed() noexcept {
    for (Slot& slot : slots_) {
      slot.fd.reset();
      slot.region = SharedRegion();
    }
  }

 private:
  struct Slot {
    UniqueFd fd;          // still ours (not yet taken or mapped)
    SharedRegion region;  // the mapping made from it, shared by later handles
    std::size_t region_bytes;
  };

  Slot& at(std::uint32_t index, const char* what) {
    if (index >= slots_.size())
      throw CodecError(std::string("decode<") + what + ">: fd index " + std::to_string(index) + " but " +
                       std::to_string(slots_.size()) + " fds came with the launch");
    return slots_[index];
  }

  // own(slot): the slot's fd, moved out (a region then owns it).
  static UniqueFd own(Slot& slot, std::uint32_t index, const char* what) {
    if (!slot.fd)
      throw CodecError(std::string("decode<") + what + ">: fd " + std::to_string(index) +
                       " was already taken by another kind of handle");
    return std::move(slot.fd);
  }

  static UniqueFd duplicate(int source, const char* what) {
    UniqueFd copy(source >= 0 ? ::fcntl(source, F_DUPFD_CLOEXEC, 0) : -1);
    if (!copy)
      throw Error(std::string("fcntl(F_DUPFD_CLOEXEC, ") + what +
                  "): " + (source < 0 ? "the fd was released" : "out of file descriptors"));
    return copy;
  }

  std::vector<Slot> slots_;
};

}  // namespace mp::detail
