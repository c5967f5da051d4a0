// libFuzzer target for mp::py::unpickle (mp/py.hpp), which reads pickles
// from peers that may be hostile. Any input must either decode or throw
// mp::CodecError: a crash, a sanitizer report, a hang or a huge allocation is
// a bug. What decodes must survive pickle() -> unpickle() with the same
// repr() (repr, not ==, so a NaN compares equal to itself), unless it holds a
// str that is not UTF-8, which pickle() refuses with CodecError.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "mp/errors.hpp"
#include "mp/py.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::span<const std::byte> input(reinterpret_cast<const std::byte*>(data), size);
  mp::py::Object first;
  try {
    first = mp::py::unpickle(input);
  } catch (const mp::CodecError&) {
    return 0;
  }
  std::vector<std::byte> again;
  try {
    again = mp::py::pickle(first);
  } catch (const mp::CodecError&) {
    return 0;  // a str that is not UTF-8
  }
  mp::py::Object second = mp::py::unpickle(again);  // must not throw: mp wrote it
  if (second.repr() != first.repr()) std::abort();
  return 0;
}
