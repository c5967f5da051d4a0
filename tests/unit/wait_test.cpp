// mp::wait(fds[, timeout]): which fds it reports, in which order, its
// timeouts, and its errors; with pipes and with Process sentinels.
#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <vector>

#include "mp/detail/fd.hpp"
#include "mp/errors.hpp"
#include "mp/process.hpp"
#include "mp/wait.hpp"

namespace {

using namespace std::chrono_literals;
using mp::detail::UniqueFd;

struct TestPipe {
  UniqueFd read_end;
  UniqueFd write_end;
};

TestPipe make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) std::abort();
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

void put_byte(int fd) {
  char c = 'x';
  if (::write(fd, &c, 1) != 1) std::abort();
}

TEST(Wait, NothingReadyTimesOutEmpty) {
  TestPipe a = make_pipe();
  EXPECT_TRUE(mp::wait({a.read_end.get()}, 0ms).empty());
  EXPECT_TRUE(mp::wait({a.read_end.get()}, 5ms).empty());
}

TEST(Wait, NegativeTimeoutOnlyLooks) {
  TestPipe a = make_pipe();
  EXPECT_TRUE(mp::wait({a.read_end.get()}, -1s).empty());
  put_byte(a.write_end.get());
  EXPECT_EQ(mp::wait({a.read_end.get()}, -1s), std::vector<int>{a.read_end.get()});
}

TEST(Wait, ReturnsOnlyTheReadyFdsInTheOrderGiven) {
  TestPipe a = make_pipe();
  TestPipe b = make_pipe();
  TestPipe c = make_pipe();
  std::vector<int> fds{c.read_end.get(), a.read_end.get(), b.read_end.get()};
  put_byte(a.write_end.get());
  put_byte(c.write_end.get());
  EXPECT_EQ(mp::wait(fds), (std::vector<int>{c.read_end.get(), a.read_end.get()}));
  EXPECT_EQ(mp::wait(fds, 1h), (std::vector<int>{c.read_end.get(), a.read_end.get()}));
}

TEST(Wait, ReadinessIsNotConsumed) {
  TestPipe a = make_pipe();
  put_byte(a.write_end.get());
  EXPECT_EQ(mp::wait({a.read_end.get()}).size(), 1u);
  EXPECT_EQ(mp::wait({a.read_end.get()}).size(), 1u);  // still there: wait() reads nothing
}

TEST(Wait, HangUpCountsAsReady) {
  TestPipe a = make_pipe();
  a.write_end.reset();  // read() would return 0 (EOF) at once
  EXPECT_EQ(mp::wait({a.read_end.get()}), std::vector<int>{a.read_end.get()});
}

TEST(Wait, ClosedFdIsAValueError) {
  TestPipe a = make_pipe();
  int closed = a.read_end.get();
  a.read_end.reset();
  EXPECT_THROW((void)mp::wait({closed}, 0ms), mp::ValueError);
  EXPECT_THROW((void)mp::wait({-1}, 0ms), mp::ValueError);
}

TEST(Wait, EmptyListWithoutTimeoutIsAValueError) {
  std::vector<int> none;
  EXPECT_THROW((void)mp::wait(none), mp::ValueError);
  EXPECT_TRUE(mp::wait(none, 1ms).empty());
}

TEST(Wait, BlocksUntilAChildWrites) {
  TestPipe a = make_pipe();
  TestPipe b = make_pipe();
  int b_write = b.write_end.get();
  mp::Process writer([b_write] { put_byte(b_write); });
  writer.start();
  std::vector<int> fds{a.read_end.get(), b.read_end.get()};
  EXPECT_EQ(mp::wait(fds), std::vector<int>{b.read_end.get()});
  writer.join();
}

TEST(Wait, MixesSentinelsAndPipes) {
  TestPipe a = make_pipe();
  mp::Process quick([] {});
  quick.start();
  std::vector<int> fds{a.read_end.get(), quick.sentinel()};
  EXPECT_EQ(mp::wait(fds), std::vector<int>{quick.sentinel()});
  quick.join();
  put_byte(a.write_end.get());
  EXPECT_EQ(mp::wait(fds), fds);  // both ready now; the sentinel stays readable after join
}

}  // namespace
