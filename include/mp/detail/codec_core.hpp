// mp/detail/codec_core.hpp — the codec<T> customisation point and its scalar cases.
//
// Defines mp::codec<T> (primary template: "not encodable"), mp::Encodable,
// mp::detail::is_bitwise_v, the signature and minimum-size helpers every codec
// uses, and the codecs of bool, the other arithmetic types, enums and any other
// trivially copyable type (copied as-is). The std containers live in
// codec_std.hpp, serialize() members in codec_serialize.hpp; users include
// <mp/codec.hpp>.
//
// A codec<T> specialisation provides:
//   static void encode(Writer&, const T&);
//   static void decode(Reader&, T&);            // T was default-constructed or decoded before
// and optionally:
//   static constexpr bool bitwise;              // encoding == the sizeof(T) object bytes
//   static std::size_t min_size();              // fewest bytes any value encodes to
//   static void signature(std::string& out);    // appends the wire format's name
//   static T make(Reader&);                     // decodes into a new T (no default T needed)
//   static constexpr bool shared_by_inheritance = true;
//                                               // a handle on a shared object: encodable only
//                                               // as a launch argument (codec_fds.hpp)
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <typeinfo>

#include "mp/detail/codec_io.hpp"

namespace mp {

// codec<T>: how T becomes bytes. The primary template has no encode/decode:
// T is not encodable until one of the specialisations below (or the user's) applies.
template <class T, class Enable = void>
struct codec {};

// codec_access: the codec calls serialize() through this class, so a type may
// keep serialize() private and declare `friend struct mp::codec_access;`.
struct codec_access {
  template <class T, class Archive>
  static auto serialize(T& object, Archive& archive) -> decltype(object.serialize(archive)) {
    return object.serialize(archive);
  }
};

namespace detail {

class EncodeArchive;

// HasSerialize<T>: T has the cereal-style member `template <class Archive> void serialize(Archive&)`
// (public, or private with mp::codec_access as a friend).
template <class T>
concept HasSerialize = std::is_class_v<T> && requires(T& object, EncodeArchive& archive) {
  codec_access::serialize(object, archive);
};

template <class T>
consteval bool compute_is_bitwise() {
  using Codec = codec<std::remove_cv_t<T>>;
  if constexpr (requires { Codec::bitwise; }) {
    return Codec::bitwise && std::is_trivially_copyable_v<T>;
  } else {
    return false;
  }
}

// is_bitwise_v<T>: T's encoding is exactly its sizeof(T) object bytes, so a
// memcpy encodes it and a memcpy decodes it (ints, floats, enums, PODs, and
// std::array / std::pair / durations of those when they have no padding).
// bool is not: decoding must reject a byte other than 0 or 1.
template <class T>
inline constexpr bool is_bitwise_v = compute_is_bitwise<T>();

// HasCodec<T>: codec<T> has encode and decode.
template <class T>
concept HasCodec = requires(Writer& writer, Reader& reader, const T& in, T& out) {
  codec<T>::encode(writer, in);
  codec<T>::decode(reader, out);
};

// MadeByCodec<T>: codec<T>::make(reader) decodes into a new T, so T needs no
// default constructor to be decoded (the handles of mp/detail/handle_codec.hpp).
template <class T>
concept MadeByCodec = requires(Reader& reader) {
  { codec<T>::make(reader) } -> std::same_as<T>;
};

// SharedByInheritance<T>: T is a handle on a shared object (a Queue, a Lock,
// a Value, a Connection...): it travels only as a launch argument, with its
// fd (codec_fds.hpp); mp::encode / decode refuse it at compile time.
template <class T>
concept SharedByInheritance = requires {
  requires codec<std::remove_cvref_t<T>>::shared_by_inheritance;
};

}  // namespace detail

// Encodable<T>: T can be encoded, and decoded into a new T: T is default-constructible
// (it is built, then decoded into) or bitwise (its bytes are copied into storage,
// which is how trivially copyable closures with captures travel).
template <class T>
concept Encodable = detail::HasCodec<std::remove_cvref_t<T>> &&
    (std::is_default_constructible_v<std::remove_cvref_t<T>> || detail::is_bitwise_v<std::remove_cvref_t<T>>);

namespace detail {

// Element<T>: T can be an element of a container or a member of a std product or
// sum type, which decode into default-constructed elements.
template <class T>
concept Element = Encodable<T> && std::is_default_constructible_v<std::remove_cvref_t<T>>;

// min_encoded_size<T>(): the fewest bytes any T encodes to; Reader::length uses
// it to bound a container's element count by the bytes left.
template <class T>
std::size_t min_encoded_size() {
  using Codec = codec<std::remove_cv_t<T>>;
  if constexpr (requires { Codec::min_size(); }) {
    return Codec::min_size();
  } else if constexpr (compute_is_bitwise<T>()) {
    return sizeof(T);
  } else {
    return 0;  // unknown: treated as "may be empty", which caps counts by memory
  }
}

// append_signature<T>(out): appends the name of T's wire format.
template <class T>
void append_signature(std::string& out) {
  using Codec = codec<std::remove_cv_t<T>>;
  if constexpr (requires(std::string & s) { Codec::signature(s); }) {
    Codec::signature(out);
  } else {
    out += "custom<";
    out += typeid(T).name();
    out += ">";
  }
}

template <class... Ts>
void append_signature_list(std::string& out) {
  bool first = true;
  ((out += first ? "" : ",", first = false, append_signature<Ts>(out)), ...);
}

// The std templates with a codec of their own (codec_std.hpp): the generic
// "trivially copyable" and "serialize()" codecs must never claim them.
template <class T>
struct has_std_codec : std::false_type {};

template <class T>
inline constexpr bool has_std_codec_v = has_std_codec<std::remove_cv_t<T>>::value;

}  // namespace detail

// bool: one byte, 0 or 1; any other byte is a CodecError.
template <>
struct codec<bool> {
  static std::size_t min_size() noexcept { return 1; }
  static void encode(Writer& writer, const bool& value) { writer.scalar<std::uint8_t>(value ? 1 : 0); }
  static void decode(Reader& reader, bool& value) {
    const std::size_t at = reader.offset();
    const auto byte = reader.scalar<std::uint8_t>("bool");
    if (byte > 1) {
      reader.fail("byte " + std::to_string(byte) + " at offset " + std::to_string(at) +
                  " is not a bool (0 or 1)");
    }
    value = byte == 1;
  }
  static void signature(std::string& out) { out += "bool"; }
};

// Integers, float, double: sizeof(T) little-endian bytes. long double: its
// sizeof(T) object bytes as-is (its layout is the platform's).
template <class T>
requires(std::is_arithmetic_v<T> && !std::is_same_v<T, bool>) struct codec<T> {
  static constexpr bool bitwise = std::endian::native == std::endian::little || sizeof(T) == 1;
  static std::size_t min_size() noexcept { return sizeof(T); }
  static void encode(Writer& writer, const T& value) {
    if constexpr (detail::FixedWidthScalar<T>) {
      writer.scalar(value);
    } else {
      writer.bytes(&value, sizeof(T));
    }
  }
  static void decode(Reader& reader, T& value) {
    if constexpr (detail::FixedWidthScalar<T>) {
      value = reader.scalar<T>();
    } else {
      reader.bytes(&value, sizeof(T));
    }
  }
  static void signature(std::string& out) {
    const std::string bits = std::to_string(sizeof(T) * 8);
    if constexpr (std::is_same_v<T, char>) {
      out += "char";
    } else if constexpr (std::is_same_v<T, wchar_t>) {
      out += "wchar" + bits;
    } else if constexpr (std::is_same_v<T, char8_t> || std::is_same_v<T, char16_t> ||
                         std::is_same_v<T, char32_t>) {
      out += "char" + bits;
    } else if constexpr (std::is_integral_v<T>) {
      out += (std::is_signed_v<T> ? "i" : "u") + bits;
    } else if constexpr (detail::FixedWidthScalar<T>) {
      out += "f" + bits;
    } else {
      out += "ld" + bits;
    }
  }
};

// Enums (std::byte included): encoded as their underlying type; any value of
// the underlying type decodes (an enum may hold values it does not name).
template <class T>
requires std::is_enum_v<T>
struct codec<T> {
  using Underlying = std::underlying_type_t<T>;
  static constexpr bool bitwise = detail::is_bitwise_v<Underlying>;
  static std::size_t min_size() noexcept { return sizeof(Underlying); }
  static void encode(Writer& writer, const T& value) {
    codec<Underlying>::encode(writer, static_cast<Underlying>(value));
  }
  static void decode(Reader& reader, T& value) {
    Underlying raw{};
    codec<Underlying>::decode(reader, raw);
    value = static_cast<T>(raw);
  }
  static void signature(std::string& out) {
    out += "enum<";
    codec<Underlying>::signature(out);
    out += ">";
  }
};

namespace detail {
template <class T>
concept CopiedAsIs = std::is_trivially_copyable_v<T> && !std::is_array_v<T> && !std::is_arithmetic_v<T> &&
                     !std::is_enum_v<T> && !HasSerialize<T> && !has_std_codec_v<T>;
}  // namespace detail

// Any other trivially copyable type (a struct of scalars, a pointer, ...):
// its sizeof(T) object bytes, copied as-is with one memcpy. Its layout is the
// compiler's: the same program (or ABI) must be on both ends.
template <class T>
requires detail::CopiedAsIs<T>
struct codec<T> {
  static constexpr bool bitwise = true;
  static std::size_t min_size() noexcept { return sizeof(T); }
  static void encode(Writer& writer, const T& value) { writer.bytes(&value, sizeof(T)); }
  static void decode(Reader& reader, T& value) { reader.bytes(&value, sizeof(T)); }
  static void signature(std::string& out) { out += "pod" + std::to_string(sizeof(T)); }
};

}  // namespace mp
