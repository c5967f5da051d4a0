// Handles passed to children that are not forks (issue 11): the travel hook
// of a Connection's transport (ConnectionCore::travel, rebuilt here in one
// process, so the protocol is visible without a child).
#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <span>
#include <string>
#include <vector>

#include "mp/connection.hpp"
#include "mp/detail/connection_core.hpp"
#include "mp/errors.hpp"
#include "mp/pipe.hpp"

namespace {

// rebuild_here(end): what a child does with a travelled end, in this process:
// the fds it would receive (dups), the metadata and the factory.
template <class T>
mp::Connection<T> rebuild_here(const mp::Connection<T>& end) {
  mp::detail::ConnectionTravel travel;
  EXPECT_TRUE(mp::detail::ConnectionAccess::core(end)->travel(travel));
  EXPECT_NE(travel.rebuild, nullptr);
  std::vector<mp::detail::UniqueFd> received;
  for (int fd : travel.fds) received.emplace_back(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
  auto core = travel.rebuild(std::span<mp::detail::UniqueFd>(received), travel.metadata);
  return mp::detail::ConnectionAccess::wrap<mp::Connection<T>>(std::move(core));
}

TEST(ConnectionTravel, DuplexEndRebuiltFromItsFdAndMetadataTalksBothWays) {
  auto [a, b] = mp::Pipe<std::string>();
  mp::Connection<std::string> b2 = rebuild_here(b);
  a.send("to the rebuilt end");
  EXPECT_EQ(b2.recv(), "to the rebuilt end");
  b2.send("back");
  EXPECT_EQ(a.recv(), "back");
}

TEST(ConnectionTravel, OneWayEndsKeepTheirDirection) {
  auto [reader, writer] = mp::Pipe<int>(false);
  mp::Connection<int> reader2 = rebuild_here(reader);
  mp::Connection<int> writer2 = rebuild_here(writer);
  EXPECT_FALSE(reader2.writable());
  EXPECT_FALSE(writer2.readable());
  writer2.send(7);
  EXPECT_EQ(reader2.recv(), 7);
  EXPECT_THROW(reader2.send(1), mp::ValueError);
}

TEST(ConnectionTravel, RebuildRefusesMetadataItDoesNotKnow) {
  auto [a, b] = mp::Pipe<int>();
  mp::detail::ConnectionTravel travel;
  ASSERT_TRUE(mp::detail::ConnectionAccess::core(a)->travel(travel));
  std::vector<mp::detail::UniqueFd> received;
  received.emplace_back(::fcntl(travel.fds[0], F_DUPFD_CLOEXEC, 0));
  std::vector<std::byte> short_metadata(3);
  EXPECT_THROW((void)travel.rebuild(std::span<mp::detail::UniqueFd>(received), short_metadata),
               mp::CodecError);
}

TEST(ConnectionTravel, ClosedEndRaisesValueError) {
  auto [a, b] = mp::Pipe<int>();
  a.close();
  mp::detail::ConnectionTravel travel;
  EXPECT_THROW((void)mp::detail::ConnectionAccess::core(a)->travel(travel), mp::ValueError);
}

}  // namespace
