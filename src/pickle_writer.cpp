// src/pickle_writer.cpp — py::pickle(): an Object as a protocol-4 pickle.
//
// Only data opcodes are written (no memo, no frames: both are optional in
// protocol 4), so the output is a plain tree: PROTO 4, the value, STOP.
// Integers use the shortest of BININT1/BININT2/BININT/LONG1, floats BINFLOAT
// (big-endian IEEE 754), str the SHORT_/BINUNICODE/BINUNICODE8 forms, bytes
// SHORT_/BINBYTES/BINBYTES8; lists and dicts are filled with one
// MARK...APPENDS / MARK...SETITEMS, tuples use TUPLE1..3 or MARK...TUPLE.
#include <bit>
#include <cstdint>
#include <cstring>
#include <string>

#include "mp/py.hpp"
#include "pickle_opcodes.hpp"

namespace mp::py {
namespace {

using namespace mp::detail::pickle_opcode;

constexpr int max_depth = 1000;

class Writer {
 public:
  explicit Writer(std::vector<std::byte>& out) : out_(out) {}

  void write(const Object& object, int depth) {
    if (depth > max_depth)
      throw CodecError("py::pickle: the value is nested deeper than " + std::to_string(max_depth) +
                       " levels");
    switch (object.kind()) {
      case Object::Kind::none: op(NONE); return;
      case Object::Kind::boolean: op(object.as_bool() ? NEWTRUE : NEWFALSE); return;
      case Object::Kind::integer: integer(object.as_int()); return;
      case Object::Kind::floating:
        op(BINFLOAT);
        big_endian(std::bit_cast<std::uint64_t>(object.as_float()), 8);
        return;
      case Object::Kind::string: string(object.as_str()); return;
      case Object::Kind::bytes: bytes(object.as_bytes().str()); return;
      case Object::Kind::list:
        op(EMPTY_LIST);
        if (!object.as_list().empty()) {
          op(MARK);
          for (const Object& item : object.as_list()) write(item, depth + 1);
          op(APPENDS);
        }
        return;
      case Object::Kind::tuple: {
        const Tuple& items = object.as_tuple();
        if (items.empty()) {
          op(EMPTY_TUPLE);
          return;
        }
        if (items.size() > 3) op(MARK);
        for (const Object& item : items) write(item, depth + 1);
        static constexpr unsigned char small[] = {0, TUPLE1, TUPLE2, TUPLE3};
        op(items.size() > 3 ? TUPLE : small[items.size()]);
        return;
      }
      case Object::Kind::dict:
        op(EMPTY_DICT);
        if (!object.as_dict().empty()) {
          op(MARK);
          for (const auto& [key, value] : object.as_dict()) {
            write(key, depth + 1);
            write(value, depth + 1);
          }
          op(SETITEMS);
        }
        return;
    }
  }

  void op(unsigned char code) { out_.push_back(static_cast<std::byte>(code)); }

 private:
  void little_endian(std::uint64_t value, int size) {
    for (int i = 0; i < size; ++i) out_.push_back(static_cast<std::byte>((value >> (8 * i)) & 0xffU));
  }
  void big_endian(std::uint64_t value, int size) {
    for (int i = size - 1; i >= 0; --i) out_.push_back(static_cast<std::byte>((value >> (8 * i)) & 0xffU));
  }
  void raw(std::string_view text) {
    const auto* data = reinterpret_cast<const std::byte*>(text.data());
    out_.insert(out_.end(), data, data + text.size());
  }

  void integer(std::int64_t value) {
    if (value >= 0 && value <= 0xff) {
      op(BININT1);
      little_endian(static_cast<std::uint64_t>(value), 1);
    } else if (value >= 0 && value <= 0xffff) {
      op(BININT2);
      little_endian(static_cast<std::uint64_t>(value), 2);
    } else if (value >= INT32_MIN && value <= INT32_MAX) {
      op(BININT);
      little_endian(static_cast<std::uint64_t>(value), 4);
    } else {
      // LONG1: the shortest little-endian two's complement that keeps the sign.
      auto bits = static_cast<std::uint64_t>(value);
      int size = 8;
      while (size > 1) {
        auto top = static_cast<std::uint8_t>(bits >> (8 * (size - 1)));
        auto next_sign = (bits >> (8 * (size - 1) - 1)) & 1U;
        if ((top == 0x00 && next_sign == 0) || (top == 0xff && next_sign == 1)) {
          --size;
        } else {
          break;
        }
      }
      op(LONG1);
      little_endian(static_cast<std::uint64_t>(size), 1);
      little_endian(bits, size);
    }
  }

  void string(const std::string& text) {
    if (!valid_utf8(text))
      throw CodecError(
          "py::pickle: a str is not valid UTF-8, so Python could not load it (send binary data as "
          "py::Bytes): " +
          Object(Bytes(text.substr(0, 60))).repr());
    sized(text, SHORT_BINUNICODE, BINUNICODE, BINUNICODE8);
  }

  void bytes(const std::string& octets) { sized(octets, SHORT_BINBYTES, BINBYTES, BINBYTES8); }

  void sized(const std::string& data, unsigned char short_op, unsigned char op4, unsigned char op8) {
    if (data.size() < 256) {
      op(short_op);
      little_endian(data.size(), 1);
    } else if (data.size() <= 0xffffffffU) {
      op(op4);
      little_endian(data.size(), 4);
    } else {
      op(op8);
      little_endian(data.size(), 8);
    }
    raw(data);
  }

  // UTF-8 as Python's decoder accepts it with 'surrogatepass' (what pickle uses).
  static bool valid_utf8(std::string_view text) {
    std::size_t i = 0;
    while (i < text.size()) {
      auto c = static_cast<unsigned char>(text[i]);
      if (c < 0x80) {
        ++i;
        continue;
      }
      int extra = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : -1;
      if (extra < 0 || c > 0xf4 || c == 0xc0 || c == 0xc1) return false;
      if (i + static_cast<std::size_t>(extra) >= text.size()) return false;  // cut short
      std::uint32_t code = c & (0x3fU >> extra);
      for (int k = 1; k <= extra; ++k) {
        auto next = static_cast<unsigned char>(text[i + static_cast<std::size_t>(k)]);
        if ((next & 0xc0) != 0x80) return false;
        code = (code << 6) | (next & 0x3fU);
      }
      static constexpr std::uint32_t smallest[] = {0, 0x80, 0x800, 0x10000};
      if (code < smallest[extra] || code > 0x10ffff) return false;
      i += static_cast<std::size_t>(extra) + 1;
    }
    return true;
  }

  std::vector<std::byte>& out_;
};

}  // namespace

void pickle_into(std::vector<std::byte>& out, const Object& object) {
  Writer writer(out);
  writer.op(PROTO);
  writer.op(4);
  writer.write(object, 0);
  writer.op(STOP);
}

std::vector<std::byte> pickle(const Object& object) {
  std::vector<std::byte> out;
  pickle_into(out, object);
  return out;
}

}  // namespace mp::py
