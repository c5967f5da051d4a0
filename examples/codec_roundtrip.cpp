// The examples of mp/codec.hpp's header comment, compiled: a user type with a
// serialize() member, a hand-written codec for a type that cannot change, the
// wire format's signature, and the error a corrupt buffer gives.
#include <cstdio>
#include <string>
#include <vector>

#include "mp/codec.hpp"

struct Job {
  std::string name;
  std::vector<double> weights;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(name, weights);
  }
};

struct Point {  // imagine it comes from a library you cannot edit
  int x = 0;
  int y = 0;
};

template <>
struct mp::codec<Point> {
  static void encode(Writer& w, const Point& p) {
    w.value(p.x);
    w.value(p.y);
  }
  static void decode(Reader& r, Point& p) {
    r.value(p.x);
    r.value(p.y);
  }
};

int main() {
  std::vector<std::byte> bytes = mp::encode(Job{"x", {1.5}});
  Job back = mp::decode<Job>(bytes);
  std::printf("job %s with %zu weight(s) in %zu bytes, signature %s\n", back.name.c_str(),
              back.weights.size(), bytes.size(), mp::codec_signature<Job>().c_str());

  const Point point = mp::decode<Point>(mp::encode(Point{3, 4}));
  std::printf("point %d,%d\n", point.x, point.y);

  bytes[0] = std::byte{0xff};  // corrupt the length of Job::name
  try {
    (void)mp::decode<Job>(bytes);
  } catch (const mp::CodecError& error) {
    std::printf("CodecError: %s\n", error.what());
  }
  return 0;
}
