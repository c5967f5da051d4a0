// src/pickle_reader.cpp — py::unpickle(): a pickle of plain data as an Object.
//
// Two passes. The first runs the pickle machine over a graph of nodes in an
// arena: containers are shared by reference while the pickle runs, as in
// Python, because the memo (MEMOIZE/BINPUT then BINGET) may hand out a list
// before it is filled. The second turns the graph into an Object tree: it
// refuses cycles (a list that contains itself has no value form), nesting
// deeper than max_depth, and shared references that would copy more than the
// budget (a few bytes of BINGETs can name a large object many times).
//
// Nothing here calls out: an opcode that would import a name, call a
// function or build an instance is refused on sight with CodecError naming it.
// Every length is checked against the bytes left before it is used, so a
// hostile pickle costs at most a small multiple of its own size.
#include <bit>
#include <cstdint>
#include <cstring>
#include <deque>
#include <string>
#include <unordered_map>
#include <vector>

#include "mp/py.hpp"
#include "pickle_opcodes.hpp"

namespace mp::py {
namespace {

using namespace mp::detail::pickle_opcode;

constexpr int max_depth = 1000;

struct Node {
  Object::Kind kind = Object::Kind::none;
  bool in_progress = false;  // on the current path of the second pass (cycle check)
  bool boolean = false;
  std::int64_t integer = 0;
  double floating = 0;
  std::size_t text_offset = 0;  // str and bytes: where the octets are in the pickle
  std::size_t text_size = 0;
  std::vector<Node*> items;  // list and tuple: elements; dict: key, value, key, value, ...
};

const char* refused_reason(unsigned char code) {
  switch (code) {
    case GLOBAL: return "GLOBAL (imports a name)";
    case STACK_GLOBAL: return "STACK_GLOBAL (imports a name)";
    case REDUCE: return "REDUCE (calls a function)";
    case BUILD: return "BUILD (sets an object's state)";
    case INST: return "INST (builds an instance of a class)";
    case OBJ: return "OBJ (builds an instance of a class)";
    case NEWOBJ: return "NEWOBJ (builds an instance of a class)";
    case NEWOBJ_EX: return "NEWOBJ_EX (builds an instance of a class)";
    case EXT1:
    case EXT2:
    case EXT4: return "EXT1/EXT2/EXT4 (names a registered class)";
    case PERSID:
    case BINPERSID: return "PERSID/BINPERSID (a persistent id resolved by code)";
    case EMPTY_SET:
    case ADDITEMS: return "EMPTY_SET/ADDITEMS (a set, not a kind py::Object holds)";
    case FROZENSET: return "FROZENSET (a frozenset, not a kind py::Object holds)";
    case BYTEARRAY8: return "BYTEARRAY8 (a bytearray, not a kind py::Object holds; send bytes)";
    case NEXT_BUFFER:
    case READONLY_BUFFER: return "NEXT_BUFFER/READONLY_BUFFER (out-of-band buffers)";
    case STRING:
    case BINSTRING:
    case SHORT_BINSTRING: return "STRING/BINSTRING/SHORT_BINSTRING (a Python 2 str)";
    case UNICODE:
    case FLOAT:
    case INT:
    case LONG:
    case PUT:
    case GET:
      return "a protocol 0 text opcode (UNICODE/FLOAT/INT/LONG/PUT/GET; send with protocol 2 or later)";
    default: return nullptr;
  }
}

class Machine {
 public:
  explicit Machine(std::span<const std::byte> pickle) : pickle_(pickle) {}

  Object run() {
    Node* result = execute();
    // The budget: every node and every octet copied counts; legitimate
    // sharing (a repeated dict key) fits easily, exponential sharing does not.
    budget_ = 16 * pickle_.size() + (std::size_t{1} << 20);
    return build(result, 0);
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw CodecError("py::unpickle: " + what + " at offset " + std::to_string(opcode_at_) + " of " +
                     std::to_string(pickle_.size()) + " bytes");
  }

  // Reads n bytes as an unsigned little-endian number.
  std::uint64_t little(std::size_t n) {
    need(n);
    std::uint64_t value = 0;
    for (std::size_t i = 0; i < n; ++i) value |= static_cast<std::uint64_t>(pickle_[at_ + i]) << (8 * i);
    at_ += n;
    return value;
  }

  void need(std::uint64_t n) const {
    if (n > pickle_.size() - at_)
      fail("a truncated pickle: " + std::to_string(n) + " bytes wanted, " +
           std::to_string(pickle_.size() - at_) + " left");
  }

  Node* make(Object::Kind kind) {
    Node& node = arena_.emplace_back();
    node.kind = kind;
    return &node;
  }

  void push(Node* node) { stack_.push_back(node); }

  Node* pop() {
    if (stack_.size() <= floor()) fail("a malformed pickle: the stack is empty");
    Node* node = stack_.back();
    stack_.pop_back();
    return node;
  }

  Node* top() {
    if (stack_.size() <= floor()) fail("a malformed pickle: the stack is empty");
    return stack_.back();
  }

  // The stack below the innermost mark belongs to an outer frame.
  [[nodiscard]] std::size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }

  std::vector<Node*> pop_mark() {
    if (marks_.empty()) fail("a malformed pickle: no MARK to pop to");
    std::size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<Node*> items(stack_.begin() + static_cast<std::ptrdiff_t>(mark), stack_.end());
    stack_.resize(mark);
    return items;
  }

  Node* text(Object::Kind kind, std::uint64_t size) {
    need(size);
    Node* node = make(kind);
    node->text_offset = at_;
    node->text_size = static_cast<std::size_t>(size);
    at_ += static_cast<std::size_t>(size);
    return node;
  }

  // LONG1/LONG4: n little-endian two's complement bytes, which must fit in 64 bits.
  Node* long_integer(std::uint64_t n) {
    need(n);
    const std::byte* bytes = pickle_.data() + at_;
    at_ += static_cast<std::size_t>(n);
    std::uint64_t value = 0;
    std::size_t low = n < 8 ? static_cast<std::size_t>(n) : 8;
    for (std::size_t i = 0; i < low; ++i) value |= static_cast<std::uint64_t>(bytes[i]) << (8 * i);
    const bool negative = n > 0 && (static_cast<unsigned>(bytes[n - 1]) & 0x80U) != 0;
    if (n < 8 && negative) value |= ~std::uint64_t{0} << (8 * n);  // sign-extend
    if (n > 8) {
      // Longer encodings fit only if every extra byte is the sign of the low 64 bits.
      const auto fill = static_cast<std::byte>((value >> 63) != 0 ? 0xff : 0x00);
      for (std::size_t i = 8; i < n; ++i)
        if (bytes[i] != fill) fail("an int of " + std::to_string(n) + " bytes does not fit in 64 bits");
    }
    Node* node = make(Object::Kind::integer);
    node->integer = static_cast<std::int64_t>(value);
    return node;
  }

  Node* memo_get(std::uint64_t index) {
    auto found = memo_.find(index);
    if (found == memo_.end())
      fail("a malformed pickle: memo entry " + std::to_string(index) + " was never stored");
    return found->second;
  }

  void memo_put(std::uint64_t index) { memo_[index] = top(); }

  void append_items(Node* list, const std::vector<Node*>& items, const char* op_name) {
    if (list->kind != Object::Kind::list) fail(std::string(op_name) + " on something that is not a list");
    list->items.insert(list->items.end(), items.begin(), items.end());
  }

  void set_items(Node* dict, const std::vector<Node*>& items, const char* op_name) {
    if (dict->kind != Object::Kind::dict) fail(std::string(op_name) + " on something that is not a dict");
    if (items.size() % 2 != 0) fail(std::string(op_name) + " with an odd number of keys and values");
    dict->items.insert(dict->items.end(), items.begin(), items.end());
  }

  Node* execute() {
    for (;;) {
      opcode_at_ = at_;
      need(1);
      const auto code = static_cast<unsigned char>(pickle_[at_++]);
      switch (code) {
        case PROTO: {
          auto protocol = little(1);
          if (protocol > 5) fail("pickle protocol " + std::to_string(protocol) + " (newer than 5)");
          break;
        }
        case FRAME:
          need(little(8));  // a frame is a read-ahead hint; its opcodes follow in line
          break;
        case STOP:
          if (stack_.empty()) fail("a malformed pickle: STOP with nothing on the stack");
          return stack_.back();
        case MARK: marks_.push_back(stack_.size()); break;
        case POP:
          if (stack_.size() > floor()) {
            stack_.pop_back();
          } else {
            (void)pop_mark();  // Python's POP discards a mark when the stack is at one
          }
          break;
        case POP_MARK: (void)pop_mark(); break;
        case DUP: push(top()); break;
        case NONE: push(make(Object::Kind::none)); break;
        case NEWTRUE:
        case NEWFALSE:
          push(make(Object::Kind::boolean));
          stack_.back()->boolean = code == NEWTRUE;
          break;
        case BININT:
          push(make(Object::Kind::integer));
          stack_.back()->integer = static_cast<std::int32_t>(static_cast<std::uint32_t>(little(4)));
          break;
        case BININT1:
          push(make(Object::Kind::integer));
          stack_.back()->integer = static_cast<std::int64_t>(little(1));
          break;
        case BININT2:
          push(make(Object::Kind::integer));
          stack_.back()->integer = static_cast<std::int64_t>(little(2));
          break;
        case LONG1: push(long_integer(little(1))); break;
        case LONG4: {
          auto n = little(4);
          if (static_cast<std::int32_t>(static_cast<std::uint32_t>(n)) < 0)
            fail("LONG4 with a negative length");
          push(long_integer(n));
          break;
        }
        case BINFLOAT: {
          need(8);
          std::uint64_t bits = 0;
          for (int i = 0; i < 8; ++i) bits = (bits << 8) | static_cast<std::uint64_t>(pickle_[at_++]);
          push(make(Object::Kind::floating));
          stack_.back()->floating = std::bit_cast<double>(bits);
          break;
        }
        case SHORT_BINUNICODE: push(text(Object::Kind::string, little(1))); break;
        case BINUNICODE: push(text(Object::Kind::string, little(4))); break;
        case BINUNICODE8: push(text(Object::Kind::string, little(8))); break;
        case SHORT_BINBYTES: push(text(Object::Kind::bytes, little(1))); break;
        case BINBYTES: push(text(Object::Kind::bytes, little(4))); break;
        case BINBYTES8: push(text(Object::Kind::bytes, little(8))); break;
        case EMPTY_LIST: push(make(Object::Kind::list)); break;
        case LIST: {
          auto items = pop_mark();
          push(make(Object::Kind::list));
          stack_.back()->items = std::move(items);
          break;
        }
        case APPEND: {
          Node* item = pop();
          append_items(top(), {item}, "APPEND");
          break;
        }
        case APPENDS: {
          auto items = pop_mark();
          append_items(top(), items, "APPENDS");
          break;
        }
        case EMPTY_TUPLE: push(make(Object::Kind::tuple)); break;
        case TUPLE: {
          auto items = pop_mark();
          push(make(Object::Kind::tuple));
          stack_.back()->items = std::move(items);
          break;
        }
        case TUPLE1:
        case TUPLE2:
        case TUPLE3: {
          std::size_t count = code - TUPLE1 + 1;
          if (stack_.size() < floor() + count) fail("a malformed pickle: TUPLE1/2/3 with too few items");
          Node* tuple = make(Object::Kind::tuple);
          tuple->items.assign(stack_.end() - static_cast<std::ptrdiff_t>(count), stack_.end());
          stack_.resize(stack_.size() - count);
          push(tuple);
          break;
        }
        case EMPTY_DICT: push(make(Object::Kind::dict)); break;
        case DICT: {
          auto items = pop_mark();
          Node* dict = make(Object::Kind::dict);
          set_items(dict, items, "DICT");
          push(dict);
          break;
        }
        case SETITEM: {
          Node* value = pop();
          Node* key = pop();
          set_items(top(), {key, value}, "SETITEM");
          break;
        }
        case SETITEMS: {
          auto items = pop_mark();
          set_items(top(), items, "SETITEMS");
          break;
        }
        case MEMOIZE: memo_put(memo_.size()); break;
        case BINPUT: memo_put(little(1)); break;
        case LONG_BINPUT: memo_put(little(4)); break;
        case BINGET: push(memo_get(little(1))); break;
        case LONG_BINGET: push(memo_get(little(4))); break;
        default: {
          char hex[8];
          std::snprintf(hex, sizeof(hex), "0x%02x", code);
          if (const char* reason = refused_reason(code))
            fail(std::string("refused opcode ") + reason + " [" + hex +
                 "]: mp's unpickler never runs code and reads only None, bool, int, float, str, bytes, list, "
                 "tuple and dict");
          fail(std::string("unknown opcode ") + hex);
        }
      }
    }
  }

  void spend(std::size_t cost) {
    if (cost > budget_)
      throw CodecError("py::unpickle: shared references in a " + std::to_string(pickle_.size()) +
                       "-byte pickle expand beyond " +
                       std::to_string(16 * pickle_.size() + (std::size_t{1} << 20)) +
                       " units of nodes and bytes: refused");
    budget_ -= cost;
  }

  Object build(Node* node, int depth) {
    if (depth > max_depth)
      throw CodecError("py::unpickle: the value is nested deeper than " + std::to_string(max_depth) +
                       " levels");
    spend(1 + node->text_size);
    switch (node->kind) {
      case Object::Kind::none: return Object();
      case Object::Kind::boolean: return Object(node->boolean);
      case Object::Kind::integer: return Object(node->integer);
      case Object::Kind::floating: return Object(node->floating);
      case Object::Kind::string:
        return Object(
            std::string(reinterpret_cast<const char*>(pickle_.data()) + node->text_offset, node->text_size));
      case Object::Kind::bytes: return Object(Bytes(pickle_.subspan(node->text_offset, node->text_size)));
      default: break;
    }
    if (node->in_progress)
      throw CodecError(std::string("py::unpickle: a recursive structure (a ") +
                       (node->kind == Object::Kind::list   ? "list"
                        : node->kind == Object::Kind::dict ? "dict"
                                                           : "tuple") +
                       " that contains itself) has no value form: refused");
    node->in_progress = true;
    Object result;
    if (node->kind == Object::Kind::dict) {
      std::vector<Dict::Item> items;
      items.reserve(node->items.size() / 2);
      for (std::size_t i = 0; i + 1 < node->items.size(); i += 2) {
        Object key = build(node->items[i], depth + 1);
        items.emplace_back(std::move(key), build(node->items[i + 1], depth + 1));
      }
      try {
        result = Object(Dict::from_items(std::move(items)));
      } catch (const ValueError& error) {
        throw CodecError(std::string("py::unpickle: a dict key: ") + error.what());
      }
    } else {
      std::vector<Object> items;
      items.reserve(node->items.size());
      for (Node* item : node->items) items.push_back(build(item, depth + 1));
      if (node->kind == Object::Kind::list) {
        result = Object(List(std::make_move_iterator(items.begin()), std::make_move_iterator(items.end())));
      } else {
        result = Object(Tuple(std::make_move_iterator(items.begin()), std::make_move_iterator(items.end())));
      }
    }
    node->in_progress = false;
    return result;
  }

  std::span<const std::byte> pickle_;
  std::size_t at_ = 0;
  std::size_t opcode_at_ = 0;
  std::deque<Node> arena_;
  std::vector<Node*> stack_;
  std::vector<std::size_t> marks_;
  std::unordered_map<std::uint64_t, Node*> memo_;
  std::size_t budget_ = 0;
};

}  // namespace

Object unpickle(std::span<const std::byte> pickle) { return Machine(pickle).run(); }

}  // namespace mp::py
