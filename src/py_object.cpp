// src/py_object.cpp — mp::py::Object: Python's equality, repr() and dict
// behaviour for plain values (mp/py.hpp). Pickling is in pickle_writer.cpp
// and pickle_reader.cpp.
#include <bit>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ostream>
#include <random>
#include <string>
#include <unordered_map>

#include "mp/py.hpp"

namespace mp::py {
namespace {

bool is_number(const Object& object) {
  auto kind = object.kind();
  return kind == Object::Kind::boolean || kind == Object::Kind::integer || kind == Object::Kind::floating;
}

// Compares two numbers as Python does: exactly, even between int64 and double.
bool numbers_equal(const Object& a, const Object& b) {
  auto as_integer = [](const Object& o) -> std::int64_t {
    return o.kind() == Object::Kind::boolean ? (o.as_bool() ? 1 : 0) : o.as_int();
  };
  bool a_float = a.kind() == Object::Kind::floating;
  bool b_float = b.kind() == Object::Kind::floating;
  if (!a_float && !b_float) return as_integer(a) == as_integer(b);
  if (a_float && b_float) return a.as_float() == b.as_float();
  double d = a_float ? a.as_float() : b.as_float();
  std::int64_t i = a_float ? as_integer(b) : as_integer(a);
  // Exact: d equals i only if d is integral and in int64's range, and then
  // the comparison is done in integers (no rounding of i to double).
  if (!std::isfinite(d) || d != std::trunc(d)) return false;
  if (d < -9223372036854775808.0 || d >= 9223372036854775808.0) return false;
  return static_cast<std::int64_t>(d) == i;
}

// splitmix64's finaliser over a per-process random seed, so a peer cannot
// choose keys that all land in one bucket.
std::size_t mix(std::uint64_t value) {
  static const std::uint64_t seed = (std::uint64_t{std::random_device{}()} << 32) | std::random_device{}();
  value += seed + 0x9e3779b97f4a7c15ULL;
  value = (value ^ (value >> 30)) * 0xbf58476d1ce4e5b9ULL;
  value = (value ^ (value >> 27)) * 0x94d049bb133111ebULL;
  return static_cast<std::size_t>(value ^ (value >> 31));
}

void check_hashable(const Object& key) {
  switch (key.kind()) {
    case Object::Kind::list:
    case Object::Kind::dict:
      throw ValueError(std::string("py::Dict: unhashable type: '") + key.kind_name() + "' cannot be a key");
    case Object::Kind::tuple:
      for (const Object& item : key.as_tuple()) check_hashable(item);
      return;
    default: return;
  }
}

// Python's repr of a str or bytes body, with Python's choice of quotes.
void append_quoted(std::string& out, std::string_view text, bool is_bytes) {
  const bool has_single = text.find('\'') != std::string_view::npos;
  const bool has_double = text.find('"') != std::string_view::npos;
  const char quote = has_single && !has_double ? '"' : '\'';
  if (is_bytes) out += 'b';
  out += quote;
  char hex[8];
  for (std::size_t i = 0; i < text.size(); ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c == static_cast<unsigned char>(quote) || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f || (is_bytes && c >= 0x80)) {
      std::snprintf(hex, sizeof(hex), "\\x%02x", c);
      out += hex;
    } else if (!is_bytes && c >= 0x80) {
      // A UTF-8 sequence: Python prints printable characters as they are and
      // escapes the C1 controls, NBSP and the soft hyphen (U+0080..U+00A0, U+00AD).
      if (c == 0xc2 && i + 1 < text.size()) {
        auto next = static_cast<unsigned char>(text[i + 1]);
        if (next <= 0xa0 || next == 0xad) {
          std::snprintf(hex, sizeof(hex), "\\x%02x", next);
          out += hex;
          ++i;
          continue;
        }
      }
      out += static_cast<char>(c);
    } else {
      out += static_cast<char>(c);
    }
  }
  out += quote;
}

// Python's repr of a float: the shortest digits that round-trip, in fixed
// notation when the exponent is in [-4, 16), else scientific ("1e+16").
void append_float(std::string& out, double value) {
  if (std::isnan(value)) {
    out += "nan";
    return;
  }
  if (std::isinf(value)) {
    out += value < 0 ? "-inf" : "inf";
    return;
  }
  char buffer[64];
  auto result = std::to_chars(buffer, buffer + sizeof(buffer), value, std::chars_format::scientific);
  std::string_view text(buffer, static_cast<std::size_t>(result.ptr - buffer));
  std::string sign;
  if (!text.empty() && text.front() == '-') {
    sign = "-";
    text.remove_prefix(1);
  }
  auto e = text.find('e');
  std::string digits;
  for (char c : text.substr(0, e))
    if (c != '.') digits += c;
  int exponent = std::stoi(std::string(text.substr(e + 1)));
  out += sign;
  if (exponent >= -4 && exponent < 16) {
    if (exponent < 0) {
      out += "0.";
      out.append(static_cast<std::size_t>(-exponent - 1), '0');
      out += digits;
    } else {
      auto integer_digits = static_cast<std::size_t>(exponent) + 1;
      if (digits.size() <= integer_digits) {
        out += digits;
        out.append(integer_digits - digits.size(), '0');
        out += ".0";
      } else {
        out += digits.substr(0, integer_digits);
        out += '.';
        out += digits.substr(integer_digits);
      }
    }
    return;
  }
  out += digits.substr(0, 1);
  if (digits.size() > 1) {
    out += '.';
    out += digits.substr(1);
  }
  char exponent_text[16];
  std::snprintf(exponent_text, sizeof(exponent_text), "e%c%02d", exponent < 0 ? '-' : '+',
                std::abs(exponent));
  out += exponent_text;
}

void append_repr(std::string& out, const Object& object);

template <class Sequence>
void append_items(std::string& out, const Sequence& items) {
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ", ";
    append_repr(out, items[i]);
  }
}

void append_repr(std::string& out, const Object& object) {
  switch (object.kind()) {
    case Object::Kind::none: out += "None"; return;
    case Object::Kind::boolean: out += object.as_bool() ? "True" : "False"; return;
    case Object::Kind::integer: out += std::to_string(object.as_int()); return;
    case Object::Kind::floating: append_float(out, object.as_float()); return;
    case Object::Kind::string: append_quoted(out, object.as_str(), false); return;
    case Object::Kind::bytes: append_quoted(out, object.as_bytes().str(), true); return;
    case Object::Kind::list:
      out += '[';
      append_items(out, object.as_list());
      out += ']';
      return;
    case Object::Kind::tuple:
      out += '(';
      append_items(out, object.as_tuple());
      if (object.as_tuple().size() == 1) out += ',';
      out += ')';
      return;
    case Object::Kind::dict: {
      out += '{';
      bool first = true;
      for (const auto& [key, value] : object.as_dict()) {
        if (!first) out += ", ";
        first = false;
        append_repr(out, key);
        out += ": ";
        append_repr(out, value);
      }
      out += '}';
      return;
    }
  }
}

}  // namespace

const char* Object::kind_name() const noexcept {
  switch (kind()) {
    case Kind::none: return "NoneType";
    case Kind::boolean: return "bool";
    case Kind::integer: return "int";
    case Kind::floating: return "float";
    case Kind::string: return "str";
    case Kind::bytes: return "bytes";
    case Kind::list: return "list";
    case Kind::tuple: return "tuple";
    case Kind::dict: return "dict";
  }
  return "?";
}

void Object::throw_wrong_kind(const char* wanted) const {
  throw ValueError(std::string("py::Object: wanted a ") + wanted + ", but it holds a " + kind_name() + ": " +
                   repr().substr(0, 200));
}

const Object& Object::operator[](const Object& key) const {
  if (kind() == Kind::dict) return as_dict().at(key);
  if ((kind() == Kind::list || kind() == Kind::tuple) && key.kind() == Kind::integer) {
    const std::vector<Object>& items =
        kind() == Kind::list ? static_cast<const std::vector<Object>&>(as_list()) : as_tuple();
    std::int64_t index = key.as_int();
    auto size = static_cast<std::int64_t>(items.size());
    if (index < 0) index += size;
    if (index < 0 || index >= size)
      throw ValueError(std::string("py::Object: ") + kind_name() + " index " + std::to_string(key.as_int()) +
                       " out of range (size " + std::to_string(size) + ")");
    return items[static_cast<std::size_t>(index)];
  }
  throw ValueError(std::string("py::Object: a ") + kind_name() + " cannot be indexed by a " +
                   key.kind_name());
}

std::size_t Object::hash() const {
  switch (kind()) {
    case Kind::none: return mix(0x6e6f6e65);
    case Kind::boolean: return mix(as_bool() ? 1 : 0);
    case Kind::integer: return mix(static_cast<std::uint64_t>(as_int()));
    case Kind::floating: {
      double d = as_float();
      // An integral float equals the int of the same value, so it hashes alike.
      if (std::isfinite(d) && d == std::trunc(d) && d >= -9223372036854775808.0 && d < 9223372036854775808.0)
        return mix(static_cast<std::uint64_t>(static_cast<std::int64_t>(d)));
      return mix(std::bit_cast<std::uint64_t>(d) ^ 0x666c6f6174ULL);
    }
    case Kind::string: return mix(std::hash<std::string_view>{}(as_str()) ^ 0x737472ULL);
    case Kind::bytes: return mix(std::hash<std::string_view>{}(as_bytes().str()) ^ 0x6279746573ULL);
    case Kind::tuple: {
      std::uint64_t combined = 0x7475706c65ULL;
      for (const Object& item : as_tuple()) combined = mix(combined ^ item.hash());
      return mix(combined);
    }
    default: throw ValueError(std::string("py::Object: unhashable type: '") + kind_name() + "'");
  }
}

std::string Object::repr() const {
  std::string out;
  append_repr(out, *this);
  return out;
}

bool operator==(const Object& a, const Object& b) {
  if (is_number(a) && is_number(b)) return numbers_equal(a, b);
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Object::Kind::none: return true;
    case Object::Kind::string: return a.as_str() == b.as_str();
    case Object::Kind::bytes: return a.as_bytes() == b.as_bytes();
    case Object::Kind::list:
      return static_cast<const std::vector<Object>&>(a.as_list()) ==
             static_cast<const std::vector<Object>&>(b.as_list());
    case Object::Kind::tuple:
      return static_cast<const std::vector<Object>&>(a.as_tuple()) ==
             static_cast<const std::vector<Object>&>(b.as_tuple());
    case Object::Kind::dict: return a.as_dict() == b.as_dict();
    default: return false;  // numbers were handled above
  }
}

std::ostream& operator<<(std::ostream& out, const Object& object) { return out << object.repr(); }

Dict::Dict(std::initializer_list<Item> items) : Dict(from_items(std::vector<Item>(items))) {}

Dict Dict::from_items(std::vector<Item> items) {
  Dict dict;
  dict.items_.reserve(items.size());
  std::unordered_multimap<std::size_t, std::size_t> positions;  // key hash -> index in dict.items_
  positions.reserve(items.size());
  for (Item& item : items) {
    std::size_t hash = item.first.hash();  // throws ValueError for an unhashable key
    bool replaced = false;
    auto [first, last] = positions.equal_range(hash);
    for (auto it = first; it != last; ++it) {
      if (dict.items_[it->second].first == item.first) {
        dict.items_[it->second].second = std::move(item.second);
        replaced = true;
        break;
      }
    }
    if (replaced) continue;
    positions.emplace(hash, dict.items_.size());
    dict.items_.push_back(std::move(item));
  }
  return dict;
}

void Dict::set(Object key, Object value) {
  if (Object* existing = find(key)) {
    *existing = std::move(value);
    return;
  }
  check_hashable(key);
  items_.emplace_back(std::move(key), std::move(value));
}

const Object* Dict::find(const Object& key) const {
  for (const Item& item : items_)
    if (item.first == key) return &item.second;
  return nullptr;
}

Object* Dict::find(const Object& key) { return const_cast<Object*>(std::as_const(*this).find(key)); }

const Object& Dict::at(const Object& key) const {
  if (const Object* value = find(key)) return *value;
  throw ValueError("py::Dict: KeyError: " + key.repr().substr(0, 200));
}

Object& Dict::at(const Object& key) { return const_cast<Object&>(std::as_const(*this).at(key)); }

Object& Dict::operator[](const Object& key) {
  if (Object* value = find(key)) return *value;
  check_hashable(key);
  items_.emplace_back(key, Object());
  return items_.back().second;
}

bool Dict::erase(const Object& key) {
  for (auto it = items_.begin(); it != items_.end(); ++it) {
    if (it->first == key) {
      items_.erase(it);
      return true;
    }
  }
  return false;
}

bool operator==(const Dict& a, const Dict& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [key, value] : a) {
    const Object* other = b.find(key);
    if (other == nullptr || !(*other == value)) return false;
  }
  return true;
}

}  // namespace mp::py
