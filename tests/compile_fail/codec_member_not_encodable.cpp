// A serialize() member that passes a member which cannot travel (here a
// std::unique_ptr) must stop at a static_assert naming the problem.
// expect-error: mp::codec: a member passed to ar\(\.\.\.\) in serialize\(\) is not encodable
#include <memory>

#include "mp/codec.hpp"

struct Holder {
  std::unique_ptr<int> owned;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(owned);
  }
};

int main() {
  auto bytes = mp::encode(Holder{});
  return static_cast<int>(bytes.size());
}
