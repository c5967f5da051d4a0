// mp/detail/shm.hpp — shared memory regions backed by memfds.
//
// Every shared object in mp lives in its own region: a memfd (memfd_create
// with MFD_CLOEXEC: it has no name, so nothing ever appears in /dev/shm or the
// file system) mapped MAP_SHARED. A child made by fork() inherits the mapping;
// a process that is not a fork (forkserver, spawn) receives the region's fd
// (over SCM_RIGHTS or inherited across exec) and maps it again with
// SharedRegion::adopt(). The kernel frees the memory when the last fd and the
// last mapping are gone (or their processes exit).
//
//   SharedRegion region = SharedRegion::create(4096, "Lock");
//   int fd = region.fd();                          // send it to another process
//   SharedRegion there = SharedRegion::adopt(::dup(fd), "Lock");   // same bytes
//
// A region may reserve more address space than its file holds (reserve_bytes
// > file_bytes): the unbounded Queue reserves a large range once and lets the
// file's pages come and go (touched on write, punched back after a drain), so
// processes forked earlier see every byte without remapping. Touching a byte
// past the file's end raises SIGBUS, as for any file mapping.
//
// File descriptors: a region keeps its fd open for as long as this process
// holds a handle on it, so every Lock, Queue or Value costs one fd. The first
// region made in a process therefore raises the soft RLIMIT_NOFILE to the hard
// limit (once; a failure to raise is ignored: the limit stays as it was).
//
// Safety: a SharedRegion (like the shared_ptr handles made from it) is a normal
// process-local handle. Lifetime: the last handle of this process unmaps the
// region and closes its fd; it never runs the object's destructor, because
// other processes may still use the object (every type placed here is
// therefore trivially destructible, or cleaned up explicitly by its owner).
#pragma once

#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "mp/errors.hpp"

namespace mp::detail {

// raise_fd_limit_once(): the soft RLIMIT_NOFILE up to the hard limit, the
// first time it is called in this process (thread-safe; failures ignored).
inline void raise_fd_limit_once() noexcept {
  static const bool raised = [] {
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return false;
    if (limit.rlim_cur >= limit.rlim_max) return true;
    limit.rlim_cur = limit.rlim_max;
    return ::setrlimit(RLIMIT_NOFILE, &limit) == 0;
  }();
  (void)raised;
}

// RegionMapping: the deleter of a region's bytes; it owns the mapping and the
// fd. Reachable from any handle made from the region (std::get_deleter works
// through aliasing shared_ptrs), which is how region_of() finds the fd.
struct RegionMapping {
  int fd = -1;
  std::size_t mapped_bytes = 0;  // the address range reserved (>= the file's size)
  std::byte* base = nullptr;     // where it is mapped in this process
  void operator()(std::byte* bytes) const noexcept {
    ::munmap(bytes, mapped_bytes);
    ::close(fd);  // never retried on EINTR: the fd is gone either way
  }
};

class SharedRegion {
 public:
  SharedRegion() = default;

  // SharedRegion::create(file_bytes, what, reserve_bytes): a new zeroed memfd
  // of file_bytes, mapped over max(file_bytes, reserve_bytes) bytes. Throws
  // mp::Error naming `what` and the system's reason when the kernel refuses.
  static SharedRegion create(std::size_t file_bytes, const char* what, std::size_t reserve_bytes = 0) {
    raise_fd_limit_once();
    const int fd = ::memfd_create(what, MFD_CLOEXEC);
    if (fd < 0) fail("memfd_create", what, file_bytes);
    if (::ftruncate(fd, static_cast<off_t>(file_bytes)) != 0) {
      const int err = errno;
      ::close(fd);
      errno = err;
      fail("ftruncate", what, file_bytes);
    }
    return map(fd, what, std::max(file_bytes, reserve_bytes));
  }

  // SharedRegion::adopt(fd, what, reserve_bytes): maps an existing region's fd
  // (received from another process) and takes ownership of the fd (closed when
  // the last handle drops, also when adopt throws). reserve_bytes 0 maps the
  // file's current size. Throws mp::Error when the fd cannot be mapped.
  static SharedRegion adopt(int fd, const char* what, std::size_t reserve_bytes = 0) {
    std::size_t bytes = reserve_bytes;
    if (bytes == 0) {
      struct stat st {};
      if (::fstat(fd, &st) != 0) {
        const int err = errno;
        ::close(fd);
        errno = err;
        fail("fstat", what, 0);
      }
      bytes = static_cast<std::size_t>(st.st_size);
    }
    return map(fd, what, bytes);
  }

  [[nodiscard]] std::byte* data() const noexcept { return bytes_.get(); }
  // SharedRegion::fd(): the memfd (owned by the region; dup it to keep it).
  [[nodiscard]] int fd() const noexcept { return deleter()->fd; }
  // SharedRegion::size(): the bytes mapped (the reservation, >= the file).
  [[nodiscard]] std::size_t size() const noexcept { return deleter()->mapped_bytes; }
  // SharedRegion::bytes(): a handle on the bytes that shares ownership.
  [[nodiscard]] const std::shared_ptr<std::byte>& bytes() const noexcept { return bytes_; }
  [[nodiscard]] explicit operator bool() const noexcept { return bytes_ != nullptr; }

 private:
  std::shared_ptr<std::byte> bytes_;

  explicit SharedRegion(std::shared_ptr<std::byte> bytes) : bytes_(std::move(bytes)) {}
  [[nodiscard]] const RegionMapping* deleter() const noexcept {
    return std::get_deleter<RegionMapping>(bytes_);
  }

  static SharedRegion map(int fd, const char* what, std::size_t bytes) {
    if (bytes == 0) {
      ::close(fd);
      throw ValueError(std::string("map(") + what + "): an empty shared region");
    }
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      errno = err;
      fail("mmap", what, bytes);
    }
    // On bad_alloc the shared_ptr constructor calls the deleter itself (unmap, close).
    return SharedRegion(std::shared_ptr<std::byte>(static_cast<std::byte*>(p),
                                                   RegionMapping{fd, bytes, static_cast<std::byte*>(p)}));
  }

  [[noreturn]] static void fail(const char* call, const char* what, std::size_t bytes) {
    const int err = errno;
    throw Error(std::string(call) + "(" + what + ", " + std::to_string(bytes) +
                " bytes): " + std::strerror(err));
  }
};

// region_of(handle): the fd and mapped size of the region behind any handle
// made from a SharedRegion (directly or through an aliasing shared_ptr, as
// make_shared_object returns); nullopt for other pointers.
template <class T>
[[nodiscard]] std::optional<RegionMapping> region_of(const std::shared_ptr<T>& handle) noexcept {
  if (const RegionMapping* mapping = std::get_deleter<RegionMapping>(handle)) return *mapping;
  return std::nullopt;
}

// map_shared_bytes(size, what): a zeroed shared region of `size` bytes (a
// memfd, see above). Throws mp::Error naming `what` when the kernel refuses.
inline std::shared_ptr<std::byte> map_shared_bytes(std::size_t size, const char* what) {
  return SharedRegion::create(size, what).bytes();
}

// make_shared_object<T>(what, args...): constructs a T in its own shared
// region (page-aligned, so any alignment T needs is met) and returns a handle
// that shares ownership of the mapping (region_of(handle) finds its fd).
template <class T, class... Args>
std::shared_ptr<T> make_shared_object(const char* what, Args&&... args) {
  static_assert(alignof(T) <= 4096, "shared objects are page-aligned");
  auto bytes = map_shared_bytes(sizeof(T), what);
  T* object = ::new (static_cast<void*>(bytes.get())) T(std::forward<Args>(args)...);
  return std::shared_ptr<T>(std::move(bytes), object);  // aliasing: owns the mapping
}

}  // namespace mp::detail
