// The test's own redis-server (redis/redis_server.hpp) must not outlive the
// test process that started it, even when that process is SIGKILLed (ctest's
// timeout does exactly that): a leaked server keeps its port, its memory and
// its /tmp directory until the machine reboots.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <string>

#include "mp/detail/fd.hpp"
#include "redis/redis_server.hpp"
#include "support/child.hpp"

namespace {

using mp::detail::UniqueFd;

TEST(RedisTestServer, DiesWithATestProcessKilledBySigkill) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  UniqueFd read_end(fds[0]);
  UniqueFd write_end(fds[1]);
  // The "test process": starts a server, reports its pid and directory, waits to be killed.
  pid_t test_process = mp::test::fork_child([&] {
    read_end.reset();
    mp::test::RedisServer server;
    const std::string report = std::to_string(server.pid()) + " " + server.dir() + "\n";
    if (::write(write_end.get(), report.data(), report.size()) != static_cast<ssize_t>(report.size()))
      return 1;
    for (;;) ::pause();
  });
  write_end.reset();
  std::string report;
  char c = 0;
  while (::read(read_end.get(), &c, 1) == 1 && c != '\n') report.push_back(c);
  const std::size_t space = report.find(' ');
  ASSERT_NE(space, std::string::npos) << "the test process did not start its server: '" << report << "'";
  const pid_t server = std::stoi(report.substr(0, space));
  const std::string dir = report.substr(space + 1);
  UniqueFd server_fd(static_cast<int>(::syscall(SYS_pidfd_open, server, 0)));
  ASSERT_TRUE(server_fd.valid()) << "pidfd_open " << server << ": errno " << errno;

  ASSERT_EQ(::kill(test_process, SIGKILL), 0);
  EXPECT_EQ(mp::test::wait_child(test_process), -SIGKILL);
  // The server is init's child now, not ours: watch it through its pidfd.
  pollfd entry{server_fd.get(), POLLIN, 0};
  const int ended = ::poll(&entry, 1, 10000);
  EXPECT_EQ(ended, 1) << "redis-server " << server << " outlived the test process that started it";
  if (ended != 1) ::kill(server, SIGKILL);  // leave nothing behind
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
}

}  // namespace
