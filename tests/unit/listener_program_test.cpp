// mp::Listener / mp::Client between two mp programs: the test and a separately
// executed helper (tests/helpers/listener_peer.cpp), typed values one way and
// back, then 1 MiB and 64 MiB raw messages echoed whole.
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "mp/listener.hpp"
#include "support/values.hpp"
#include "unit/python_peer.hpp"

namespace {

using Message = std::tuple<std::string, std::vector<double>, std::map<std::string, int>>;

using mp::test::pattern;

TEST(ListenerProgram, TypedValuesAndLargeMessagesWithASeparateProgram) {
  mp::Listener listener("@mp-listener-program-" + std::to_string(::getpid()), 1, std::string("program key"));
  mp::test::SpawnedProgram peer({MP_HELPERS_DIR "/listener_peer", listener.address(), "program key"});
  auto conn = listener.accept<Message>();
  conn.send({"job", {1.5, 2.5, 3.0}, {{"a", 1}}});
  auto [label, numbers, counts] = conn.recv();
  EXPECT_EQ(label, "job seen");
  EXPECT_EQ(numbers, (std::vector<double>{1.5, 2.5, 3.0}));
  EXPECT_EQ(counts, (std::map<std::string, int>{{"a", 1}, {"total", 7}}));

  for (std::size_t size : {std::size_t{1} << 20, std::size_t{64} << 20}) {
    auto sent = pattern(size, static_cast<unsigned>(size));
    conn.send_bytes(sent);
    EXPECT_TRUE(conn.recv_bytes() == sent) << size << "-byte message changed on the way";
  }
  conn.close();
  EXPECT_EQ(peer.wait(), 0);
}

}  // namespace
