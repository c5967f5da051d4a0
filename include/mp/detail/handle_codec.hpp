// mp/detail/handle_codec.hpp — the codec of handles on shared objects (Queue,
// Lock, RLock, Semaphore, Event, Condition, Barrier, Value, Array,
// Connection): the pieces each handle's codec<> specialisation is made of.
//
// A handle travels only as an argument of a Process started by forkserver or
// spawn (Python: "Queue objects should only be shared between processes
// through inheritance"). Its codec, beside encode/decode, has
//   static constexpr bool shared_by_inheritance = true;   // mp::encode refuses it at compile time
//   static Handle make(Reader&);                          // the handle in the child
// and writes, per shared object it holds, a SharedObjectRef: the index of the
// region's memfd in the launch's fd channel (mp/detail/codec_fds.hpp), the
// object's offset in the region and the region's mapped size. The child maps
// the same memfd and gets the same object: a put in the child is seen by a get
// in the parent, a lock held in the child blocks the parent, and a child killed
// while holding a lock leaves it to the next acquirer (robust mutexes work on
// any mapping of the memory), exactly as under fork.
//
// Outside a launch (no fd channel: a handle nested in a Queue item, a Pipe
// message or a Pool task argument) encoding throws ProcessError saying so.
//
// Safety, Visibility: as the handle's own contract. Lifetime: the child's
// handle owns its mapping (and fd) like any handle; the parent's is untouched.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>

#include "mp/codec.hpp"
#include "mp/detail/codec_fds.hpp"
#include "mp/detail/export.hpp"
#include "mp/detail/shm.hpp"
#include "mp/errors.hpp"

namespace mp::detail {

// AdoptTag: selects a handle's private constructor from shared state that
// already exists (the child's side of a launch).
struct AdoptTag {};

// SharedObjectRef: one shared object in the launch bytes (an ABI between two
// runs of one binary; fixed width).
struct SharedObjectRef {
  std::uint32_t fd_index = 0;
  std::uint32_t reserved = 0;
  std::uint64_t offset = 0;        // of the object in its region
  std::uint64_t mapped_bytes = 0;  // the region's mapping (its reservation)
};
static_assert(sizeof(SharedObjectRef) == 24);

// throw_shared_by_inheritance(type): the ProcessError of a handle encoded
// outside a launch.
[[noreturn]] inline void throw_shared_by_inheritance(const char* type) {
  throw ProcessError(
      std::string(type) +
      " objects should only be shared between processes through inheritance: pass it to "
      "mp::Process as an argument (under any start method); it cannot travel as a value (a Queue "
      "item, a Pipe message, a Pool task argument)");
}

// outgoing_fds(writer, type) / incoming_fds(reader, type): the launch's fd
// channel; ProcessError / CodecError outside a launch.
inline OutgoingFds& outgoing_fds(const Writer& writer, const char* type) {
  if (writer.fds() == nullptr) throw_shared_by_inheritance(type);
  return *writer.fds();
}
inline IncomingFds& incoming_fds(const Reader& reader, const char* type) {
  if (reader.fds() == nullptr)
    reader.fail(std::string("a ") + type + " handle can only be decoded in a child started with it");
  return *reader.fds();
}

// put_shared_object(writer, object, type): the SharedObjectRef of `object`,
// a handle made by make_shared_object / SharedRegion (region_of finds it).
template <class Object>
void put_shared_object(Writer& writer, const std::shared_ptr<Object>& object, const char* type) {
  OutgoingFds& fds = outgoing_fds(writer, type);
  const std::optional<RegionMapping> mapping = region_of(object);
  if (!mapping || object == nullptr)
    throw ProcessError(std::string(type) + ": this handle is empty or not in a shared region");
  SharedObjectRef ref;
  ref.fd_index = fds.add(mapping->fd);
  ref.offset = static_cast<std::uint64_t>(reinterpret_cast<const std::byte*>(object.get()) - mapping->base);
  ref.mapped_bytes = mapping->mapped_bytes;
  writer.bytes(&ref, sizeof ref);
}

// put_region(writer, fd, offset, mapped_bytes, type): a SharedObjectRef by
// hand, for a handle that keeps its region itself (the Queue's ring).
inline void put_region(Writer& writer, int fd, std::size_t offset, std::size_t mapped_bytes,
                       const char* type) {
  OutgoingFds& fds = outgoing_fds(writer, type);
  SharedObjectRef ref;
  ref.fd_index = fds.add(fd);
  ref.offset = offset;
  ref.mapped_bytes = mapped_bytes;
  writer.bytes(&ref, sizeof ref);
}

// take_region(reader, type): the region of the next SharedObjectRef, and the
// object's offset in it (checked to leave room for `object_bytes`).
inline std::pair<SharedRegion, std::size_t> take_region(Reader& reader, const char* type,
                                                        std::size_t object_bytes, std::size_t alignment) {
  IncomingFds& fds = incoming_fds(reader, type);
  SharedObjectRef ref;
  reader.bytes(&ref, sizeof ref, type);
  if (ref.mapped_bytes == 0 || ref.offset > ref.mapped_bytes ||
      ref.mapped_bytes - ref.offset < object_bytes || ref.offset % alignment != 0)
    reader.fail("a " + std::string(type) + " at offset " + std::to_string(ref.offset) + " of a region of " +
                std::to_string(ref.mapped_bytes) + " bytes does not fit");
  SharedRegion region = fds.region(ref.fd_index, type, static_cast<std::size_t>(ref.mapped_bytes));
  return {std::move(region), static_cast<std::size_t>(ref.offset)};
}

// take_shared_object<Object>(reader, type): the object a put_shared_object
// described, in this process's mapping of its region; checks its magic and
// version word (CodecError: not that object, or another build of mp).
template <class Object>
std::shared_ptr<Object> take_shared_object(Reader& reader, const char* type) {
  auto [region, offset] = take_region(reader, type, sizeof(Object), alignof(Object));
  auto* object = reinterpret_cast<Object*>(region.data() + offset);
  if constexpr (requires { Object::kMagic; }) {
    if (object->magic != Object::kMagic || object->version != Object::kVersion)
      reader.fail(std::string("the shared memory of this ") + type +
                  " does not hold one (magic or version differs: another build of mp?)");
  }
  return std::shared_ptr<Object>(region.bytes(), object);  // aliasing: owns the mapping
}

class ConnectionCore;

// put_connection(writer, core, type) / take_connection(reader, type): a
// Connection end through its transport's travel hook (ConnectionCore::travel).
// ProcessError when the transport cannot travel; ValueError when closed.
MP_API void put_connection(Writer& writer, const std::shared_ptr<ConnectionCore>& core, const char* type);
[[nodiscard]] MP_API std::shared_ptr<ConnectionCore> take_connection(Reader& reader, const char* type);

}  // namespace mp::detail
