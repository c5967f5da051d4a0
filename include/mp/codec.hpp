// mp/codec.hpp — values as bytes, so they can cross processes (and machines).
//
// Queue, Pipe, Pool and the Redis backend move every value through this codec.
// Built in: arithmetic types, enums, std::byte, std::string, std::vector,
// std::array, std::deque, std::list, std::map, std::unordered_map, std::set,
// std::unordered_set, std::pair, std::tuple, std::optional, std::variant,
// std::monostate, std::chrono durations, and any trivially copyable type
// (copied as-is). A user type opts in with a cereal-style member:
//
//   struct Job {
//     std::string name;
//     std::vector<double> weights;
//     template <class Archive> void serialize(Archive& ar) { ar(name, weights); }
//   };
//   std::vector<std::byte> bytes = mp::encode(Job{"x", {1.5}});
//   Job back = mp::decode<Job>(bytes);
//
// The format is little-endian and fixed-width (lengths are uint64, bool is one
// byte 0/1), the same on every machine; see mp/detail/codec_std.hpp for each
// type's layout. Ints, floats, PODs and contiguous containers of them (string,
// vector<int>, array<double, N>) encode with one memcpy. Bytes that do not
// decode as the asked type raise mp::CodecError saying what was expected and
// where ("decode<std::vector<int>>: length 4294967296 at offset 0 exceeds the
// 12 bytes left"), never undefined behaviour: lengths are checked against the
// bytes left before anything is allocated, and decode<T> rejects trailing bytes.
// A trivially copyable type's layout is the compiler's: both ends must run the
// same build (or ABI); give it serialize() to make it portable.
//
// To support a type you cannot change, specialise mp::codec<T> (namespace mp):
//   template <> struct codec<Point> {
//     static void encode(Writer& w, const Point& p) { w.value(p.x); w.value(p.y); }
//     static void decode(Reader& r, Point& p) { r.value(p.x); r.value(p.y); }
//   };
// (optionally `static std::size_t min_size()` and `static void signature(std::string&)`).
//
// Safety: every function here is reentrant and thread-safe on distinct values;
// encoding reads its argument (serialize() is called on it, and must not modify it).
// Visibility: n/a (pure functions of their arguments).
// Lifetime: encode returns an owned buffer; decode copies out of the span it is
// given, so the span may be freed as soon as decode returns.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "mp/detail/codec_core.hpp"
#include "mp/detail/codec_io.hpp"
#include "mp/detail/codec_serialize.hpp"
#include "mp/detail/codec_std.hpp"

namespace mp {

namespace detail {
template <class T>
constexpr void check_encodable() {
  static_assert(std::is_object_v<T> && !std::is_const_v<T>,
                "mp::codec: T must be a plain (non-const) object type");
  static_assert(
      Encodable<T>,
      "mp::codec: T is not encodable: make it trivially copyable, give it a member "
      "`template <class Archive> void serialize(Archive& ar) { ar(member1, member2); }`, "
      "or specialise mp::codec<T> (decoding needs T to be default-constructible or trivially copyable)");
}
// A handle on a shared object (Queue, Lock, Value, Connection, ...) is no
// value: it cannot be a Queue item, a Pipe message, a Pool argument.
template <class T>
constexpr void check_not_shared_by_inheritance() {
  static_assert(
      !SharedByInheritance<T>,
      "mp::codec: T is a handle on a shared object (a Queue, a Lock or another primitive, a Value, an "
      "Array, a Connection): such objects should only be shared between processes through "
      "inheritance: pass it to mp::Process as an argument (any start method), never as a Queue "
      "item, a Pipe message or a Pool task argument");
}

// decode_new<T>(reader): a new T decoded from reader: by codec<T>::make, or
// into a default-constructed T, or (a bitwise T without a default
// constructor, like a closure with captures) from its object bytes.
template <class T>
T decode_new(Reader& reader) {
  if constexpr (MadeByCodec<T>) {
    return codec<T>::make(reader);
  } else if constexpr (std::is_default_constructible_v<T>) {
    T value{};
    codec<T>::decode(reader, value);
    return value;
  } else {
    std::array<std::byte, sizeof(T)> raw;
    reader.bytes(raw.data(), sizeof(T));
    return std::bit_cast<T>(raw);
  }
}

}  // namespace detail

// encode_into(out, value): appends value's encoding to out.
// Throws only std::bad_alloc (and CodecError for a valueless std::variant),
// and ProcessError for a handle on a shared object nested in the value (a
// Lock inside a struct: see detail::SharedByInheritance).
template <class T>
void encode_into(std::vector<std::byte>& out, const T& value) {
  detail::check_encodable<T>();
  detail::check_not_shared_by_inheritance<T>();
  if constexpr (Encodable<T>) {
    Writer writer(out);
    codec<T>::encode(writer, value);
  }
}

// encode(value): value's encoding as a new buffer.
template <class T>
[[nodiscard]] std::vector<std::byte> encode(const T& value) {
  std::vector<std::byte> out;
  if constexpr (detail::is_bitwise_v<T>) out.reserve(sizeof(T));
  encode_into(out, value);
  return out;
}

// decode<T>(bytes): the T whose encoding is exactly bytes. Throws CodecError
// when bytes are truncated, malformed, or longer than one T.
template <class T>
[[nodiscard]] T decode(std::span<const std::byte> bytes) {
  detail::check_encodable<T>();
  detail::check_not_shared_by_inheritance<T>();
  if constexpr (Encodable<T>) {
    Reader reader(bytes, detail::type_name<T>());
    T value = detail::decode_new<T>(reader);
    reader.finish();
    return value;
  } else {
    __builtin_unreachable();  // check_encodable<T>() has already failed the compilation
  }
}

// codec_signature<T>(): a stable name of T's wire format, built from its
// structure ("i64", "vec<str>", "map<str,opt<f64>>", "tup<i32,str>" for a
// serialize() type or a pair/tuple, "pod16" for a 16-byte trivially copyable
// type). Two types with the same signature have the same wire format.
template <class T>
[[nodiscard]] std::string codec_signature() {
  detail::check_encodable<T>();
  std::string out;
  detail::append_signature<T>(out);
  return out;
}

// Writer::value(v) / Reader::value(v): a nested value, for hand-written codecs.
template <class T>
void Writer::value(const T& v) {
  detail::check_encodable<T>();
  if constexpr (Encodable<T>) codec<T>::encode(*this, v);
}

template <class T>
void Reader::value(T& v) {
  detail::check_encodable<T>();
  if constexpr (Encodable<T>) codec<T>::decode(*this, v);
}

}  // namespace mp
