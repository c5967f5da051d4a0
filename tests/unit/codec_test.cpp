// Round trips and exact byte layouts of mp/codec.hpp.
#include "mp/codec.hpp"

#include <gtest/gtest.h>

#include <array>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <deque>
#include <limits>
#include <list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>
#include <vector>

namespace {

using Bytes = std::vector<std::byte>;

Bytes bytes_of(std::initializer_list<int> values) {
  Bytes out;
  for (int v : values) out.push_back(static_cast<std::byte>(v));
  return out;
}

template <class T>
T round_trip(const T& value) {
  const Bytes encoded = mp::encode(value);
  return mp::decode<T>(encoded);
}

template <class T>
void expect_round_trip(const T& value) {
  EXPECT_EQ(round_trip(value), value) << mp::codec_signature<T>();
}

enum class Color : std::uint8_t { red = 1, green = 2 };
enum Plain { plain_a = -3, plain_b = 70000 };

struct Pod {
  std::int32_t id;
  double weight;
  bool operator==(const Pod&) const = default;
};

struct Inner {
  std::string name;
  std::vector<std::int64_t> values;
  std::optional<Pod> pod;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(name, values, pod);
  }
  bool operator==(const Inner&) const = default;
};

struct Outer {
  std::uint16_t version = 0;
  std::vector<Inner> inners;
  std::map<std::string, std::variant<std::monostate, int, std::string>> attributes;
  std::array<Inner, 2> pair_of_inners;
  std::chrono::milliseconds delay{0};
  Color color = Color::red;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(version, inners);
    ar(attributes) & pair_of_inners& delay;  // both call styles; order is the wire order
    ar(color);
  }
  bool operator==(const Outer&) const = default;
};

struct Tree {
  int value = 0;
  std::vector<Tree> children;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(value, children);
  }
  bool operator==(const Tree&) const = default;
};

// A trivially copyable type that also has serialize(): serialize() wins.
struct PodWithSerialize {
  std::int32_t a = 0;
  std::int32_t b = 0;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(b);  // only b travels
  }
};

// serialize() may be private when mp::codec_access is a friend.
class Private {
 public:
  Private() = default;
  explicit Private(std::string secret) : secret_(std::move(secret)) {}
  [[nodiscard]] const std::string& secret() const { return secret_; }

 private:
  friend struct mp::codec_access;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(secret_);
  }
  std::string secret_;
};

// A hand-written codec for a type the user cannot change.
struct Legacy {
  int x = 0;
  std::string label;
};

}  // namespace

template <>
struct mp::codec<Legacy> {
  static void encode(Writer& writer, const Legacy& value) {
    writer.value(value.label);
    writer.value(value.x);
  }
  static void decode(Reader& reader, Legacy& value) {
    reader.value(value.label);
    reader.value(value.x);
  }
};

namespace {

// ---------------------------------------------------------------- traits

static_assert(mp::Encodable<int> && mp::Encodable<std::string> && mp::Encodable<Pod> && mp::Encodable<Outer>);
static_assert(mp::Encodable<Tree> && mp::Encodable<Legacy> && mp::Encodable<std::vector<Legacy>>);
static_assert(!mp::Encodable<std::unique_ptr<int>>);
static_assert(!mp::Encodable<std::vector<std::unique_ptr<int>>>);
static_assert(!mp::Encodable<std::map<int, std::unique_ptr<int>>>);
static_assert(!mp::Encodable<std::optional<std::unique_ptr<int>>>);
static_assert(!mp::Encodable<std::variant<int, std::unique_ptr<int>>>);

static_assert(mp::detail::is_bitwise_v<int> && mp::detail::is_bitwise_v<double> &&
              mp::detail::is_bitwise_v<char>);
static_assert(mp::detail::is_bitwise_v<Pod> && mp::detail::is_bitwise_v<Color> &&
              mp::detail::is_bitwise_v<std::byte>);
static_assert(mp::detail::is_bitwise_v<std::array<double, 4>> &&
              mp::detail::is_bitwise_v<std::chrono::nanoseconds>);
static_assert(!mp::detail::is_bitwise_v<bool>, "a bool must be validated on decode");
static_assert(!mp::detail::is_bitwise_v<std::array<bool, 2>>);
static_assert(!mp::detail::is_bitwise_v<std::array<int, 0>>, "an empty array encodes to 0 bytes, not sizeof");
static_assert(!mp::detail::is_bitwise_v<std::string> && !mp::detail::is_bitwise_v<std::vector<int>>);
static_assert(!mp::detail::is_bitwise_v<std::optional<int>> &&
              !mp::detail::is_bitwise_v<std::variant<int, float>>);
static_assert(!mp::detail::is_bitwise_v<std::monostate> && !mp::detail::is_bitwise_v<Inner>);
static_assert(!mp::detail::is_bitwise_v<PodWithSerialize>, "serialize() takes precedence over memcpy");
static_assert(!mp::detail::is_bitwise_v<std::pair<char, int>>, "padding must never travel as a pair");

// ---------------------------------------------------------------- round trips

TEST(Codec, RoundTripsArithmeticLimits) {
  expect_round_trip(true);
  expect_round_trip(false);
  expect_round_trip('x');
  expect_round_trip(static_cast<signed char>(-128));
  expect_round_trip(static_cast<unsigned char>(255));
  expect_round_trip(u8'a');
  expect_round_trip(u'\u20ac');
  expect_round_trip(U'\U0001F600');
  expect_round_trip(L'w');
  expect_round_trip(std::numeric_limits<std::int8_t>::min());
  expect_round_trip(std::numeric_limits<std::int16_t>::min());
  expect_round_trip(std::numeric_limits<std::int32_t>::min());
  expect_round_trip(std::numeric_limits<std::int64_t>::min());
  expect_round_trip(std::numeric_limits<std::uint16_t>::max());
  expect_round_trip(std::numeric_limits<std::uint32_t>::max());
  expect_round_trip(std::numeric_limits<std::uint64_t>::max());
  expect_round_trip(std::numeric_limits<std::size_t>::max());
  expect_round_trip(std::numeric_limits<long long>::min());
  expect_round_trip(std::numeric_limits<float>::lowest());
  expect_round_trip(std::numeric_limits<float>::denorm_min());
  expect_round_trip(std::numeric_limits<double>::max());
  expect_round_trip(-std::numeric_limits<double>::infinity());
  expect_round_trip(1.0L / 3.0L);
}

TEST(Codec, KeepsNanPayloadsAndNegativeZeroBitForBit) {
  const auto quiet = std::bit_cast<double>(std::uint64_t{0x7ff8'0000'dead'beefULL});
  const auto signalling = std::bit_cast<double>(std::uint64_t{0x7ff0'0000'0000'0001ULL});
  const auto negative_nan = std::bit_cast<float>(std::uint32_t{0xffc0'1234U});
  EXPECT_EQ(std::bit_cast<std::uint64_t>(round_trip(quiet)), 0x7ff8'0000'dead'beefULL);
  EXPECT_EQ(std::bit_cast<std::uint64_t>(round_trip(signalling)), 0x7ff0'0000'0000'0001ULL);
  EXPECT_EQ(std::bit_cast<std::uint32_t>(round_trip(negative_nan)), 0xffc0'1234U);
  EXPECT_TRUE(std::signbit(round_trip(-0.0)));
  const std::vector<double> nans{quiet, signalling, -0.0};
  const auto back = round_trip(nans);
  ASSERT_EQ(back.size(), 3U);
  EXPECT_EQ(std::memcmp(back.data(), nans.data(), sizeof(double) * 3), 0);
}

TEST(Codec, RoundTripsEnumsBytesAndPods) {
  expect_round_trip(Color::green);
  expect_round_trip(static_cast<Color>(200));  // values the enum does not name survive too
  expect_round_trip(plain_a);
  expect_round_trip(plain_b);
  expect_round_trip(std::byte{0xab});
  expect_round_trip(Pod{-7, 2.5});
  expect_round_trip(std::monostate{});
  int target = 0;
  expect_round_trip(&target);  // pointers are trivially copyable: copied as-is
}

TEST(Codec, RoundTripsStringsIncludingEmbeddedNulsAndEmpty) {
  expect_round_trip(std::string());
  expect_round_trip(std::string("hello"));
  expect_round_trip(std::string("a\0b\0", 4));
  expect_round_trip(std::string(100000, 'z'));
  expect_round_trip(std::u16string(u"h\u00e9llo"));
  expect_round_trip(std::u32string(U"\U0001F600"));
  expect_round_trip(std::wstring(L"wide"));
}

TEST(Codec, RoundTripsSequences) {
  expect_round_trip(std::vector<int>{});
  expect_round_trip(std::vector<int>{1, -2, 3});
  expect_round_trip(std::vector<bool>{});
  expect_round_trip(std::vector<bool>{true, false, true, true});
  expect_round_trip(std::vector<std::string>{"", "a", std::string(300, 'q')});
  expect_round_trip(std::vector<std::vector<int>>{{}, {1}, {2, 3}});
  expect_round_trip(std::vector<Pod>{{1, 1.5}, {2, 2.5}});
  expect_round_trip(std::array<double, 3>{1.5, -2.5, 1e300});
  expect_round_trip(std::array<int, 0>{});
  expect_round_trip(std::array<std::string, 2>{"x", ""});
  expect_round_trip(std::array<bool, 3>{true, false, true});
  expect_round_trip(std::deque<int>{});
  expect_round_trip(std::deque<std::string>{"d", "e"});
  expect_round_trip(std::list<int>{});
  expect_round_trip(std::list<std::list<int>>{{1, 2}, {}, {3}});
  expect_round_trip(std::vector<std::monostate>(5));
}

TEST(Codec, RoundTripsAssociativeContainers) {
  expect_round_trip(std::set<int>{});
  expect_round_trip(std::set<std::string>{"b", "a", "c"});
  expect_round_trip(std::unordered_set<int>{});
  expect_round_trip(std::unordered_set<std::string>{"x", "y", "z"});
  expect_round_trip(std::map<int, std::string>{});
  expect_round_trip(std::map<std::string, std::vector<int>>{{"a", {1}}, {"b", {}}});
  expect_round_trip(std::unordered_map<int, double>{});
  expect_round_trip(std::unordered_map<std::string, std::set<int>>{{"k", {3, 1}}, {"", {}}});
  std::unordered_map<int, int> big;
  for (int i = 0; i < 5000; ++i) big.emplace(i * 7919, -i);
  expect_round_trip(big);
}

TEST(Codec, RoundTripsProductAndSumTypes) {
  expect_round_trip(std::pair<int, std::string>{4, "four"});
  expect_round_trip(std::pair<char, std::int64_t>{'c', -1});
  expect_round_trip(std::tuple<>{});
  expect_round_trip(std::tuple<int, std::string, double, bool>{1, "t", 0.5, true});
  expect_round_trip(std::optional<int>{});
  expect_round_trip(std::optional<int>{0});
  expect_round_trip(std::optional<std::string>{"opt"});
  expect_round_trip(std::optional<std::optional<int>>{std::optional<int>{}});
  using V = std::variant<std::monostate, int, std::string, std::vector<double>>;
  expect_round_trip(V{});
  expect_round_trip(V{42});
  expect_round_trip(V{std::string("s")});
  expect_round_trip(V{std::vector<double>{1.0, 2.0}});
  using Same = std::variant<int, int>;  // alternatives are told apart by index, not type
  const auto back = round_trip(Same{std::in_place_index<1>, 9});
  EXPECT_EQ(back.index(), 1U);
  EXPECT_EQ(std::get<1>(back), 9);
}

TEST(Codec, RoundTripsDurations) {
  expect_round_trip(std::chrono::nanoseconds::max());
  expect_round_trip(std::chrono::seconds(-5));
  expect_round_trip(std::chrono::duration<double, std::milli>(2.5));
  expect_round_trip(std::chrono::hours(3));
}

TEST(Codec, RoundTripsUserTypesNestingOthers) {
  Outer outer;
  outer.version = 3;
  outer.inners = {Inner{"one", {1, 2, 3}, Pod{1, 0.5}}, Inner{"", {}, std::nullopt}};
  outer.attributes = {{"n", 5}, {"s", std::string("text")}, {"none", std::monostate{}}};
  outer.pair_of_inners = {Inner{"p", {-1}, std::nullopt}, Inner{"q", {}, Pod{2, 1.0}}};
  outer.delay = std::chrono::milliseconds(1500);
  outer.color = Color::green;
  expect_round_trip(outer);
  expect_round_trip(Outer{});
  expect_round_trip(std::vector<Outer>{outer, Outer{}, outer});
  expect_round_trip(std::map<int, Outer>{{1, outer}});
}

TEST(Codec, RoundTripsRecursiveUserTypes) {
  Tree tree{1, {Tree{2, {}}, Tree{3, {Tree{4, {}}}}}};
  expect_round_trip(tree);
}

TEST(Codec, TriviallyCopyableClosuresWithCapturesRoundTrip) {
  int base = 40;
  double scale = 0.5;
  auto closure = [base, scale](int x) { return (base + x) * scale; };
  using Closure = decltype(closure);
  static_assert(!std::is_default_constructible_v<Closure>);
  static_assert(mp::Encodable<Closure> && mp::detail::is_bitwise_v<Closure>);
  static_assert(!mp::Encodable<std::vector<Closure>>, "containers build their elements first");
  const Bytes encoded = mp::encode(closure);
  ASSERT_EQ(encoded.size(), sizeof(Closure));
  const Closure back = mp::decode<Closure>(encoded);
  EXPECT_EQ(back(2), 21.0);
  EXPECT_THROW((void)mp::decode<Closure>(Bytes(sizeof(Closure) - 1)), mp::CodecError);
}

TEST(Codec, PrivateSerializeWorksThroughCodecAccess) {
  static_assert(mp::Encodable<Private>);
  EXPECT_EQ(mp::decode<Private>(mp::encode(Private("hidden"))).secret(), "hidden");
  EXPECT_EQ(mp::codec_signature<Private>(), "tup<str>");
}

TEST(Codec, SerializeTakesPrecedenceOverMemcpy) {
  const Bytes encoded = mp::encode(PodWithSerialize{1, 2});
  EXPECT_EQ(encoded, bytes_of({2, 0, 0, 0}));
  const auto back = mp::decode<PodWithSerialize>(encoded);
  EXPECT_EQ(back.a, 0);
  EXPECT_EQ(back.b, 2);
}

TEST(Codec, HandWrittenCodecSpecialisationIsUsed) {
  const Legacy legacy{7, "seven"};
  const Bytes encoded = mp::encode(legacy);
  ASSERT_EQ(encoded.size(), 8U + 5U + 4U);  // label first, as the specialisation writes it
  EXPECT_EQ(encoded[0], std::byte{5});
  const auto back = mp::decode<Legacy>(encoded);
  EXPECT_EQ(back.x, 7);
  EXPECT_EQ(back.label, "seven");
}

TEST(Codec, EncodeIntoAppendsAndReaderReadsInSequence) {
  Bytes buffer = bytes_of({0xee});
  mp::encode_into(buffer, std::string("ab"));
  mp::encode_into(buffer, std::int16_t{-2});
  ASSERT_EQ(buffer.size(), 1U + 8U + 2U + 2U);
  mp::Reader reader(std::span<const std::byte>(buffer).subspan(1));
  std::string text = "previous contents are replaced";
  std::int16_t number = 0;
  reader.value(text);
  reader.value(number);
  reader.finish();
  EXPECT_EQ(text, "ab");
  EXPECT_EQ(number, -2);
}

TEST(Codec, DecodingIntoAFilledContainerReplacesItsContents) {
  const Bytes encoded = mp::encode(std::map<int, int>{{1, 1}});
  std::map<int, int> target{{5, 5}, {6, 6}};
  mp::Reader reader(encoded);
  reader.value(target);
  EXPECT_EQ(target, (std::map<int, int>{{1, 1}}));
}

TEST(Codec, LargeVectorRoundTrips) {
  std::vector<std::uint32_t> large(1U << 20);
  for (std::size_t i = 0; i < large.size(); ++i) large[i] = static_cast<std::uint32_t>(i * 2654435761U);
  expect_round_trip(large);
}

// ---------------------------------------------------------------- byte layout

TEST(CodecLayout, ScalarsAreLittleEndianFixedWidth) {
  EXPECT_EQ(mp::encode(std::int32_t{0x01020304}), bytes_of({4, 3, 2, 1}));
  EXPECT_EQ(mp::encode(std::int16_t{-2}), bytes_of({0xfe, 0xff}));
  EXPECT_EQ(mp::encode(std::uint64_t{0x0102030405060708ULL}), bytes_of({8, 7, 6, 5, 4, 3, 2, 1}));
  EXPECT_EQ(mp::encode(true), bytes_of({1}));
  EXPECT_EQ(mp::encode(false), bytes_of({0}));
  EXPECT_EQ(mp::encode(1.0), bytes_of({0, 0, 0, 0, 0, 0, 0xf0, 0x3f}));
  EXPECT_EQ(mp::encode(-2.0F), bytes_of({0, 0, 0, 0xc0}));
  EXPECT_EQ(mp::encode(Color::green), bytes_of({2}));
  EXPECT_EQ(mp::encode(plain_b), bytes_of({0x70, 0x11, 0x01, 0x00}));
  EXPECT_EQ(mp::encode(std::chrono::milliseconds(258)), bytes_of({2, 1, 0, 0, 0, 0, 0, 0}));
  EXPECT_TRUE(mp::encode(std::monostate{}).empty());
}

TEST(CodecLayout, LengthsAreUint64) {
  EXPECT_EQ(mp::encode(std::string("ab")), bytes_of({2, 0, 0, 0, 0, 0, 0, 0, 'a', 'b'}));
  EXPECT_EQ(mp::encode(std::vector<std::uint16_t>{1, 0x0203}),
            bytes_of({2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 3, 2}));
  EXPECT_EQ(mp::encode(std::vector<bool>{true, false}), bytes_of({2, 0, 0, 0, 0, 0, 0, 0, 1, 0}));
  EXPECT_EQ(mp::encode(std::set<std::uint8_t>{9, 3}), bytes_of({2, 0, 0, 0, 0, 0, 0, 0, 3, 9}));
  EXPECT_EQ(mp::encode(std::map<std::uint8_t, bool>{{4, true}}), bytes_of({1, 0, 0, 0, 0, 0, 0, 0, 4, 1}));
}

TEST(CodecLayout, OptionalVariantTupleAndArray) {
  EXPECT_EQ(mp::encode(std::optional<std::int8_t>{}), bytes_of({0}));
  EXPECT_EQ(mp::encode(std::optional<std::int8_t>{5}), bytes_of({1, 5}));
  EXPECT_EQ(mp::encode(std::variant<std::int8_t, std::uint16_t>{std::uint16_t{7}}),
            bytes_of({1, 0, 0, 0, 7, 0}));
  EXPECT_EQ(mp::encode(std::pair<std::uint8_t, std::uint16_t>{1, 2}), bytes_of({1, 2, 0}));
  EXPECT_EQ(mp::encode(std::tuple<bool, std::uint8_t>{true, 6}), bytes_of({1, 6}));
  EXPECT_EQ(mp::encode(std::array<std::uint16_t, 2>{1, 2}), bytes_of({1, 0, 2, 0}));
}

TEST(CodecLayout, BitwiseValuesAndContainersAreTheirObjectBytes) {
  const Pod pod{0x11223344, 3.25};
  const Bytes pod_bytes = mp::encode(pod);
  ASSERT_EQ(pod_bytes.size(), sizeof(Pod));
  EXPECT_EQ(std::memcmp(pod_bytes.data(), &pod, sizeof(Pod)), 0);

  const std::vector<Pod> pods{{1, 1.0}, {2, 2.0}};
  const Bytes vector_bytes = mp::encode(pods);
  ASSERT_EQ(vector_bytes.size(), 8 + 2 * sizeof(Pod));
  EXPECT_EQ(std::memcmp(vector_bytes.data() + 8, pods.data(), 2 * sizeof(Pod)), 0);
}

TEST(CodecLayout, UserTypeIsItsMembersInOrderLikeATuple) {
  const Inner inner{"n", {7}, std::nullopt};
  EXPECT_EQ(mp::encode(inner),
            mp::encode(std::tuple<std::string, std::vector<std::int64_t>, std::optional<Pod>>("n", {7},
                                                                                              std::nullopt)));
}

// ---------------------------------------------------------------- signatures

TEST(CodecSignature, NamesTheWireFormatStructurally) {
  EXPECT_EQ(mp::codec_signature<std::int64_t>(), "i64");
  EXPECT_EQ(mp::codec_signature<std::uint8_t>(), "u8");
  EXPECT_EQ(mp::codec_signature<bool>(), "bool");
  EXPECT_EQ(mp::codec_signature<char>(), "char");
  EXPECT_EQ(mp::codec_signature<double>(), "f64");
  EXPECT_EQ(mp::codec_signature<float>(), "f32");
  EXPECT_EQ(mp::codec_signature<std::string>(), "str");
  EXPECT_EQ(mp::codec_signature<std::vector<std::string>>(), "vec<str>");
  EXPECT_EQ(mp::codec_signature<std::deque<std::string>>(), "vec<str>");  // same wire format as a vector
  EXPECT_EQ((mp::codec_signature<std::array<int, 3>>()), "arr<i32,3>");
  EXPECT_EQ(mp::codec_signature<std::set<int>>(), "set<i32>");
  EXPECT_EQ((mp::codec_signature<std::unordered_map<std::string, std::optional<double>>>()),
            "map<str,opt<f64>>");
  EXPECT_EQ((mp::codec_signature<std::variant<std::monostate, int>>()), "var<unit,i32>");
  EXPECT_EQ((mp::codec_signature<std::pair<int, std::string>>()), "tup<i32,str>");
  EXPECT_EQ(mp::codec_signature<std::chrono::milliseconds>(), "dur<i64,1/1000>");
  EXPECT_EQ(mp::codec_signature<Color>(), "enum<u8>");
  EXPECT_EQ(mp::codec_signature<Pod>(), "pod16");
  EXPECT_EQ(mp::codec_signature<Inner>(), "tup<str,vec<i64>,opt<pod16>>");
  EXPECT_EQ(mp::codec_signature<Tree>(), "tup<i32,vec<rec>>");
  EXPECT_EQ(mp::codec_signature<Inner>(),
            (mp::codec_signature<std::tuple<std::string, std::vector<std::int64_t>, std::optional<Pod>>>()));
}

TEST(CodecSignature, DiffersBetweenDifferentWireFormats) {
  EXPECT_NE(mp::codec_signature<int>(), mp::codec_signature<unsigned>());
  EXPECT_NE(mp::codec_signature<int>(), mp::codec_signature<std::int64_t>());
  EXPECT_NE(mp::codec_signature<std::chrono::seconds>(), mp::codec_signature<std::chrono::milliseconds>());
  EXPECT_NE(mp::codec_signature<Inner>(), mp::codec_signature<Outer>());
  EXPECT_NE(mp::codec_signature<std::vector<int>>(), mp::codec_signature<std::set<int>>());
  EXPECT_EQ(mp::codec_signature<Outer>(), mp::codec_signature<Outer>());
}

}  // namespace
