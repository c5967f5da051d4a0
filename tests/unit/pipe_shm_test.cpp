// mp::Pipe over shared memory (src/shm_connection*.cpp): what the rings and
// the doorbells must get right beyond pipe_test.cpp's behaviour — messages
// larger than a ring, a peer SIGKILLed mid-message or mid-wait, mp::wait on
// fileno() without a lost wake-up (threads, for TSan, and processes), no fd
// left behind. No timing: every wait below has a 60 s safety deadline that a
// correct implementation never reaches.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "mp/detail/connection_core.hpp"
#include "mp/errors.hpp"
#include "mp/pipe.hpp"
#include "support/child.hpp"
#include "support/values.hpp"

namespace {

using namespace std::chrono_literals;
using mp::test::fork_child;
using mp::test::message_of;
using mp::test::pattern;
using mp::test::wait_child;

TEST(PipeShmThreads, LargeMessagesStreamBothWaysAtOnce) {
  // Each direction carries messages many times its ring, while the other
  // direction does the same: neither side may wait for the other's reader.
  constexpr std::size_t size = std::size_t{8} << 20;
  auto [a, b] = mp::Pipe<int>();
  std::thread b_sends([&, &b = b] {
    for (unsigned i = 0; i < 3; ++i) b.send_bytes(pattern(size + i, 10 + i));
  });
  std::thread a_sends([&, &a = a] {
    for (unsigned i = 0; i < 3; ++i) a.send_bytes(pattern(size - i, 20 + i));
  });
  for (unsigned i = 0; i < 3; ++i) {
    EXPECT_TRUE(a.recv_bytes() == pattern(size + i, 10 + i)) << i;
    EXPECT_TRUE(b.recv_bytes() == pattern(size - i, 20 + i)) << i;
  }
  a_sends.join();
  b_sends.join();
  EXPECT_FALSE(a.poll());
  EXPECT_FALSE(b.poll());
}

TEST(PipeShmThreads, WaitOnFilenoMissesNoMessage) {
  // The receiver only ever blocks in mp::wait on fileno(), never in recv, so
  // every message must ring the doorbell (INV4) — including those sent while
  // the receiver was between wait() and recv().
  constexpr int count = 3000;
  auto [receiver, sender] = mp::Pipe<int>(false);
  const int fd = receiver.fileno();
  std::thread producer([&, &sender = sender] {
    for (int i = 0; i < count; ++i) sender.send(i);
  });
  for (int i = 0; i < count; ++i) {
    if (!receiver.poll()) {
      ASSERT_EQ(mp::wait(std::vector<int>{fd}, 60s), std::vector<int>{fd})
          << "lost wake-up before message " << i;
    }
    ASSERT_EQ(receiver.recv(), i);
  }
  producer.join();
  EXPECT_TRUE(mp::wait(std::vector<int>{fd}, 0s).empty()) << "no readiness without a message";
}

TEST(PipeShmThreads, PingPongThroughWaitAndRecv) {
  // Both sides alternate between sleeping in recv (the flag protocol) and in
  // mp::wait (the armed protocol), on the same ends.
  constexpr std::int64_t rounds = 2000;
  auto [left, right] = mp::Pipe<std::int64_t>();
  std::thread echo([&, &right = right] {
    const int fd = right.fileno();
    try {
      for (std::int64_t i = 0;; ++i) {
        if (i % 2 == 0) (void)mp::wait(std::vector<int>{fd}, 60s);
        right.send(right.recv() + 1);
      }
    } catch (const mp::EOFError&) {
    }
  });
  std::int64_t n = 0;
  for (std::int64_t i = 0; i < rounds; ++i) {
    left.send(n);
    n = left.recv();
  }
  left.close();
  echo.join();
  EXPECT_EQ(n, rounds);
}

TEST(PipeShm, FilenoIsReadyWhenDataCameBeforeItWasAskedFor) {
  auto [a, b] = mp::Pipe<int>();
  a.send(1);
  const int fd = b.fileno();  // armed after the message was published
  EXPECT_EQ(mp::wait(std::vector<int>{fd}, 60s), std::vector<int>{fd});
  EXPECT_EQ(b.recv(), 1);
  EXPECT_TRUE(mp::wait(std::vector<int>{fd}, 0s).empty());
  a.send(2);
  a.send(3);
  EXPECT_EQ(b.recv(), 2);
  EXPECT_EQ(mp::wait(std::vector<int>{fd}, 60s), std::vector<int>{fd}) << "a message is still unread";
  EXPECT_EQ(b.recv(), 3);
  EXPECT_TRUE(mp::wait(std::vector<int>{fd}, 0s).empty());
}

TEST(PipeShm, WaitOnFilenoAcrossProcessesMissesNoMessage) {
  constexpr int count = 2000;
  auto [receiver, sender] = mp::Pipe<int>(false);
  const int fd = receiver.fileno();
  pid_t child = fork_child([&, &receiver = receiver, &sender = sender] {
    receiver.close();
    for (int i = 0; i < count; ++i) {
      sender.send(i);
      if (i % 7 == 0) ::usleep(50);  // let the parent fall asleep sometimes
    }
    return 0;
  });
  sender.close();
  for (int i = 0; i < count; ++i) {
    ASSERT_EQ(mp::wait(std::vector<int>{fd}, 60s), std::vector<int>{fd})
        << "lost wake-up before message " << i;
    ASSERT_EQ(receiver.recv(), i);
  }
  EXPECT_EQ(mp::wait(std::vector<int>{fd}, 60s), std::vector<int>{fd}) << "EOF is ready";
  EXPECT_THROW((void)receiver.recv(), mp::EOFError);
  EXPECT_EQ(wait_child(child), 0);
}

TEST(PipeShm, ASenderKilledMidMessageIsATruncatedEOFError) {
  // 64 MiB cannot fit the ring: the child is still streaming when killed.
  constexpr std::size_t size = std::size_t{64} << 20;
  auto [reader, writer] = mp::Pipe<std::string>(false);
  pid_t child = fork_child([&, &reader = reader, &writer = writer] {
    reader.close();
    writer.send_bytes(pattern(size, 3));
    return 0;
  });
  writer.close();
  ASSERT_TRUE(reader.poll(60s)) << "the child started sending";
  ::kill(child, SIGKILL);
  EXPECT_EQ(wait_child(child), -SIGKILL);
  std::string what = message_of<mp::EOFError>([&, &reader = reader] { (void)reader.recv_bytes(); });
  EXPECT_NE(what.find("-byte message"), std::string::npos) << what;
  EXPECT_NE(what.find("truncated"), std::string::npos) << what;
  EXPECT_THROW((void)reader.recv_bytes(), mp::EOFError) << "EOF stays EOF";
}

TEST(PipeShm, AReceiverKilledWhileTheSenderWaitsForSpaceIsAConnectionError) {
  auto [reader, writer] = mp::Pipe<std::string>(false);
  pid_t receiver = fork_child([&, &writer = writer] {
    writer.close();
    ::pause();  // never reads; killed below
    return 0;
  });
  reader.close();
  pid_t killer = fork_child([&] {
    ::usleep(100'000);  // usually lets the parent block first; either order must give the same error
    ::kill(receiver, SIGKILL);
    return 0;
  });
  std::string what = message_of<mp::ConnectionError>([&, &writer = writer] {
    for (int i = 0; i < 1000; ++i)
      writer.send_bytes(pattern(std::size_t{1} << 20, 4));  // far more than a ring
  });
  EXPECT_NE(what.find("other end of the connection was closed"), std::string::npos) << what;
  EXPECT_EQ(wait_child(killer), 0);
  EXPECT_EQ(wait_child(receiver), -SIGKILL);
}

TEST(PipeShm, AReceiverSleepingInPollSeesItsSenderKilled) {
  auto [reader, writer] = mp::Pipe<int>(false);
  pid_t child = fork_child([&, &reader = reader] {
    reader.close();
    ::pause();
    return 0;
  });
  writer.close();
  pid_t killer = fork_child([&] {
    ::usleep(50'000);
    ::kill(child, SIGKILL);
    return 0;
  });
  EXPECT_TRUE(reader.poll(60s)) << "EOF is ready";
  EXPECT_THROW((void)reader.recv(), mp::EOFError);
  EXPECT_EQ(wait_child(killer), 0);
  EXPECT_EQ(wait_child(child), -SIGKILL);
}

TEST(PipeShm, SendingToAReceiverThatExitedWithoutCloseFailsByTheSecondSend) {
  // The child reads one message and leaves by _exit: no close() runs, only
  // the kernel closes its socket.
  auto [a, b] = mp::Pipe<int>();
  pid_t child = fork_child([&, &a = a, &b = b] {
    a.close();
    return b.recv() == 1 ? 0 : 1;
  });
  b.close();
  a.send(1);
  EXPECT_EQ(wait_child(child), 0);
  EXPECT_THROW(
      {
        a.send(2);  // may still be accepted: the receiver was seen reading since the last send
        a.send(3);
      },
      mp::ConnectionError);
}

TEST(PipeShm, ManyPipesWithFilenoLeaveNoFdBehind) {
  // fileno() makes an epoll fd; close() and the last handle must free it too.
  // (The test main fails the test if any fd or /dev/shm entry is left.)
  for (int i = 0; i < 100; ++i) {
    auto [a, b] = mp::Pipe<int>(i % 2 == 0);
    (void)a.fileno();
    (void)b.fileno();
    if (i % 3 == 0) a.close();
  }
}

TEST(PipeShm, SendsAndReceivesAfterForkFromBothProcessesInTurn) {
  // The same end used by the parent, then the child, then the parent again
  // (never at once): positions live in shared memory, not in the handle.
  auto [a, b] = mp::Pipe<int>();
  a.send(1);
  EXPECT_EQ(b.recv(), 1);
  pid_t child = fork_child([&, &a = a, &b = b] {
    a.send(2);
    return b.recv() == 2 ? 0 : 1;
  });
  EXPECT_EQ(wait_child(child), 0);
  a.send(3);
  EXPECT_EQ(b.recv(), 3);
  EXPECT_FALSE(b.poll());
}

std::size_t open_fds() {
  return static_cast<std::size_t>(std::distance(std::filesystem::directory_iterator("/proc/self/fd"),
                                                std::filesystem::directory_iterator()));
}

TEST(PipeShm, ARecvThatCannotDecodeNamesTheEndWithoutArmingIt) {
  // The error message names the end; it must not do so through fileno(),
  // which on a receiving end makes an epoll fd and arms the doorbell.
  auto [a, b] = mp::Pipe<std::int64_t>();
  const std::size_t before = open_fds();
  a.send_bytes(std::vector<std::byte>(3));
  std::string what = message_of<mp::CodecError>([&, &b = b] { (void)b.recv(); });
  EXPECT_NE(what.find("recv(connection fd "), std::string::npos) << what;
  EXPECT_EQ(open_fds(), before) << "no epoll fd was made";
}

// travelled(end, fds): what a child that is not a fork rebuilds from the
// end's travel hook, given `fds` (dups of what travel() listed, or others).
template <class T>
mp::Connection<T> travelled(const mp::Connection<T>& end, std::vector<int> fds = {}) {
  mp::detail::ConnectionTravel travel;
  EXPECT_TRUE(mp::detail::ConnectionAccess::core(end)->travel(travel));
  if (fds.empty()) fds = travel.fds;
  std::vector<mp::detail::UniqueFd> received;
  for (int fd : fds) received.emplace_back(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
  return mp::detail::ConnectionAccess::wrap<mp::Connection<T>>(
      travel.rebuild(std::span<mp::detail::UniqueFd>(received), travel.metadata));
}

TEST(PipeShm, ATravelledEndSharesTheRingsAndThePeerSeesEOFOnlyWhenEveryCopyClosed) {
  auto [a, b] = mp::Pipe<std::string>();
  a.send("before");
  mp::Connection<std::string> b2 = travelled(b);
  EXPECT_EQ(b2.recv(), "before");
  b2.send(std::string(100000, 'x'));  // through the ring the original end writes too (one thread: fits)
  EXPECT_EQ(a.recv().size(), std::size_t{100000});
  b.close();  // the travelled copy still holds the end (its own socket fd)
  EXPECT_FALSE(a.poll());
  a.send("still there");
  EXPECT_EQ(b2.recv(), "still there");
  b2.close();
  EXPECT_TRUE(a.poll(60s));
  EXPECT_THROW((void)a.recv(), mp::EOFError);
}

TEST(PipeShm, RebuildRefusesFdsThatAreNotAPipeRegion) {
  auto [a, b] = mp::Pipe<int>();
  mp::detail::ConnectionTravel travel;
  ASSERT_TRUE(mp::detail::ConnectionAccess::core(a)->travel(travel));
  ASSERT_EQ(travel.fds.size(), 4U) << "socket, memfd, two eventfds";
  // The memfd's place taken by an eventfd: adopt finds no Pipe region there.
  std::vector<int> wrong = {travel.fds[0], travel.fds[2], travel.fds[2], travel.fds[3]};
  EXPECT_THROW((void)travelled(a, wrong), mp::Error);
  std::vector<int> too_few = {travel.fds[0], travel.fds[1]};
  EXPECT_THROW((void)travelled(a, too_few), mp::CodecError);
}

}  // namespace
