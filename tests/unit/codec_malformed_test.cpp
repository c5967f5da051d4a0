// Bytes that are not an encoding of the asked type: every case must throw
// mp::CodecError with a message naming the type, the problem and the offset,
// never crash or allocate what a corrupt length claims (ASan would abort on a
// multi-gigabyte allocation, so these tests also run under the asan preset).
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <variant>
#include <vector>

#include "mp/codec.hpp"

namespace {

using Bytes = std::vector<std::byte>;

Bytes bytes_of(std::initializer_list<int> values) {
  Bytes out;
  for (int v : values) out.push_back(static_cast<std::byte>(v));
  return out;
}

Bytes uint64_bytes(std::uint64_t value) {
  Bytes out(8);
  for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(i)] = static_cast<std::byte>(value >> (8 * i));
  return out;
}

// The CodecError message decode<T>(bytes) throws; fails the test if it does not throw.
template <class T>
std::string decode_error(const Bytes& bytes) {
  try {
    (void)mp::decode<T>(bytes);
  } catch (const mp::CodecError& error) {
    return error.what();
  }
  ADD_FAILURE() << "decode<" << mp::codec_signature<T>() << "> accepted " << bytes.size() << " bytes";
  return {};
}

struct Record {
  std::string name;
  std::vector<std::optional<int>> slots;
  std::variant<std::monostate, double, std::string> tag;
  std::map<std::string, bool> flags;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(name, slots, tag, flags);
  }
};

struct Chain {
  int value = 0;
  std::vector<Chain> next;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(value, next);
  }
};

Chain chain_of_depth(std::size_t depth) {
  Chain root;
  Chain* link = &root;
  for (std::size_t i = 1; i < depth; ++i) link = &link->next.emplace_back();
  return root;
}

struct Empty {
  template <class Archive>
  void serialize(Archive& /*ar*/) {}
};

// Every strict prefix of a valid encoding is truncated, so decoding it must throw.
template <class T>
void expect_every_prefix_rejected(const T& value) {
  const Bytes full = mp::encode(value);
  ASSERT_NO_THROW((void)mp::decode<T>(full));
  for (std::size_t size = 0; size < full.size(); ++size) {
    const Bytes prefix(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(size));
    EXPECT_THROW((void)mp::decode<T>(prefix), mp::CodecError) << "prefix of " << size << " bytes";
  }
}

TEST(CodecMalformed, EveryTruncationThrows) {
  expect_every_prefix_rejected(std::int64_t{-1});
  expect_every_prefix_rejected(std::string("truncate me"));
  expect_every_prefix_rejected(std::vector<int>{1, 2, 3});
  expect_every_prefix_rejected(std::vector<std::string>{"a", "bc", ""});
  expect_every_prefix_rejected(std::vector<bool>{true, false});
  expect_every_prefix_rejected(std::array<std::string, 2>{"x", "y"});
  expect_every_prefix_rejected(std::map<std::string, std::vector<double>>{{"k", {1.0}}, {"l", {}}});
  expect_every_prefix_rejected(std::unordered_map<int, std::string>{{1, "one"}, {2, "two"}});
  expect_every_prefix_rejected(std::set<std::int16_t>{1, 2, 3});
  expect_every_prefix_rejected(std::unordered_set<std::string>{"p", "q"});
  expect_every_prefix_rejected(std::tuple<int, std::string, bool>{1, "t", true});
  expect_every_prefix_rejected(std::optional<std::string>{"o"});
  expect_every_prefix_rejected(std::variant<int, std::string>{std::string("v")});
  expect_every_prefix_rejected(std::chrono::seconds(3));
  expect_every_prefix_rejected(Record{"rec", {1, std::nullopt, 3}, std::string("tag"), {{"f", true}}});
}

TEST(CodecMalformed, HugeLengthIsRejectedBeforeAllocating) {
  Bytes bytes = uint64_bytes(4294967296ULL);
  bytes.resize(8 + 12);
  EXPECT_EQ(
      decode_error<std::vector<int>>(bytes),
      "decode<std::vector<int>>: length 4294967296 at offset 0 (elements of at least 4 bytes) exceeds the 12 "
      "bytes left");
  EXPECT_EQ(decode_error<std::string>(bytes),
            "decode<std::string>: length 4294967296 at offset 0 exceeds the 12 bytes left");

  // Lengths near 2^64 must not overflow the check (n * element size wraps).
  for (std::uint64_t length : {~0ULL, ~0ULL / 2 + 1, ~0ULL / 4 + 1, ~0ULL / 8 + 1, ~0ULL / 24 + 1}) {
    Bytes huge = uint64_bytes(length);
    huge.resize(8 + 16);
    EXPECT_NE(decode_error<std::vector<int>>(huge).find("exceeds the 16 bytes left"), std::string::npos);
    EXPECT_NE(decode_error<std::vector<std::string>>(huge).find("exceeds"), std::string::npos);
    EXPECT_NE(decode_error<std::vector<bool>>(huge).find("exceeds"), std::string::npos);
    EXPECT_NE(decode_error<std::list<std::vector<int>>>(huge).find("exceeds"), std::string::npos);
    EXPECT_NE((decode_error<std::map<int, std::string>>(huge).find("exceeds")), std::string::npos);
    EXPECT_NE(decode_error<std::unordered_set<std::int64_t>>(huge).find("exceeds"), std::string::npos);
    EXPECT_NE(decode_error<std::u32string>(huge).find("exceeds"), std::string::npos);
    EXPECT_NE(decode_error<std::vector<Record>>(huge).find("exceeds"), std::string::npos);
  }
}

TEST(CodecMalformed, LengthOfElementsThatEncodeToNothingIsCapped) {
  // A vector<monostate> of 1000 costs 8 bytes on the wire, so the bytes left
  // cannot bound it; a corrupt length must still not allocate without limit.
  EXPECT_EQ(mp::decode<std::vector<std::monostate>>(uint64_bytes(1000)).size(), 1000U);
  const std::string error = decode_error<std::vector<std::monostate>>(uint64_bytes(1ULL << 40));
  EXPECT_NE(error.find("length 1099511627776 at offset 0 exceeds the limit of"), std::string::npos) << error;
  EXPECT_NE(decode_error<std::vector<Empty>>(uint64_bytes(~0ULL)).find("elements that encode to no bytes"),
            std::string::npos);
}

TEST(CodecMalformed, BoolOtherThanZeroOrOneThrows) {
  EXPECT_EQ(decode_error<bool>(bytes_of({2})), "decode<bool>: byte 2 at offset 0 is not a bool (0 or 1)");
  EXPECT_THROW((void)mp::decode<bool>(bytes_of({0xff})), mp::CodecError);
  Bytes in_vector = uint64_bytes(2);
  in_vector.push_back(std::byte{1});
  in_vector.push_back(std::byte{7});
  EXPECT_NE(decode_error<std::vector<bool>>(in_vector).find("byte 7 at offset 9"), std::string::npos);
  EXPECT_THROW(((void)mp::decode<std::tuple<int, bool>>(bytes_of({0, 0, 0, 0, 3}))), mp::CodecError);
}

TEST(CodecMalformed, OptionalFlagOtherThanZeroOrOneThrows) {
  EXPECT_EQ(decode_error<std::optional<std::int8_t>>(bytes_of({2, 5})),
            "decode<std::optional<signed char>>: optional flag 2 at offset 0 is not 0 or 1");
}

TEST(CodecMalformed, VariantIndexOutOfRangeThrows) {
  using V = std::variant<int, float>;
  const std::string error = decode_error<V>(bytes_of({2, 0, 0, 0, 0, 0, 0, 0}));
  EXPECT_NE(error.find("variant index 2 at offset 0 is out of range (2 alternatives)"), std::string::npos)
      << error;
  EXPECT_THROW((void)mp::decode<V>(bytes_of({0, 0, 0, 1, 0, 0, 0, 0})), mp::CodecError);
  EXPECT_THROW((void)mp::decode<V>(bytes_of({0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})), mp::CodecError);
}

TEST(CodecMalformed, TrailingBytesThrow) {
  Bytes bytes = mp::encode(std::int32_t{5});
  bytes.push_back(std::byte{0});
  EXPECT_EQ(decode_error<std::int32_t>(bytes),
            "decode<int>: 1 trailing bytes after the value at offset 4 (bytes of another type?)");
  Bytes two_strings = mp::encode(std::string("a"));
  mp::encode_into(two_strings, std::string("b"));
  EXPECT_THROW((void)mp::decode<std::string>(two_strings), mp::CodecError);
}

TEST(CodecMalformed, RepeatedKeysThrow) {
  Bytes set_bytes = uint64_bytes(2);
  mp::encode_into(set_bytes, std::int32_t{4});
  mp::encode_into(set_bytes, std::int32_t{4});
  EXPECT_NE(decode_error<std::set<std::int32_t>>(set_bytes).find("repeated set key at offset 12"),
            std::string::npos);
  EXPECT_NE(decode_error<std::unordered_set<std::int32_t>>(set_bytes).find("repeated set key"),
            std::string::npos);

  Bytes map_bytes = uint64_bytes(2);
  mp::encode_into(map_bytes, std::pair<std::string, int>{"k", 1});
  mp::encode_into(map_bytes, std::pair<std::string, int>{"k", 2});
  EXPECT_NE((decode_error<std::map<std::string, int>>(map_bytes).find("repeated map key")),
            std::string::npos);
  EXPECT_NE((decode_error<std::unordered_map<std::string, int>>(map_bytes).find("repeated map key")),
            std::string::npos);
}

TEST(CodecMalformed, ValueOfAnotherTypeIsUsuallyRejected) {
  EXPECT_THROW((void)mp::decode<std::string>(mp::encode(std::int32_t{5})), mp::CodecError);
  EXPECT_THROW((void)mp::decode<std::int64_t>(mp::encode(std::string("hello"))), mp::CodecError);
  EXPECT_THROW((void)mp::decode<std::vector<std::string>>(mp::encode(std::vector<int>{1, 2, 3})),
               mp::CodecError);
  EXPECT_THROW((void)mp::decode<Record>(mp::encode(std::string("not a record"))), mp::CodecError);
}

TEST(CodecMalformed, ErrorsInsideNestedValuesNameTheOuterTypeAndTheOffset) {
  const Record record{"r", {}, std::monostate{}, {}};
  Bytes bytes = mp::encode(record);
  // name (8 + 1), slots (8), then the variant index at offset 17.
  bytes[17] = std::byte{9};
  const std::string error = decode_error<Record>(bytes);
  EXPECT_NE(error.find("decode<"), std::string::npos);
  EXPECT_NE(error.find("Record>: variant index 9 at offset 17 is out of range (3 alternatives)"),
            std::string::npos)
      << error;
}

TEST(CodecMalformed, EmptyInputIsTruncated) {
  EXPECT_EQ(decode_error<std::int32_t>({}),
            "decode<int>: value needs 4 bytes at offset 0 but only 0 are left");
  EXPECT_EQ(decode_error<std::string>({}),
            "decode<std::string>: length needs 8 bytes at offset 0 but only 0 are left");
  EXPECT_NO_THROW((void)mp::decode<std::monostate>({}));
  EXPECT_NO_THROW((void)mp::decode<std::tuple<>>({}));
}

TEST(CodecMalformed, RecursionDepthIsBoundedSoHostileBytesCannotOverflowTheStack) {
  EXPECT_NO_THROW((void)mp::decode<Chain>(mp::encode(chain_of_depth(mp::Reader::kMaxNesting))));
  const std::string error = decode_error<Chain>(mp::encode(chain_of_depth(mp::Reader::kMaxNesting + 1)));
  EXPECT_NE(error.find("values nest deeper than 1024 levels"), std::string::npos) << error;

  // 100000 levels of "value 0, one child": must fail fast, not recurse 100000 times.
  Bytes hostile;
  for (int level = 0; level < 100000; ++level) {
    mp::encode_into(hostile, std::int32_t{0});
    mp::encode_into(hostile, std::uint64_t{1});
  }
  EXPECT_NE(decode_error<Chain>(hostile).find("nest deeper"), std::string::npos);
}

// Every single-byte corruption of a valid encoding either decodes (to a value
// that round-trips) or throws CodecError: never another exception (length_error,
// bad_alloc), a crash or a sanitizer report.
template <class T>
void expect_corruptions_handled(const T& value) {
  const Bytes valid = mp::encode(value);
  std::size_t rejected = 0;
  for (std::size_t at = 0; at < valid.size(); ++at) {
    for (int replacement : {0x00, 0x01, 0x02, 0x7f, 0x80, 0xfe, 0xff}) {
      Bytes corrupt = valid;
      corrupt[at] = static_cast<std::byte>(replacement);
      try {
        const T decoded = mp::decode<T>(corrupt);
        const Bytes again = mp::encode(decoded);
        EXPECT_NO_THROW((void)mp::decode<T>(again)) << "byte " << at << " = " << replacement;
      } catch (const mp::CodecError&) {
        ++rejected;
      } catch (const std::exception& other) {
        ADD_FAILURE() << "byte " << at << " = " << replacement << " threw " << other.what();
      }
    }
  }
  EXPECT_GT(rejected, 0U) << "no corruption was detected at all";
}

TEST(CodecMalformed, EveryByteCorruptionDecodesOrThrowsCodecError) {
  expect_corruptions_handled(
      Record{"corrupt", {1, std::nullopt, -3}, std::string("tag"), {{"a", true}, {"b", false}}});
  expect_corruptions_handled(std::map<std::string, std::vector<std::uint16_t>>{{"k", {1, 2}}, {"z", {}}});
  expect_corruptions_handled(std::unordered_map<std::int64_t, std::optional<std::string>>{{1, "x"}, {2, {}}});
  expect_corruptions_handled(std::variant<std::monostate, std::vector<bool>, std::set<std::string>>{
      std::set<std::string>{"p", "q"}});
  expect_corruptions_handled(chain_of_depth(5));
}

}  // namespace
