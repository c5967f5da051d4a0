// A struct holding a std::string, with no serialize() member, is neither
// trivially copyable nor opted in: encoding it must stop at a static_assert
// that says what to do.
// expect-error: mp::codec: T is not encodable: make it trivially copyable, give it a member `template
#include <string>

#include "mp/codec.hpp"

struct Customer {
  std::string name;
  int age = 0;
};

int main() {
  auto bytes = mp::encode(Customer{"Ada", 36});
  return static_cast<int>(bytes.size());
}
