// mp/py.hpp — mp::py::Object: a plain Python value in C++, and pickles of it.
//
// An Object holds one of the kinds Python programs pass around as plain data:
// None, bool, int (64-bit), float, str (UTF-8), bytes, list, tuple, dict.
// Connection<py::Object> sends and receives it as a pickle, the form Python's
// Connection.send()/recv() use, so a Python program and a C++ one exchange
// values with no glue:
//
//   auto conn = listener.accept<mp::py::Object>();        // mp/listener.hpp
//   mp::py::Object request = conn.recv();                 // Python sent {"x": [1, 2.5, "s"]}
//   double y = request["x"][1].as_float();                // 2.5
//   conn.send(mp::py::Dict{{"ok", true}, {"items", mp::py::List{1, "two", mp::py::None}}});
//   std::cout << request;                                 // {'x': [1, 2.5, 's']}, as Python prints it
//
// Kinds and the C++ they are built from / read as:
//   None   py::None (default)          is_none()
//   bool   bool                        as_bool()
//   int    any integer type fitting in 64 bits (else ValueError)   as_int() -> std::int64_t
//   float  double, float               as_float() -> double
//   str    std::string, string_view, const char* (UTF-8)           as_str()
//   bytes  py::Bytes                   as_bytes()
//   list   py::List{...}, std::vector<T>                           as_list()
//   tuple  py::Tuple{...}              as_tuple()
//   dict   py::Dict{{k, v}, ...}, std::map<K, V>                   as_dict()
// A getter on another kind throws ValueError naming both kinds. visit(f) calls
// f with the held value (py::NoneType, bool, std::int64_t, double,
// std::string, Bytes, List, Tuple or Dict), like std::visit.
// == follows Python: 1 == 1.0 == True, dicts compare regardless of order, a
// list never equals a tuple, NaN equals nothing. repr() prints as Python's repr.
//
// Pickles: pickle(obj) writes protocol 4 (every Python since 3.4 reads it);
// unpickle(bytes) reads protocols 2 to 5 (what any Python's send() writes).
// Pickles that name a class or a function, or would run code when loaded
// (GLOBAL, STACK_GLOBAL, REDUCE, BUILD, INST, OBJ, NEWOBJ, NEWOBJ_EX, EXT*,
// PERSID, ...), are refused with CodecError naming the opcode and its offset:
// unlike Python's, this unpickler never runs code. Kinds outside the list
// above (set, frozenset, bytearray, out-of-band buffers) are CodecErrors too,
// and so is an int beyond 64 bits (never a wrong value), a recursive
// structure, nesting deeper than 1000, or shared references that would
// expand far beyond the pickle's own size.
//
// Safety: an Object is a value; copies are deep and independent. Concurrent
// const use is safe; mutation needs the usual external synchronisation.
// Visibility: n/a (plain values).
// Lifetime: owns everything it holds. Dict lookups are a linear scan (dicts
// keep Python's insertion order); convert a large dict to a std::unordered_map
// for many lookups.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "mp/detail/message_format.hpp"
#include "mp/errors.hpp"

namespace mp::py {

class Object;

// Python's None.
using NoneType = std::monostate;
inline constexpr NoneType None{};

// Python's bytes: any octets (a str must be UTF-8; binary data goes here).
class Bytes {
 public:
  Bytes() = default;
  explicit Bytes(std::string octets) : octets_(std::move(octets)) {}
  explicit Bytes(std::string_view octets) : octets_(octets) {}
  explicit Bytes(const char* octets) : octets_(octets) {}
  explicit Bytes(std::span<const std::byte> octets)
      : octets_(reinterpret_cast<const char*>(octets.data()), octets.size()) {}
  [[nodiscard]] const std::string& str() const noexcept { return octets_; }
  [[nodiscard]] std::span<const std::byte> span() const noexcept {
    return {reinterpret_cast<const std::byte*>(octets_.data()), octets_.size()};
  }
  [[nodiscard]] std::size_t size() const noexcept { return octets_.size(); }
  friend bool operator==(const Bytes&, const Bytes&) = default;

 private:
  std::string octets_;
};

namespace detail {
// Box<T>: a heap-held T with value semantics (deep copies), so Object can hold
// the containers that themselves hold Objects. A moved-from Box is empty;
// Object never exposes one (a moved-from Object is None).
template <class T>
class Box {
 public:
  explicit Box(T value) : held_(std::make_unique<T>(std::move(value))) {}
  Box(const Box& other) : held_(std::make_unique<T>(*other.held_)) {}
  Box(Box&&) noexcept = default;
  Box& operator=(const Box& other) {
    if (this != &other) held_ = std::make_unique<T>(*other.held_);
    return *this;
  }
  Box& operator=(Box&&) noexcept = default;
  ~Box() = default;
  [[nodiscard]] T& get() noexcept { return *held_; }
  [[nodiscard]] const T& get() const noexcept { return *held_; }

 private:
  std::unique_ptr<T> held_;
};

template <class T>
const T& unbox(const T& value) noexcept {
  return value;
}
template <class T>
const T& unbox(const Box<T>& box) noexcept {
  return box.get();
}
template <class T>
T& unbox(T& value) noexcept {
  return value;
}
template <class T>
T& unbox(Box<T>& box) noexcept {
  return box.get();
}
}  // namespace detail

class List;
class Tuple;
class Dict;

class Object {
 public:
  enum class Kind : unsigned char { none, boolean, integer, floating, string, bytes, list, tuple, dict };

  Object() noexcept = default;
  Object(NoneType) noexcept {}
  Object(bool value) noexcept : value_(value) {}
  template <std::integral I>
  requires(!std::same_as<I, bool> && !std::same_as<I, char>) Object(I value) : value_(to_int64(value)) {}
  Object(double value) noexcept : value_(value) {}
  Object(float value) noexcept : value_(static_cast<double>(value)) {}
  Object(std::string value) noexcept : value_(std::move(value)) {}
  Object(std::string_view value) : value_(std::string(value)) {}
  Object(const char* value) : value_(std::string(value)) {}
  Object(Bytes value) noexcept : value_(std::move(value)) {}
  Object(List value);
  Object(Tuple value);
  Object(Dict value);
  // From standard containers of convertible values: a vector is a list, a map a dict.
  template <class T>
  Object(const std::vector<T>& values);
  template <class K, class V, class C, class A>
  Object(const std::map<K, V, C, A>& values);

  Object(const Object&) = default;
  Object& operator=(const Object&) = default;
  // A moved-from Object is None.
  Object(Object&& other) noexcept : value_(std::move(other.value_)) { other.value_ = NoneType{}; }
  Object& operator=(Object&& other) noexcept {
    if (this != &other) {
      value_ = std::move(other.value_);
      other.value_ = NoneType{};
    }
    return *this;
  }
  ~Object() = default;

  [[nodiscard]] Kind kind() const noexcept { return static_cast<Kind>(value_.index()); }
  // Object::kind_name(): Python's type name: "NoneType", "bool", "int", ...
  [[nodiscard]] const char* kind_name() const noexcept;
  [[nodiscard]] bool is_none() const noexcept { return kind() == Kind::none; }

  // Typed getters: the held value; ValueError when the Object holds another kind.
  [[nodiscard]] bool as_bool() const { return get<bool>("bool"); }
  [[nodiscard]] std::int64_t as_int() const { return get<std::int64_t>("int"); }
  [[nodiscard]] double as_float() const { return get<double>("float"); }
  [[nodiscard]] const std::string& as_str() const { return get<std::string>("str"); }
  [[nodiscard]] const Bytes& as_bytes() const { return get<Bytes>("bytes"); }
  [[nodiscard]] const List& as_list() const { return get<detail::Box<List>>("list").get(); }
  [[nodiscard]] List& as_list() { return get<detail::Box<List>>("list").get(); }
  [[nodiscard]] const Tuple& as_tuple() const { return get<detail::Box<Tuple>>("tuple").get(); }
  [[nodiscard]] Tuple& as_tuple() { return get<detail::Box<Tuple>>("tuple").get(); }
  [[nodiscard]] const Dict& as_dict() const { return get<detail::Box<Dict>>("dict").get(); }
  [[nodiscard]] Dict& as_dict() { return get<detail::Box<Dict>>("dict").get(); }

  // Object::operator[](key): a dict's value for key (ValueError when absent or
  // not a dict); with an integer, a list's or tuple's element (negative counts
  // from the end, as in Python; ValueError out of range).
  [[nodiscard]] const Object& operator[](const Object& key) const;
  [[nodiscard]] const Object& operator[](const char* key) const { return (*this)[Object(key)]; }
  [[nodiscard]] const Object& operator[](int index) const { return (*this)[Object(index)]; }

  // Object::visit(f): f(held value) as std::visit, with the value one of
  // NoneType, bool, std::int64_t, double, std::string, Bytes, List, Tuple, Dict.
  template <class F>
  decltype(auto) visit(F&& f) const {
    return std::visit([&](const auto& held) -> decltype(auto) { return f(detail::unbox(held)); }, value_);
  }
  template <class F>
  decltype(auto) visit(F&& f) {
    return std::visit([&](auto& held) -> decltype(auto) { return f(detail::unbox(held)); }, value_);
  }

  // Object::hash(): a hash consistent with == (1, 1.0 and True hash alike);
  // ValueError for a list or dict (unhashable, as in Python).
  [[nodiscard]] std::size_t hash() const;

  // Object::repr(): what Python's repr() prints for the same value.
  [[nodiscard]] std::string repr() const;

  // Python's ==: numbers compare by value across bool/int/float; NaN equals nothing.
  friend bool operator==(const Object& a, const Object& b);

 private:
  template <class I>
  static std::int64_t to_int64(I value) {
    if constexpr (std::is_unsigned_v<I> && sizeof(I) >= sizeof(std::int64_t)) {
      if (value > static_cast<I>(INT64_MAX))
        throw ValueError("py::Object: the integer " + std::to_string(value) + " does not fit in 64 bits");
    }
    return static_cast<std::int64_t>(value);
  }

  template <class T>
  const T& get(const char* wanted) const {
    if (const T* held = std::get_if<T>(&value_)) return *held;
    throw_wrong_kind(wanted);
  }
  template <class T>
  T& get(const char* wanted) {
    if (T* held = std::get_if<T>(&value_)) return *held;
    throw_wrong_kind(wanted);
  }
  [[noreturn]] void throw_wrong_kind(const char* wanted) const;

  std::variant<NoneType, bool, std::int64_t, double, std::string, Bytes, detail::Box<List>,
               detail::Box<Tuple>, detail::Box<Dict>>
      value_;
};

// Python's list and tuple: sequences of Objects (distinct types, as in Python).
class List : public std::vector<Object> {
 public:
  using std::vector<Object>::vector;
};
class Tuple : public std::vector<Object> {
 public:
  using std::vector<Object>::vector;
};

// Python's dict: keys in insertion order; a key must be hashable in Python's
// sense (None, bool, int, float, str, bytes, or a tuple of those).
class Dict {
 public:
  using Item = std::pair<Object, Object>;
  Dict() = default;
  // Dict{{k, v}, ...}: a repeated key keeps the last value (as in Python).
  Dict(std::initializer_list<Item> items);
  // Dict::from_items(items): the same from a vector, in O(n) (keys hashed);
  // ValueError for an unhashable key.
  [[nodiscard]] static Dict from_items(std::vector<Item> items);

  // Dict::set(key, value): inserts or replaces; ValueError for an unhashable key.
  void set(Object key, Object value);
  // Dict::find(key): the value, or nullptr.
  [[nodiscard]] const Object* find(const Object& key) const;
  [[nodiscard]] Object* find(const Object& key);
  // Dict::at(key): the value; ValueError (Python's KeyError) when absent.
  [[nodiscard]] const Object& at(const Object& key) const;
  [[nodiscard]] Object& at(const Object& key);
  // Dict::operator[](key): the value, inserting None when absent (C++'s map habit).
  Object& operator[](const Object& key);
  [[nodiscard]] bool contains(const Object& key) const { return find(key) != nullptr; }
  // Dict::erase(key): true if the key was there.
  bool erase(const Object& key);

  [[nodiscard]] std::size_t size() const noexcept { return items_.size(); }
  [[nodiscard]] bool empty() const noexcept { return items_.empty(); }
  [[nodiscard]] std::vector<Item>::const_iterator begin() const noexcept { return items_.begin(); }
  [[nodiscard]] std::vector<Item>::const_iterator end() const noexcept { return items_.end(); }
  [[nodiscard]] std::vector<Item>::iterator begin() noexcept { return items_.begin(); }
  [[nodiscard]] std::vector<Item>::iterator end() noexcept { return items_.end(); }

  // Order-insensitive, as in Python.
  friend bool operator==(const Dict& a, const Dict& b);

 private:
  std::vector<Item> items_;
};

inline Object::Object(List value) : value_(detail::Box<List>(std::move(value))) {}
inline Object::Object(Tuple value) : value_(detail::Box<Tuple>(std::move(value))) {}
inline Object::Object(Dict value) : value_(detail::Box<Dict>(std::move(value))) {}

template <class T>
Object::Object(const std::vector<T>& values) : Object(List(values.begin(), values.end())) {}

template <class K, class V, class C, class A>
Object::Object(const std::map<K, V, C, A>& values) : Object(Dict{}) {
  for (const auto& [key, value] : values) as_dict().set(Object(key), Object(value));
}

// Prints repr().
std::ostream& operator<<(std::ostream& out, const Object& object);

// pickle(obj): obj as a protocol-4 pickle, which Python's pickle.loads and
// Connection.recv() read. CodecError for a str that is not UTF-8 (Python
// could not load it; use Bytes), and for nesting deeper than 1000.
[[nodiscard]] std::vector<std::byte> pickle(const Object& object);
void pickle_into(std::vector<std::byte>& out, const Object& object);

// unpickle(bytes): the Object a pickle of plain data describes. CodecError
// naming the opcode and offset for anything else (see the header comment).
[[nodiscard]] Object unpickle(std::span<const std::byte> pickle);

}  // namespace mp::py

namespace mp::detail {

// Connection<py::Object> carries pickles (mp/detail/message_format.hpp).
template <>
struct message_format<py::Object> {
  static constexpr bool specialised = true;
  static void encode_into(std::vector<std::byte>& out, const py::Object& object) {
    py::pickle_into(out, object);
  }
  static py::Object decode(std::span<const std::byte> message) { return py::unpickle(message); }
  static std::string name() { return "a pickle of plain Python data"; }
};

}  // namespace mp::detail
