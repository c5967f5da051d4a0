// mp/detail/codec_io.hpp — the byte streams under the codec: mp::Writer and mp::Reader.
//
// Writer appends little-endian, fixed-width bytes to a std::vector<std::byte>.
// Reader walks a std::span<const std::byte> and checks every read against the
// bytes left; anything malformed throws mp::CodecError whose message names the
// type being decoded, the problem and the offset:
//   decode<std::vector<int>>: length 4294967296 at offset 0 exceeds the 12 bytes left
//
// Both are plain values over caller-owned storage; neither is thread-safe, and
// neither outlives the buffer it was given. Users name them only when they
// specialise mp::codec<T> by hand (see mp/codec.hpp).
//
// The fd channel: a Writer that encodes the arguments of a launch (a Process
// started by forkserver or spawn) carries an OutgoingFds, and the Reader in
// the child an IncomingFds (mp/detail/codec_fds.hpp): a handle on a shared
// object (a Queue, a Lock, a Value, a Connection) puts its file descriptor
// there and only the fd's index (plus what it needs to map it) in the bytes.
// Everywhere else (a Queue item, a Pipe message, a Pool task) there is no
// channel, and such a handle refuses to be encoded (ProcessError).
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "mp/errors.hpp"

namespace mp {

namespace detail {

// type_name<T>(): T as the compiler spells it ("std::vector<int>"), for error messages.
// The view points into the function's static __PRETTY_FUNCTION__ string.
template <class T>
std::string_view type_name() noexcept {
  const std::string_view function = __PRETTY_FUNCTION__;
  std::size_t start = function.find("T = ");
  if (start == std::string_view::npos) return "value";
  start += 4;
  std::size_t end = function.find(';', start);
  if (end == std::string_view::npos) end = function.rfind(']');
  if (end == std::string_view::npos || end <= start) return "value";
  return function.substr(start, end - start);
}

// readable_type_name(name): the compiler's spelling with libstdc++'s inline
// namespace removed and std::basic_string<char> shown as std::string.
inline std::string readable_type_name(std::string_view name) {
  std::string text(name);
  const auto replace_all = [&text](std::string_view from, std::string_view to) {
    for (std::size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
      text.replace(at, from.size(), to);
    }
  };
  replace_all("std::__cxx11::", "std::");
  replace_all("std::basic_string<char>", "std::string");
  replace_all("std::basic_string<char, std::char_traits<char>, std::allocator<char> >", "std::string");
  return text;
}

// swap_bytes_if_big_endian(v) / from_little_endian(v): identity on little-endian hosts.
template <class T>
T swap_bytes_if_big_endian(T value) noexcept {
  static_assert(std::is_trivially_copyable_v<T>);
  if constexpr (std::endian::native == std::endian::little || sizeof(T) == 1) {
    return value;
  } else {
    unsigned char raw[sizeof(T)];
    std::memcpy(raw, &value, sizeof(T));
    for (std::size_t i = 0; i < sizeof(T) / 2; ++i) std::swap(raw[i], raw[sizeof(T) - 1 - i]);
    std::memcpy(&value, raw, sizeof(T));
    return value;
  }
}

// A scalar the Writer/Reader move as sizeof(T) little-endian bytes.
template <class T>
concept FixedWidthScalar = (std::is_integral_v<T> || std::is_same_v<T, float> ||
                            std::is_same_v<T, double>)&&!std::is_same_v<T, bool>;

// Containers whose elements encode to no bytes at all (std::monostate, empty
// structs) cannot be bounded by the bytes left; they are capped by memory instead.
inline constexpr std::size_t kMaxBytesOfZeroSizeElements = std::size_t{1} << 20;

class OutgoingFds;  // mp/detail/codec_fds.hpp
class IncomingFds;

}  // namespace detail

class Writer {
 public:
  // Writer(out): appends to out; out must outlive the Writer.
  explicit Writer(std::vector<std::byte>& out) noexcept : out_(&out) {}
  // Writer(out, fds): also collects the fds of the handles it encodes (a launch).
  Writer(std::vector<std::byte>& out, detail::OutgoingFds* fds) noexcept : out_(&out), fds_(fds) {}

  // Writer::bytes(data, size): appends size raw bytes.
  void bytes(const void* data, std::size_t size) {
    if (size == 0) return;
    // resize + memcpy rather than insert(): GCC 12 at -O3 reports a false
    // -Wstringop-overflow for vector::insert of a small fixed-size range.
    std::size_t old_size = out_->size();
    out_->resize(old_size + size);
    std::memcpy(out_->data() + old_size, data, size);
  }

  // Writer::scalar(value): appends value as sizeof(value) little-endian bytes.
  template <detail::FixedWidthScalar T>
  void scalar(T value) {
    value = detail::swap_bytes_if_big_endian(value);
    bytes(&value, sizeof(T));
  }

  // Writer::length(n): a size or element count, always a uint64.
  void length(std::size_t n) { scalar(static_cast<std::uint64_t>(n)); }

  // Writer::value(v): appends v's encoding (mp::codec<T>::encode). Defined in mp/codec.hpp.
  template <class T>
  void value(const T& v);

  // Writer::reserve(extra): room for extra more bytes without reallocating.
  void reserve(std::size_t extra) { out_->reserve(out_->size() + extra); }

  [[nodiscard]] std::vector<std::byte>& buffer() noexcept { return *out_; }
  [[nodiscard]] std::size_t size() const noexcept { return out_->size(); }
  // Writer::fds(): the launch's fd channel, or nullptr outside a launch.
  [[nodiscard]] detail::OutgoingFds* fds() const noexcept { return fds_; }

 private:
  std::vector<std::byte>* out_;
  detail::OutgoingFds* fds_ = nullptr;
};

class Reader {
 public:
  // Reader(bytes, type): reads bytes, which must outlive the Reader; type names
  // what is being decoded, for error messages ("decode<TYPE>: ...").
  explicit Reader(std::span<const std::byte> bytes, std::string_view type = "value") noexcept
      : bytes_(bytes), type_(type) {}
  // Reader(bytes, type, fds): also adopts the fds a launch carried (see Writer).
  Reader(std::span<const std::byte> bytes, std::string_view type, detail::IncomingFds* fds) noexcept
      : bytes_(bytes), type_(type), fds_(fds) {}

  // Reader::fds(): the launch's received fds, or nullptr outside a launch.
  [[nodiscard]] detail::IncomingFds* fds() const noexcept { return fds_; }

  // Reader::offset(): bytes consumed so far.
  [[nodiscard]] std::size_t offset() const noexcept { return offset_; }
  // Reader::remaining(): bytes not yet consumed.
  [[nodiscard]] std::size_t remaining() const noexcept { return bytes_.size() - offset_; }

  // Reader::fail(problem): throws CodecError "decode<TYPE>: problem".
  [[noreturn]] void fail(std::string_view problem) const {
    std::string message = "decode<" + detail::readable_type_name(type_) + ">: ";
    message.append(problem);
    throw CodecError(message);
  }

  // Reader::take(size): a view of the next size bytes; CodecError if fewer are left.
  [[nodiscard]] std::span<const std::byte> take(std::size_t size, std::string_view what = "value") {
    if (size > remaining()) {
      fail(std::string(what) + " needs " + std::to_string(size) + " bytes at offset " +
           std::to_string(offset_) + " but only " + std::to_string(remaining()) + " are left");
    }
    std::span<const std::byte> view = bytes_.subspan(offset_, size);
    offset_ += size;
    return view;
  }

  // Reader::bytes(out, size): copies the next size bytes to out; CodecError if fewer are left.
  void bytes(void* out, std::size_t size, std::string_view what = "value") {
    std::span<const std::byte> view = take(size, what);
    if (size != 0) std::memcpy(out, view.data(), size);
  }

  // Reader::scalar<T>(): the next sizeof(T) little-endian bytes as a T.
  template <detail::FixedWidthScalar T>
  [[nodiscard]] T scalar(std::string_view what = "value") {
    T value;
    bytes(&value, sizeof(T), what);
    return detail::swap_bytes_if_big_endian(value);
  }

  // Reader::length(min_element_size, element_object_size): reads a uint64 count
  // of elements that each encode to at least min_element_size bytes, and checks
  // it against the bytes left BEFORE the caller allocates anything. Elements
  // that may encode to 0 bytes are capped so that count * element_object_size
  // stays under 1 MiB.
  [[nodiscard]] std::size_t length(std::size_t min_element_size = 1, std::size_t element_object_size = 1) {
    const std::size_t at = offset_;
    const std::uint64_t n = scalar<std::uint64_t>("length");
    if (min_element_size > 0) {
      if (n > remaining() / min_element_size) {
        std::string problem = "length " + std::to_string(n) + " at offset " + std::to_string(at);
        if (min_element_size > 1) {
          problem += " (elements of at least " + std::to_string(min_element_size) + " bytes)";
        }
        fail(problem + " exceeds the " + std::to_string(remaining()) + " bytes left");
      }
    } else {
      const std::size_t cap =
          detail::kMaxBytesOfZeroSizeElements / (element_object_size == 0 ? 1 : element_object_size);
      if (n > cap) {
        fail("length " + std::to_string(n) + " at offset " + std::to_string(at) + " exceeds the limit of " +
             std::to_string(cap) + " elements that encode to no bytes");
      }
    }
    return static_cast<std::size_t>(n);
  }

  // Reader::Nesting: held while decoding a value that may contain itself (a
  // serialize() type); more than kMaxNesting levels is a CodecError, so hostile
  // bytes cannot recurse until the stack overflows.
  static constexpr std::size_t kMaxNesting = 1024;
  class Nesting {
   public:
    explicit Nesting(Reader& reader) : reader_(reader) {
      if (++reader_.depth_ > kMaxNesting) {
        --reader_.depth_;
        reader_.fail("values nest deeper than " + std::to_string(kMaxNesting) + " levels at offset " +
                     std::to_string(reader_.offset_));
      }
    }
    ~Nesting() { --reader_.depth_; }
    Nesting(const Nesting&) = delete;
    Nesting& operator=(const Nesting&) = delete;

   private:
    Reader& reader_;
  };

  // Reader::value(v): decodes into v (mp::codec<T>::decode). Defined in mp/codec.hpp.
  template <class T>
  void value(T& v);

  // Reader::finish(): CodecError unless every byte was consumed.
  void finish() const {
    if (remaining() != 0) {
      fail(std::to_string(remaining()) + " trailing bytes after the value at offset " +
           std::to_string(offset_) + " (bytes of another type?)");
    }
  }

 private:
  std::span<const std::byte> bytes_;
  std::size_t offset_ = 0;
  std::string_view type_;
  std::size_t depth_ = 0;
  detail::IncomingFds* fds_ = nullptr;
};

}  // namespace mp
