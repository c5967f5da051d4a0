// mp/detail/shm.hpp — anonymous shared memory regions.
//
// Every shared object in mp lives in its own anonymous MAP_SHARED mapping made
// in its constructor. It has no name, so nothing can ever appear in /dev/shm
// or the file system, and a child made by fork() inherits the mapping. The
// kernel frees the memory when the last process unmaps it (or exits).
//
// Safety: the returned shared_ptr is a normal process-local handle.
// Lifetime: the deleter unmaps; it never runs the object's destructor, because
// other processes may still use the object (every type placed here is
// therefore trivially destructible, or cleaned up explicitly by its owner).
#pragma once

#include <sys/mman.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <type_traits>
#include <utility>

#include "mp/errors.hpp"

namespace mp::detail {

// map_shared_bytes(size, what): a zeroed anonymous MAP_SHARED region of `size`
// bytes. Throws mp::Error naming `what` when the kernel refuses.
inline std::shared_ptr<std::byte> map_shared_bytes(std::size_t size, const char* what) {
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    int err = errno;
    throw Error(std::string("mmap(") + what + ", " + std::to_string(size) + " bytes): " + std::strerror(err));
  }
  return std::shared_ptr<std::byte>(static_cast<std::byte*>(p),
                                    [size](std::byte* q) noexcept { ::munmap(q, size); });
}

// make_shared_object<T>(what, args...): constructs a T in its own shared
// region (page-aligned, so any alignment T needs is met) and returns a handle
// that shares ownership of the mapping.
template <class T, class... Args>
std::shared_ptr<T> make_shared_object(const char* what, Args&&... args) {
  static_assert(alignof(T) <= 4096, "shared objects are page-aligned");
  auto bytes = map_shared_bytes(sizeof(T), what);
  T* object = ::new (static_cast<void*>(bytes.get())) T(std::forward<Args>(args)...);
  return std::shared_ptr<T>(std::move(bytes), object);  // aliasing: owns the mapping
}

}  // namespace mp::detail
