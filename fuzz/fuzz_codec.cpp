// libFuzzer target for mp/codec.hpp: the first byte picks a type, the rest is
// decoded as that type. Malformed bytes must throw mp::CodecError (anything
// else, a crash, a sanitizer report or a huge allocation is a bug). Bytes that
// decode must re-encode to bytes that decode to the same value, and encoding
// must be stable after one round (sets and maps sort or re-hash their keys on
// the first decode, so the input itself need not be canonical).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <list>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <variant>
#include <vector>

#include "mp/codec.hpp"

namespace {

struct Leaf {
  std::int16_t id = 0;
  std::optional<std::string> label;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(id, label);
  }
};

struct Record {
  std::string name;
  std::vector<Leaf> leaves;
  std::variant<std::monostate, double, std::string, std::vector<bool>> tag;
  std::map<std::string, std::set<std::uint8_t>> index;
  std::array<std::chrono::milliseconds, 2> delays{};
  template <class Archive>
  void serialize(Archive& ar) {
    ar(name, leaves, tag, index, delays);
  }
};

struct Tree {
  std::uint8_t value = 0;
  std::vector<Tree> children;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(value, children);
  }
};

struct Pod {
  std::int32_t a;
  std::uint16_t b;
  char c[2];
};

template <class T>
void round_trip(std::span<const std::byte> input) {
  T first;
  try {
    first = mp::decode<T>(input);
  } catch (const mp::CodecError&) {
    return;  // the expected outcome for most inputs
  }
  const std::vector<std::byte> once = mp::encode(first);
  const T second = mp::decode<T>(once);  // must not throw: it is a valid encoding
  const std::vector<std::byte> twice = mp::encode(second);
  // Unordered containers may iterate in another order once rebuilt, so they
  // are compared as values (they hold no floats, whose NaNs are never equal);
  // everything else must encode to the very same bytes.
  constexpr bool order_may_differ = std::is_same_v<T, std::unordered_map<std::int32_t, std::string>> ||
                                    std::is_same_v<T, std::unordered_set<std::string>>;
  if constexpr (order_may_differ) {
    if (!(first == second) || once.size() != twice.size()) std::abort();
  } else {
    if (once != twice) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::span<const std::byte> input(reinterpret_cast<const std::byte*>(data) + 1, size - 1);
  switch (data[0] % 20) {
    case 0: round_trip<std::int64_t>(input); break;
    case 1: round_trip<bool>(input); break;
    case 2: round_trip<std::string>(input); break;
    case 3: round_trip<std::vector<std::int32_t>>(input); break;
    case 4: round_trip<std::vector<bool>>(input); break;
    case 5: round_trip<std::vector<std::string>>(input); break;
    case 6: round_trip<std::map<std::string, std::vector<double>>>(input); break;
    case 7: round_trip<std::set<std::int16_t>>(input); break;
    case 8: round_trip<std::unordered_map<std::int32_t, std::string>>(input); break;
    case 9: round_trip<std::unordered_set<std::string>>(input); break;
    case 10: round_trip<std::tuple<std::int8_t, std::optional<std::string>, bool>>(input); break;
    case 11:
      round_trip<std::variant<std::monostate, std::int32_t, std::string, std::vector<std::uint8_t>>>(input);
      break;
    case 12: round_trip<std::list<std::deque<std::uint8_t>>>(input); break;
    case 13: round_trip<std::array<std::string, 3>>(input); break;
    case 14: round_trip<Record>(input); break;
    case 15: round_trip<Tree>(input); break;
    case 16: round_trip<std::vector<std::monostate>>(input); break;
    case 17: round_trip<std::vector<Pod>>(input); break;
    case 18: round_trip<std::pair<std::u16string, std::chrono::nanoseconds>>(input); break;
    default:
      round_trip<std::vector<std::optional<std::vector<std::variant<bool, std::string>>>>>(input);
      break;
  }
  return 0;
}
