// mp/shared.hpp — mp::Value<T> and mp::Array<T>, Python's
// multiprocessing.Value / Array: plain data in shared memory, with a lock.
//
//   mp::Value<long> counter;                 // 0
//   mp::Array<double> samples(8);            // eight 0.0
//   {
//     std::lock_guard hold(counter.get_lock());
//     counter.value() += 1;                  // every process sees it
//   }
//
// T must be trivially copyable (it is shared as raw bytes between processes).
// value() and operator[] give direct references into the shared memory: as in
// Python, reads and writes are not atomic by themselves; hold get_lock()
// around read-modify-write sequences. Each Value / Array has its own
// mp::Lock (Python's default lock=True; get_lock() returns a handle to it).
//
// Safety: a handle may be copied and used from any thread of any process that
// has it; all copies name the same memory. Concurrent access to the data needs
// get_lock() (or std::atomic_ref on suitable T). It is shared by inheritance
// only: fork, or as an argument of a Process under any start method
// (mp/detail/handle_codec.hpp); never as a value (a Queue item, a Pipe
// message, a Pool argument).
// Visibility: what a process wrote while holding get_lock() is visible to the
// next holder.
// Lifetime: one shared region per object (a memfd, mapped MAP_SHARED: a
// header with the lock, then the data), made by the constructor; children
// forked afterwards inherit it, children started by forkserver or spawn with
// the handle as an argument map it too (get_lock() there is the same lock);
// the kernel frees it with the last handle; T's destructor is never run (T is
// trivially copyable, hence trivially destructible). Nothing appears in /dev/shm.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <new>
#include <string>
#include <type_traits>

#include "mp/detail/handle_codec.hpp"
#include "mp/detail/lock_state.hpp"
#include "mp/detail/shm.hpp"
#include "mp/errors.hpp"
#include "mp/lock.hpp"

namespace mp {

namespace detail {

// The start of every Value / Array region. The data follows at
// data_offset<T>(), aligned for T. INV1: `size` never changes after construction.
struct SharedDataHeader {
  static constexpr std::uint32_t kMagic = 0x4156504d;  // "MPVA"
  static constexpr std::uint32_t kVersion = 1;

  SharedDataHeader(std::uint64_t n, std::uint32_t element_size) noexcept
      : element_size(element_size), size(n), lock(LockKind::plain) {}

  const std::uint32_t magic = kMagic;
  const std::uint32_t version = kVersion;
  const std::uint32_t element_size;
  std::uint32_t reserved = 0;
  const std::uint64_t size;  // INV1
  LockState lock;
};

static_assert(std::is_standard_layout_v<SharedDataHeader>, "SharedDataHeader is shared between processes");
static_assert(sizeof(SharedDataHeader) == 24 + sizeof(LockState),
              "SharedDataHeader layout changed: bump kVersion");

template <class T>
constexpr std::size_t data_offset() noexcept {
  return (sizeof(SharedDataHeader) + alignof(T) - 1) / alignof(T) * alignof(T);
}

// SharedData<T>: the region and typed access to it; what Value and Array share.
template <class T>
class SharedData {
  static_assert(std::is_trivially_copyable_v<T>,
                "mp::Value<T> / mp::Array<T>: T must be trivially copyable (it is shared as raw bytes "
                "between processes); use mp::Queue for other types");
  static_assert(alignof(T) <= 4096, "mp::Value<T> / mp::Array<T>: T's alignment exceeds a page");

 public:
  SharedData(std::size_t n, const T& init, const char* what)
      : header_(make_region(n, init, what)),
        data_(reinterpret_cast<T*>(reinterpret_cast<std::byte*>(header_.get()) + data_offset<T>())),
        lock_(LockAccess::make_lock(std::shared_ptr<LockState>(header_, &header_->lock))) {}

  [[nodiscard]] T* data() const noexcept { return data_; }
  [[nodiscard]] std::size_t size() const noexcept { return static_cast<std::size_t>(header_->size); }
  // SharedData::lock(): the region's Lock handle (it shares ownership of
  // the whole region). A reference, so `std::lock_guard g(v.get_lock());`
  // works; mutable because locking a handle does not change the handle.
  [[nodiscard]] Lock& lock() const noexcept { return lock_; }
  [[nodiscard]] const std::shared_ptr<SharedDataHeader>& header() const noexcept { return header_; }

  // SharedData(AdoptTag, header, what): the data of an existing region (the
  // child's side of a launch). CodecError when its element size differs from
  // T's or its data does not fit the mapping.
  SharedData(AdoptTag, std::shared_ptr<SharedDataHeader> header, const char* what)
      : header_(checked(std::move(header), what)),
        data_(reinterpret_cast<T*>(reinterpret_cast<std::byte*>(header_.get()) + data_offset<T>())),
        lock_(LockAccess::make_lock(std::shared_ptr<LockState>(header_, &header_->lock))) {}

 private:
  std::shared_ptr<SharedDataHeader> header_;
  T* data_ = nullptr;
  mutable Lock lock_;

  // make_region(n, init, what): the mapping, with the header and n copies of init.
  static std::shared_ptr<SharedDataHeader> checked(std::shared_ptr<SharedDataHeader> header,
                                                   const char* what) {
    const std::optional<RegionMapping> mapping = region_of(header);
    const std::size_t mapped = mapping ? mapping->mapped_bytes : 0;
    if (header->element_size != sizeof(T) || header->size > (mapped - data_offset<T>()) / sizeof(T))
      throw CodecError(std::string("decode<") + what + ">: the shared region holds " +
                       std::to_string(header->size) + " elements of " + std::to_string(header->element_size) +
                       " bytes in " + std::to_string(mapped) + " bytes, not elements of this T");
    return header;
  }

  static std::shared_ptr<SharedDataHeader> make_region(std::size_t n, const T& init, const char* what) {
    if (n > (SIZE_MAX - data_offset<T>()) / sizeof(T))
      throw ValueError(std::string(what) + ": size " + std::to_string(n) + " is too large");
    auto bytes = map_shared_bytes(data_offset<T>() + n * sizeof(T), what);
    auto* header =
        ::new (static_cast<void*>(bytes.get())) SharedDataHeader(n, static_cast<std::uint32_t>(sizeof(T)));
    T* data = reinterpret_cast<T*>(bytes.get() + data_offset<T>());
    for (std::size_t i = 0; i < n; ++i) ::new (static_cast<void*>(data + i)) T(init);
    return std::shared_ptr<SharedDataHeader>(std::move(bytes), header);  // aliasing: owns the mapping
  }
};

}  // namespace detail

template <class T>
class Value;
template <class T>
class Array;

namespace detail {
template <class H>
struct is_shared_data_handle : std::false_type {};
template <class T>
struct is_shared_data_handle<Value<T>> : std::true_type {
  using element = T;
  static constexpr bool is_value = true;
};
template <class T>
struct is_shared_data_handle<Array<T>> : std::true_type {
  using element = T;
  static constexpr bool is_value = false;
};
template <class H>
inline constexpr bool is_shared_data_handle_v = is_shared_data_handle<H>::value;
}  // namespace detail

template <class T>
class Value {
 public:
  // Value::Value(init): a T in its own shared region, with its own Lock.
  // mp::Error if the kernel refuses the memory.
  explicit Value(T init = {}) : data_(1, init, "Value") {}

  // Value::value(): the shared T itself (not atomic: see get_lock()).
  [[nodiscard]] T& value() noexcept { return *data_.data(); }
  [[nodiscard]] const T& value() const noexcept { return *data_.data(); }

  // Value::get_lock(): this value's lock (a handle: copy it freely).
  [[nodiscard]] Lock& get_lock() const noexcept { return data_.lock(); }

 private:
  template <class U, class Enable>
  friend struct mp::codec;
  explicit Value(detail::SharedData<T> data) : data_(std::move(data)) {}
  detail::SharedData<T> data_;
};

template <class T>
class Array {
 public:
  // Array::Array(n, init): n copies of init in one shared region, with a Lock.
  explicit Array(std::size_t n, T init = {}) : data_(n, init, "Array") {}

  // Array::Array({a, b, c}): those elements.
  Array(std::initializer_list<T> items) : data_(items.size(), T{}, "Array") {
    std::copy(items.begin(), items.end(), data_.data());
  }

  // Array::operator[](i): the shared element i (no bounds check, as std::vector).
  [[nodiscard]] T& operator[](std::size_t i) noexcept { return data_.data()[i]; }
  [[nodiscard]] const T& operator[](std::size_t i) const noexcept { return data_.data()[i]; }

  // Array::size(): the number of elements (fixed at construction).
  [[nodiscard]] std::size_t size() const noexcept { return data_.size(); }

  [[nodiscard]] T* begin() noexcept { return data_.data(); }
  [[nodiscard]] T* end() noexcept { return data_.data() + size(); }
  [[nodiscard]] const T* begin() const noexcept { return data_.data(); }
  [[nodiscard]] const T* end() const noexcept { return data_.data() + size(); }

  // Array::get_lock(): this array's lock (a handle: copy it freely).
  [[nodiscard]] Lock& get_lock() const noexcept { return data_.lock(); }

 private:
  template <class U, class Enable>
  friend struct mp::codec;
  explicit Array(detail::SharedData<T> data) : data_(std::move(data)) {}
  detail::SharedData<T> data_;
};

// codec<Value<T>>, codec<Array<T>>: only as Process arguments (handle_codec.hpp).
template <class Handle>
requires(detail::is_shared_data_handle_v<Handle>) struct codec<Handle> {
  using Element = typename detail::is_shared_data_handle<Handle>::element;
  static constexpr bool is_value = detail::is_shared_data_handle<Handle>::is_value;
  static constexpr const char* kType = is_value ? "mp::Value" : "mp::Array";
  static constexpr bool shared_by_inheritance = true;
  static void encode(Writer& writer, const Handle& handle) {
    detail::put_shared_object(writer, handle.data_.header(), kType);
  }
  static Handle make(Reader& reader) {
    auto header = detail::take_shared_object<detail::SharedDataHeader>(reader, kType);
    if (is_value && header->size != 1) reader.fail("the shared region holds an Array, not a Value");
    return Handle(detail::SharedData<Element>(detail::AdoptTag{}, std::move(header), kType));
  }
  static void decode(Reader& reader, Handle& handle) { handle = make(reader); }
  static void signature(std::string& out) {
    out += is_value ? "handle<Value<" : "handle<Array<";
    detail::append_signature<Element>(out);
    out += ">>";
  }
};

}  // namespace mp
