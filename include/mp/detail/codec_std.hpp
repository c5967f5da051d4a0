// mp/detail/codec_std.hpp — codecs of the standard library types mp supports.
//
// Wire formats (all integers little-endian; a length is a uint64):
//   std::basic_string<C>   length in characters, then the characters (one memcpy)
//   vector/deque/list<T>   length, then each element (vector of bitwise T: one memcpy)
//   std::vector<bool>      length, then one byte 0/1 per element
//   std::array<T, N>       the N elements (bitwise T: one memcpy)
//   set/unordered_set<T>   length, then each key; a repeated key is a CodecError
//   map/unordered_map<K,V> length, then key, value, key, value...; a repeated key is a CodecError
//   pair<A,B>, tuple<Ts..> the members in order
//   optional<T>            one byte 0 (empty) or 1 (then the value)
//   variant<Ts...>         uint32 index, then that alternative
//   monostate              nothing
//   chrono::duration<R,P>  the count, as R
// Every decode checks a length against the bytes left before allocating.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <optional>
#include <ratio>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

#include "mp/detail/codec_core.hpp"

namespace mp {

namespace detail {

// clang-format off
template <class T, class A> struct has_std_codec<std::vector<T, A>> : std::true_type {};
template <class C, class Tr, class A> struct has_std_codec<std::basic_string<C, Tr, A>> : std::true_type {};
template <class T, std::size_t N> struct has_std_codec<std::array<T, N>> : std::true_type {};
template <class T, class A> struct has_std_codec<std::deque<T, A>> : std::true_type {};
template <class T, class A> struct has_std_codec<std::list<T, A>> : std::true_type {};
template <class K, class V, class C, class A> struct has_std_codec<std::map<K, V, C, A>> : std::true_type {};
template <class K, class V, class H, class E, class A>
struct has_std_codec<std::unordered_map<K, V, H, E, A>> : std::true_type {};
template <class K, class C, class A> struct has_std_codec<std::set<K, C, A>> : std::true_type {};
template <class K, class H, class E, class A> struct has_std_codec<std::unordered_set<K, H, E, A>> : std::true_type {};
template <class A, class B> struct has_std_codec<std::pair<A, B>> : std::true_type {};
template <class... Ts> struct has_std_codec<std::tuple<Ts...>> : std::true_type {};
template <class T> struct has_std_codec<std::optional<T>> : std::true_type {};
template <class... Ts> struct has_std_codec<std::variant<Ts...>> : std::true_type {};
template <> struct has_std_codec<std::monostate> : std::true_type {};
template <class R, class P> struct has_std_codec<std::chrono::duration<R, P>> : std::true_type {};
// clang-format on

// reserve_count<T>(n): how many of n elements to reserve room for up front. An
// element may take far more memory than its fewest encoded bytes (an empty
// std::optional<std::array<char, 4096>> is 1 byte on the wire), so memory is
// reserved only up to 1 MiB and otherwise grows as elements actually decode:
// bytes that claim more elements than they hold fail before using much memory.
template <class T>
std::size_t reserve_count(std::size_t n) noexcept {
  constexpr std::size_t kMaxReservedBytes = std::size_t{1} << 20;
  return std::min(n, kMaxReservedBytes / sizeof(T) + 1);
}

// encode_elements(writer, range): each element's encoding, in iteration order.
template <class T, class Range>
void encode_elements(Writer& writer, const Range& range) {
  for (const auto& element : range) codec<T>::encode(writer, element);
}

// Sequences (deque, list): length, then the elements, appended one by one.
template <class T, class Sequence>
struct sequence_codec {
  static std::size_t min_size() noexcept { return 8; }
  static void encode(Writer& writer, const Sequence& sequence) {
    writer.length(sequence.size());
    encode_elements<T>(writer, sequence);
  }
  static void decode(Reader& reader, Sequence& sequence) {
    const std::size_t n = reader.length(min_encoded_size<T>(), sizeof(T));
    sequence.clear();
    for (std::size_t i = 0; i < n; ++i) codec<T>::decode(reader, sequence.emplace_back());
  }
  static void signature(std::string& out) {
    out += "vec<";
    append_signature<T>(out);
    out += ">";
  }
};

// Sets: length, then the keys; a repeated key means the bytes were not a set.
template <class K, class Set>
struct set_codec {
  static std::size_t min_size() noexcept { return 8; }
  static void encode(Writer& writer, const Set& set) {
    writer.length(set.size());
    encode_elements<K>(writer, set);
  }
  static void decode(Reader& reader, Set& set) {
    const std::size_t n = reader.length(min_encoded_size<K>(), sizeof(K));
    set.clear();
    if constexpr (requires { set.reserve(n); }) set.reserve(reserve_count<K>(n));
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t at = reader.offset();
      K key{};
      codec<K>::decode(reader, key);
      const std::size_t before = set.size();
      set.emplace_hint(set.end(), std::move(key));
      if (set.size() == before) reader.fail("repeated set key at offset " + std::to_string(at));
    }
  }
  static void signature(std::string& out) {
    out += "set<";
    append_signature<K>(out);
    out += ">";
  }
};

// Maps: length, then key, value pairs; a repeated key means the bytes were not a map.
template <class K, class V, class Map>
struct map_codec {
  static std::size_t min_size() noexcept { return 8; }
  static void encode(Writer& writer, const Map& map) {
    writer.length(map.size());
    for (const auto& [key, value] : map) {
      codec<K>::encode(writer, key);
      codec<V>::encode(writer, value);
    }
  }
  static void decode(Reader& reader, Map& map) {
    const std::size_t n = reader.length(min_encoded_size<K>() + min_encoded_size<V>(), sizeof(K) + sizeof(V));
    map.clear();
    if constexpr (requires { map.reserve(n); }) map.reserve(reserve_count<std::pair<K, V>>(n));
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t at = reader.offset();
      K key{};
      codec<K>::decode(reader, key);
      V value{};
      codec<V>::decode(reader, value);
      const std::size_t before = map.size();
      map.emplace_hint(map.end(), std::move(key), std::move(value));
      if (map.size() == before) reader.fail("repeated map key at offset " + std::to_string(at));
    }
  }
  static void signature(std::string& out) {
    out += "map<";
    append_signature_list<K, V>(out);
    out += ">";
  }
};

// Tuples and pairs: the members in order.
template <class Tuple, class... Ts>
struct tuple_codec {
  static std::size_t min_size() { return (std::size_t{0} + ... + min_encoded_size<Ts>()); }
  static void encode(Writer& writer, const Tuple& tuple) {
    std::apply([&writer](const auto&... member) { (codec<Ts>::encode(writer, member), ...); }, tuple);
  }
  static void decode(Reader& reader, Tuple& tuple) {
    std::apply([&reader](auto&... member) { (codec<Ts>::decode(reader, member), ...); }, tuple);
  }
  static void signature(std::string& out) {
    out += "tup<";
    append_signature_list<Ts...>(out);
    out += ">";
  }
};

}  // namespace detail

// std::basic_string<C>: length in characters, then the characters in one memcpy.
template <class C, class Traits, class Alloc>
requires detail::is_bitwise_v<C>
struct codec<std::basic_string<C, Traits, Alloc>> {
  using String = std::basic_string<C, Traits, Alloc>;
  // contiguous: the encoding is the length, then the object's own bytes, so
  // a Queue copies it straight between the object and its ring (mp/queue.hpp).
  static constexpr bool contiguous = true;
  using element = C;
  static std::size_t min_size() noexcept { return 8; }
  static void encode(Writer& writer, const String& text) {
    writer.length(text.size());
    writer.bytes(text.data(), text.size() * sizeof(C));
  }
  static void decode(Reader& reader, String& text) {
    const std::size_t n = reader.length(sizeof(C), sizeof(C));
    std::span<const std::byte> raw = reader.take(n * sizeof(C), "string");
    text.resize(n);
    if (n != 0) std::memcpy(text.data(), raw.data(), n * sizeof(C));
  }
  static void signature(std::string& out) {
    if constexpr (std::is_same_v<C, char>) {
      out += "str";
    } else {
      out += "str<";
      detail::append_signature<C>(out);
      out += ">";
    }
  }
};

// std::vector<T>: length, then the elements; bitwise T in one memcpy.
template <class T, class Alloc>
requires(detail::Element<T> && !std::is_same_v<T, bool>) struct codec<std::vector<T, Alloc>> {
  using Vector = std::vector<T, Alloc>;
  // contiguous: as for strings, when the elements are bitwise.
  static constexpr bool contiguous = detail::is_bitwise_v<T>;
  using element = T;
  static std::size_t min_size() noexcept { return 8; }
  static void encode(Writer& writer, const Vector& vector) {
    writer.length(vector.size());
    if constexpr (detail::is_bitwise_v<T>) {
      writer.bytes(vector.data(), vector.size() * sizeof(T));
    } else {
      detail::encode_elements<T>(writer, vector);
    }
  }
  static void decode(Reader& reader, Vector& vector) {
    if constexpr (detail::is_bitwise_v<T>) {
      const std::size_t n = reader.length(sizeof(T), sizeof(T));
      std::span<const std::byte> raw = reader.take(n * sizeof(T), "vector");
      vector.resize(n);
      if (n != 0) std::memcpy(static_cast<void*>(vector.data()), raw.data(), n * sizeof(T));
    } else {
      const std::size_t n = reader.length(detail::min_encoded_size<T>(), sizeof(T));
      vector.clear();
      vector.reserve(detail::reserve_count<T>(n));
      for (std::size_t i = 0; i < n; ++i) codec<T>::decode(reader, vector.emplace_back());
    }
  }
  static void signature(std::string& out) {
    out += "vec<";
    detail::append_signature<T>(out);
    out += ">";
  }
};

// std::vector<bool>: length, then one byte 0/1 per element.
template <class Alloc>
struct codec<std::vector<bool, Alloc>> {
  using Vector = std::vector<bool, Alloc>;
  static std::size_t min_size() noexcept { return 8; }
  static void encode(Writer& writer, const Vector& vector) {
    writer.length(vector.size());
    for (bool element : vector) codec<bool>::encode(writer, element);
  }
  static void decode(Reader& reader, Vector& vector) {
    const std::size_t n = reader.length(1, 1);
    vector.assign(n, false);
    for (std::size_t i = 0; i < n; ++i) {
      bool element = false;
      codec<bool>::decode(reader, element);
      vector[i] = element;
    }
  }
  static void signature(std::string& out) { out += "vec<bool>"; }
};

// std::array<T, N>: the N elements; bitwise T in one memcpy.
template <class T, std::size_t N>
requires detail::Element<T>
struct codec<std::array<T, N>> {
  using Array = std::array<T, N>;
  static constexpr bool bitwise = N > 0 && detail::is_bitwise_v<T> && sizeof(Array) == N * sizeof(T);
  static std::size_t min_size() { return N * detail::min_encoded_size<T>(); }
  static void encode(Writer& writer, const Array& array) {
    if constexpr (bitwise) {
      writer.bytes(array.data(), sizeof(Array));
    } else {
      detail::encode_elements<T>(writer, array);
    }
  }
  static void decode(Reader& reader, Array& array) {
    if constexpr (bitwise) {
      reader.bytes(array.data(), sizeof(Array), "array");
    } else {
      for (T& element : array) codec<T>::decode(reader, element);
    }
  }
  static void signature(std::string& out) {
    out += "arr<";
    detail::append_signature<T>(out);
    out += "," + std::to_string(N) + ">";
  }
};

template <class T, class Alloc>
requires detail::Element<T>
struct codec<std::deque<T, Alloc>> : detail::sequence_codec<T, std::deque<T, Alloc>> {
};

template <class T, class Alloc>
requires detail::Element<T>
struct codec<std::list<T, Alloc>> : detail::sequence_codec<T, std::list<T, Alloc>> {
};

template <class K, class Compare, class Alloc>
requires detail::Element<K>
struct codec<std::set<K, Compare, Alloc>> : detail::set_codec<K, std::set<K, Compare, Alloc>> {
};

template <class K, class Hash, class Equal, class Alloc>
requires detail::Element<K>
struct codec<std::unordered_set<K, Hash, Equal, Alloc>>
    : detail::set_codec<K, std::unordered_set<K, Hash, Equal, Alloc>> {
};

template <class K, class V, class Compare, class Alloc>
requires(detail::Element<K>&& detail::Element<V>) struct codec<std::map<K, V, Compare, Alloc>>
    : detail::map_codec<K, V, std::map<K, V, Compare, Alloc>> {
};

template <class K, class V, class Hash, class Equal, class Alloc>
requires(detail::Element<K>&& detail::Element<V>) struct codec<std::unordered_map<K, V, Hash, Equal, Alloc>>
    : detail::map_codec<K, V, std::unordered_map<K, V, Hash, Equal, Alloc>> {
};

// std::pair<A, B>: first, then second; bitwise when both are and there is no padding.
template <class A, class B>
requires(detail::Element<A>&& detail::Element<B>) struct codec<std::pair<A, B>>
    : detail::tuple_codec<std::pair<A, B>, A, B> {
  static constexpr bool bitwise = detail::is_bitwise_v<A> && detail::is_bitwise_v<B> &&
                                  std::is_trivially_copyable_v<std::pair<A, B>> &&
                                  sizeof(std::pair<A, B>) == sizeof(A) + sizeof(B);
};

template <class... Ts>
requires(detail::Element<Ts>&&...) struct codec<std::tuple<Ts...>>
    : detail::tuple_codec<std::tuple<Ts...>, Ts...> {
};

// std::optional<T>: byte 0 (empty) or 1 then the value.
template <class T>
requires detail::Element<T>
struct codec<std::optional<T>> {
  static std::size_t min_size() noexcept { return 1; }
  static void encode(Writer& writer, const std::optional<T>& value) {
    codec<bool>::encode(writer, value.has_value());
    if (value) codec<T>::encode(writer, *value);
  }
  static void decode(Reader& reader, std::optional<T>& value) {
    const std::size_t at = reader.offset();
    const auto flag = reader.scalar<std::uint8_t>("optional flag");
    if (flag > 1) {
      reader.fail("optional flag " + std::to_string(flag) + " at offset " + std::to_string(at) +
                  " is not 0 or 1");
    }
    if (flag == 0) {
      value.reset();
    } else {
      codec<T>::decode(reader, value.emplace());
    }
  }
  static void signature(std::string& out) {
    out += "opt<";
    detail::append_signature<T>(out);
    out += ">";
  }
};

// std::variant<Ts...>: uint32 index, then that alternative.
template <class... Ts>
requires(sizeof...(Ts) > 0 && (detail::Element<Ts> && ...)) struct codec<std::variant<Ts...>> {
  using Variant = std::variant<Ts...>;
  static std::size_t min_size() noexcept { return 4; }
  static void encode(Writer& writer, const Variant& value) {
    if (value.valueless_by_exception()) {
      throw CodecError("encode<" + std::string(detail::type_name<Variant>()) + ">: the variant is valueless");
    }
    writer.scalar(static_cast<std::uint32_t>(value.index()));
    std::visit(
        [&writer](const auto& alternative) {
          using Alternative = std::remove_cvref_t<decltype(alternative)>;
          codec<Alternative>::encode(writer, alternative);
        },
        value);
  }
  static void decode(Reader& reader, Variant& value) {
    const std::size_t at = reader.offset();
    const auto index = reader.scalar<std::uint32_t>("variant index");
    if (index >= sizeof...(Ts)) {
      reader.fail("variant index " + std::to_string(index) + " at offset " + std::to_string(at) +
                  " is out of range (" + std::to_string(sizeof...(Ts)) + " alternatives)");
    }
    decode_alternative(reader, value, index, std::index_sequence_for<Ts...>{});
  }
  static void signature(std::string& out) {
    out += "var<";
    detail::append_signature_list<Ts...>(out);
    out += ">";
  }

 private:
  template <std::size_t... Is>
  static void decode_alternative(Reader& reader, Variant& value, std::size_t index,
                                 std::index_sequence<Is...>) {
    const bool decoded =
        ((index == Is
              ? (codec<std::variant_alternative_t<Is, Variant>>::decode(reader, value.template emplace<Is>()),
                 true)
              : false) ||
         ...);
    (void)decoded;
  }
};

// std::monostate: encodes to nothing.
template <>
struct codec<std::monostate> {
  static std::size_t min_size() noexcept { return 0; }
  static void encode(Writer& /*writer*/, const std::monostate& /*value*/) {}
  static void decode(Reader& /*reader*/, std::monostate& /*value*/) {}
  static void signature(std::string& out) { out += "unit"; }
};

// std::chrono::duration<Rep, Period>: the count, as Rep.
template <class Rep, class Period>
requires detail::Element<Rep>
struct codec<std::chrono::duration<Rep, Period>> {
  using Duration = std::chrono::duration<Rep, Period>;
  static constexpr bool bitwise = detail::is_bitwise_v<Rep> && sizeof(Duration) == sizeof(Rep);
  static std::size_t min_size() { return detail::min_encoded_size<Rep>(); }
  static void encode(Writer& writer, const Duration& value) { codec<Rep>::encode(writer, value.count()); }
  static void decode(Reader& reader, Duration& value) {
    Rep count{};
    codec<Rep>::decode(reader, count);
    value = Duration(count);
  }
  static void signature(std::string& out) {
    out += "dur<";
    detail::append_signature<Rep>(out);
    out += "," + std::to_string(Period::num) + "/" + std::to_string(Period::den) + ">";
  }
};

}  // namespace mp
