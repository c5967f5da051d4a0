// mp/detail/codec_serialize.hpp — user types that opt in with a serialize() member.
//
//   struct Order {
//     std::string item;
//     std::vector<int> quantities;
//     template <class Archive> void serialize(Archive& ar) { ar(item, quantities); }
//   };
//
// The cereal convention: one member serves both directions. mp walks it with
// one of four archives: EncodeArchive (appends each member's encoding),
// DecodeArchive (decodes into each member), MinSizeArchive (sums the members'
// minimum sizes, to bound container lengths) and SignatureArchive (names the
// wire format). The wire format is the members' encodings in call order, the
// same as a std::tuple of them. `ar(a, b)`, `ar(a); ar(b);` and `ar & a & b`
// are all accepted. Archive::is_loading / is_saving tell the directions apart
// when a type needs to (most do not). A private serialize() works when the
// type declares `friend struct mp::codec_access;`.
#pragma once

#include <cstddef>
#include <string>
#include <type_traits>

#include "mp/detail/codec_core.hpp"

namespace mp {
namespace detail {

// The static_assert a member type that cannot travel meets inside serialize().
template <class T>
constexpr void check_member_encodable() {
  static_assert(Encodable<T>,
                "mp::codec: a member passed to ar(...) in serialize() is not encodable; make its type "
                "trivially copyable, give it a serialize() member, or specialise mp::codec for it");
}

class EncodeArchive {
 public:
  static constexpr bool is_loading = false;
  static constexpr bool is_saving = true;
  explicit EncodeArchive(Writer& writer) noexcept : writer_(&writer) {}

  template <class... Ts>
  EncodeArchive& operator()(const Ts&... members) {
    (encode_member(members), ...);
    return *this;
  }
  template <class T>
  EncodeArchive& operator&(const T& member) {
    encode_member(member);
    return *this;
  }

 private:
  template <class T>
  void encode_member(const T& member) {
    check_member_encodable<T>();
    if constexpr (Encodable<T>) codec<T>::encode(*writer_, member);
  }
  Writer* writer_;
};

class DecodeArchive {
 public:
  static constexpr bool is_loading = true;
  static constexpr bool is_saving = false;
  explicit DecodeArchive(Reader& reader) noexcept : reader_(&reader) {}

  template <class... Ts>
  DecodeArchive& operator()(Ts&... members) {
    (decode_member(members), ...);
    return *this;
  }
  template <class T>
  DecodeArchive& operator&(T& member) {
    decode_member(member);
    return *this;
  }

 private:
  template <class T>
  void decode_member(T& member) {
    static_assert(!std::is_const_v<T>,
                  "mp::codec: serialize() passed a const member to ar(...); it cannot be decoded");
    check_member_encodable<T>();
    if constexpr (Encodable<T>) codec<T>::decode(*reader_, member);
  }
  Reader* reader_;
};

class MinSizeArchive {
 public:
  static constexpr bool is_loading = false;
  static constexpr bool is_saving = true;

  template <class... Ts>
  MinSizeArchive& operator()(const Ts&... /*members*/) {
    ((total_ += min_encoded_size<Ts>()), ...);
    return *this;
  }
  template <class T>
  MinSizeArchive& operator&(const T& member) {
    (*this)(member);
    return *this;
  }
  [[nodiscard]] std::size_t total() const noexcept { return total_; }

 private:
  std::size_t total_ = 0;
};

class SignatureArchive {
 public:
  static constexpr bool is_loading = false;
  static constexpr bool is_saving = true;
  explicit SignatureArchive(std::string& out) noexcept : out_(&out) {}

  template <class... Ts>
  SignatureArchive& operator()(const Ts&... members) {
    (append_member(members), ...);
    return *this;
  }
  template <class T>
  SignatureArchive& operator&(const T& member) {
    append_member(member);
    return *this;
  }

 private:
  template <class T>
  void append_member(const T& /*member*/) {
    if (!first_) *out_ += ",";
    first_ = false;
    append_signature<T>(*out_);
  }
  std::string* out_;
  bool first_ = true;
};

}  // namespace detail

// A class with a serialize(Archive&) member: its members in the order serialize() names them.
template <class T>
requires(detail::HasSerialize<T> && !detail::has_std_codec_v<T>) struct codec<T> {
  // serialize() is a non-const member by convention (cereal's); encoding only reads through it.
  static void encode(Writer& writer, const T& value) {
    detail::EncodeArchive archive(writer);
    codec_access::serialize(const_cast<T&>(value), archive);
  }
  static void decode(Reader& reader, T& value) {
    const Reader::Nesting nesting(reader);
    detail::DecodeArchive archive(reader);
    codec_access::serialize(value, archive);
  }
  // codec<T>::min_size(): walks serialize() once on a default-constructed T.
  static std::size_t min_size() {
    static const std::size_t size = [] {
      T probe{};
      detail::MinSizeArchive archive;
      codec_access::serialize(probe, archive);
      return archive.total();
    }();
    return size;
  }
  // codec<T>::signature(out): "tup<member signatures>", walking serialize() on a
  // default-constructed T; a type that contains itself (through a container) is "rec".
  static void signature(std::string& out) {
    static thread_local bool in_progress = false;
    if (in_progress) {
      out += "rec";
      return;
    }
    in_progress = true;
    try {
      out += "tup<";
      T probe{};
      detail::SignatureArchive archive(out);
      codec_access::serialize(probe, archive);
      out += ">";
    } catch (...) {
      in_progress = false;
      throw;
    }
    in_progress = false;
  }
};

}  // namespace mp
