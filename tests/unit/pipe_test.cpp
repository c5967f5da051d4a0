// mp::Pipe / mp::Connection: every member and every error, in one process, across
// fork()ed processes, and between two threads (PipeThreads, for TSan).
#include <fcntl.h>
#include <signal.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "mp/errors.hpp"
#include "mp/pipe.hpp"
#include "mp/process.hpp"
#include "support/child.hpp"
#include "support/values.hpp"

namespace {

using namespace std::chrono_literals;

std::vector<std::byte> bytes_of(std::string_view text) {
  std::vector<std::byte> out(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) out[i] = static_cast<std::byte>(text[i]);
  return out;
}

// stream_pipe<T>(): the socket transport (make_stream_connection_pair), whose
// framing Listener/Client build on; its fd takes raw bytes, so the StreamPipe
// tests can forge broken streams.
template <class T>
std::pair<mp::Connection<T>, mp::Connection<T>> stream_pipe(bool duplex = true) {
  auto [first, second] = mp::detail::make_stream_connection_pair(duplex);
  return {mp::detail::ConnectionAccess::wrap<mp::Connection<T>>(std::move(first)),
          mp::detail::ConnectionAccess::wrap<mp::Connection<T>>(std::move(second))};
}

using mp::test::fork_child;
using mp::test::message_of;
using mp::test::pattern;
using mp::test::wait_child;

TEST(Pipe, TypedValuesKeepTheirBoundariesAndOrder) {
  auto [a, b] = mp::Pipe<std::string>();
  std::vector<std::string> sent = {"one", "", "three", std::string(100000, 'x'), "", "last"};
  for (const auto& s : sent) a.send(s);
  for (const auto& s : sent) EXPECT_EQ(b.recv(), s);
  EXPECT_FALSE(b.poll());
}

TEST(Pipe, BytesKeepTheirBoundariesIncludingTheEmptyMessage) {
  auto [a, b] = mp::Pipe<int>();
  a.send_bytes(bytes_of("abc"));
  a.send_bytes({});
  a.send_bytes(bytes_of("de"));
  a.send_bytes({});
  EXPECT_EQ(b.recv_bytes(), bytes_of("abc"));
  ASSERT_TRUE(b.poll());  // an empty message is a message
  EXPECT_TRUE(b.recv_bytes().empty());
  EXPECT_EQ(b.recv_bytes(), bytes_of("de"));
  EXPECT_TRUE(b.recv_bytes().empty());
  EXPECT_FALSE(b.poll());
}

TEST(Pipe, DuplexEndsSendBothWays) {
  auto [a, b] = mp::Pipe<std::int64_t>();
  EXPECT_TRUE(a.readable() && a.writable() && b.readable() && b.writable());
  a.send(1);
  b.send(-2);
  EXPECT_EQ(b.recv(), 1);
  EXPECT_EQ(a.recv(), -2);
}

TEST(Pipe, TypedAndRawMessagesMix) {
  auto [a, b] = mp::Pipe<std::string>();
  a.send("typed");
  a.send_bytes(mp::encode(std::string("raw")));
  EXPECT_EQ(b.recv_bytes(), mp::encode(std::string("typed")));
  EXPECT_EQ(b.recv(), "raw");
}

TEST(Pipe, PollWithoutTimeoutDoesNotWait) {
  auto [a, b] = mp::Pipe<int>();
  EXPECT_FALSE(b.poll());
  EXPECT_FALSE(b.poll(0s));
  EXPECT_FALSE(b.poll(-5s));  // negative: do not wait, as Python
  a.send(7);
  EXPECT_TRUE(b.poll());
  EXPECT_TRUE(b.poll());  // poll does not consume
  EXPECT_EQ(b.recv(), 7);
  EXPECT_FALSE(b.poll());
}

TEST(Pipe, PollWithTimeoutReturnsFalseWhenNothingCameAndTrueWhenSomethingDoes) {
  auto [a, b] = mp::Pipe<int>();
  EXPECT_FALSE(b.poll(20ms));
  pid_t child = fork_child([&, &a = a] {
    ::usleep(50000);
    a.send(5);
    return 0;
  });
  EXPECT_TRUE(b.poll(60s));
  EXPECT_EQ(b.recv(), 5);
  EXPECT_EQ(wait_child(child), 0);
}

TEST(Pipe, PollWithAHugeTimeoutWaitsLikePythonsPollNone) {
  // hours::max() must mean "wait", not overflow into "do not wait".
  auto [a, b] = mp::Pipe<int>();
  pid_t child = fork_child([&, &a = a] {
    ::usleep(50000);
    a.send(9);
    return 0;
  });
  EXPECT_TRUE(b.poll(std::chrono::hours::max()));
  EXPECT_EQ(b.recv(), 9);
  EXPECT_EQ(wait_child(child), 0);
}

TEST(Pipe, EOFErrorOnlyAfterEveryMessageWasRead) {
  auto [a, b] = mp::Pipe<std::string>();
  a.send("first");
  a.send("second");
  a.close();
  EXPECT_TRUE(b.poll());
  EXPECT_EQ(b.recv(), "first");
  EXPECT_EQ(b.recv(), "second");
  EXPECT_TRUE(b.poll()) << "poll is true at EOF so that recv can raise";
  std::string what = message_of<mp::EOFError>([&, &b = b] { (void)b.recv(); });
  EXPECT_NE(what.find("recv("), std::string::npos) << what;
  EXPECT_NE(what.find("closed"), std::string::npos) << what;
  EXPECT_THROW((void)b.recv_bytes(), mp::EOFError);
  EXPECT_THROW((void)b.recv(), mp::EOFError) << "EOF stays EOF";
}

TEST(Pipe, OneWayFirstEndReceivesSecondEndSends) {
  auto [reader, writer] = mp::Pipe<std::string>(false);
  EXPECT_TRUE(reader.readable());
  EXPECT_FALSE(reader.writable());
  EXPECT_FALSE(writer.readable());
  EXPECT_TRUE(writer.writable());
  writer.send("down the pipe");
  writer.send_bytes({});
  EXPECT_EQ(reader.recv(), "down the pipe");
  EXPECT_TRUE(reader.recv_bytes().empty());
  writer.close();
  EXPECT_THROW((void)reader.recv(), mp::EOFError);
}

TEST(Pipe, OneWayMisuseIsAValueErrorNamingTheCall) {
  auto [reader, writer] = mp::Pipe<std::string>(false);
  std::string what = message_of<mp::ValueError>([&, &r = reader] { r.send("x"); });
  EXPECT_NE(what.find("send(): connection is read-only"), std::string::npos) << what;
  what = message_of<mp::ValueError>([&, &r = reader] { r.send_bytes({}); });
  EXPECT_NE(what.find("send_bytes(): connection is read-only"), std::string::npos) << what;
  what = message_of<mp::ValueError>([&, &w = writer] { (void)w.recv(); });
  EXPECT_NE(what.find("recv(): connection is write-only"), std::string::npos) << what;
  what = message_of<mp::ValueError>([&, &w = writer] { (void)w.recv_bytes(); });
  EXPECT_NE(what.find("recv_bytes(): connection is write-only"), std::string::npos) << what;
  what = message_of<mp::ValueError>([&, &w = writer] { (void)w.poll(); });
  EXPECT_NE(what.find("poll(): connection is write-only"), std::string::npos) << what;
}

TEST(Pipe, UsingAClosedConnectionIsAValueError) {
  auto [a, b] = mp::Pipe<int>();
  EXPECT_FALSE(a.closed());
  a.close();
  EXPECT_TRUE(a.closed());
  a.close();  // closing twice is harmless, as in Python
  EXPECT_TRUE(a.closed());
  std::string what = message_of<mp::ValueError>([&, &a = a] { a.send(1); });
  EXPECT_NE(what.find("send(): connection is closed"), std::string::npos) << what;
  EXPECT_THROW(a.send_bytes({}), mp::ValueError);
  EXPECT_THROW((void)a.recv(), mp::ValueError);
  EXPECT_THROW((void)a.recv_bytes(), mp::ValueError);
  EXPECT_THROW((void)a.poll(), mp::ValueError);
  what = message_of<mp::ValueError>([&, &a = a] { (void)a.fileno(); });
  EXPECT_NE(what.find("fileno(): connection is closed"), std::string::npos) << what;
  EXPECT_TRUE(a.readable() && a.writable())
      << "readable/writable describe the end, closed or not (as Python)";
  EXPECT_FALSE(b.closed());
}

TEST(Pipe, CloseClosesTheEndForEveryHandleOfIt) {
  auto [a, b] = mp::Pipe<int>();
  mp::Connection<int> copy = a;
  EXPECT_EQ(copy.fileno(), a.fileno()) << "handles share one end";
  copy.close();
  EXPECT_TRUE(a.closed());
  EXPECT_THROW(a.send(1), mp::ValueError);
  EXPECT_THROW((void)b.recv(), mp::EOFError) << "the peer sees EOF at once";
}

TEST(Pipe, DroppingTheLastHandleClosesTheEnd) {
  auto [a, b] = mp::Pipe<int>();
  {
    auto dropped = std::move(a);
    dropped.send(3);
  }
  EXPECT_EQ(b.recv(), 3);
  EXPECT_THROW((void)b.recv(), mp::EOFError);
}

TEST(Pipe, AMovedFromHandleIsAValueErrorNotACrash) {
  auto [a, b] = mp::Pipe<int>();
  mp::Connection<int> moved = std::move(a);
  EXPECT_TRUE(a.closed());  // NOLINT(bugprone-use-after-move): testing exactly that
  EXPECT_FALSE(a.readable());
  std::string what = message_of<mp::ValueError>([&, &a = a] { a.send(1); });
  EXPECT_NE(what.find("send(): this Connection handle was moved from"), std::string::npos) << what;
  EXPECT_THROW((void)a.recv(), mp::ValueError);
  EXPECT_THROW((void)a.fileno(), mp::ValueError);
  a.close();  // harmless
  moved.send(2);
  EXPECT_EQ(b.recv(), 2);
}

TEST(Pipe, SendToAClosedPeerIsAConnectionErrorAndNoSignal) {
  auto [a, b] = mp::Pipe<std::string>();
  b.close();
  std::string what = message_of<mp::ConnectionError>([&, &a = a] { a.send("nobody listens"); });
  EXPECT_NE(what.find("send(connection fd"), std::string::npos) << what;
  EXPECT_NE(what.find("Broken pipe"), std::string::npos) << what;
  EXPECT_NE(what.find("other end of the connection was closed"), std::string::npos) << what;
  EXPECT_THROW(a.send_bytes(bytes_of("x")), mp::ConnectionError);
}

TEST(Pipe, OneWaySendToAClosedReaderIsAConnectionErrorAndLeavesNoSigpipe) {
  // With SIGPIPE at its default (terminate), a bare write() would kill us.
  struct sigaction previous {};
  struct sigaction deflt {};
  deflt.sa_handler = SIG_DFL;
  ASSERT_EQ(::sigaction(SIGPIPE, &deflt, &previous), 0);
  {
    auto [reader, writer] = mp::Pipe<std::string>(false);
    reader.close();
    std::string what = message_of<mp::ConnectionError>([&, &w = writer] { w.send("nobody listens"); });
    EXPECT_NE(what.find("Broken pipe"), std::string::npos) << what;
    EXPECT_THROW(writer.send_bytes({}), mp::ConnectionError);
  }
  sigset_t pending;
  sigemptyset(&pending);
  ASSERT_EQ(::sigpending(&pending), 0);
  EXPECT_EQ(sigismember(&pending, SIGPIPE), 0) << "the SIGPIPE the write raised was consumed";
  sigset_t mask;
  ASSERT_EQ(::pthread_sigmask(SIG_SETMASK, nullptr, &mask), 0);
  EXPECT_EQ(sigismember(&mask, SIGPIPE), 0) << "the signal mask is restored";
  ::sigaction(SIGPIPE, &previous, nullptr);
}

TEST(StreamPipe, ATruncatedMessageIsAnEOFErrorThatSaysSo) {
  auto [a, b] = stream_pipe<std::string>();
  // The header promises 100 bytes, 10 come, then the sender is gone.
  std::array<unsigned char, 18> partial{100, 0,   0,   0,   0,   0,   0,   0,   'a',
                                        'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'};
  ASSERT_EQ(::write(a.fileno(), partial.data(), partial.size()), 18);
  a.close();
  std::string what = message_of<mp::EOFError>([&, &b = b] { (void)b.recv(); });
  EXPECT_NE(what.find("truncated"), std::string::npos) << what;
  EXPECT_NE(what.find("100-byte message (10 bytes came)"), std::string::npos) << what;
}

TEST(StreamPipe, ATruncatedHeaderIsAnEOFErrorThatSaysSo) {
  auto [a, b] = stream_pipe<std::string>();
  std::array<unsigned char, 3> partial{5, 0, 0};
  ASSERT_EQ(::write(a.fileno(), partial.data(), partial.size()), 3);
  a.close();
  std::string what = message_of<mp::EOFError>([&, &b = b] { (void)b.recv_bytes(); });
  EXPECT_NE(what.find("header"), std::string::npos) << what;
  EXPECT_NE(what.find("truncated"), std::string::npos) << what;
}

TEST(StreamPipe, AnImplausibleLengthIsACodecErrorNotAHugeAllocation) {
  auto [a, b] = stream_pipe<std::string>();
  std::array<unsigned char, 8> garbage{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  ASSERT_EQ(::write(a.fileno(), garbage.data(), garbage.size()), 8);
  std::string what = message_of<mp::CodecError>([&, &b = b] { (void)b.recv_bytes(); });
  EXPECT_NE(what.find("implausible"), std::string::npos) << what;
}

TEST(StreamPipe, ALargeButPlausibleLengthFromADeadSenderIsAnEOFError) {
  // 1 TiB promised, nothing sent: no allocation of 1 TiB, just EOF.
  auto [a, b] = stream_pipe<std::string>();
  std::array<unsigned char, 8> header{0, 0, 0, 0, 0, 1, 0, 0};
  ASSERT_EQ(::write(a.fileno(), header.data(), header.size()), 8);
  a.close();
  EXPECT_THROW((void)b.recv_bytes(), mp::EOFError);
}

TEST(Pipe, BytesThatAreNotATAreACodecError) {
  auto [a, b] = mp::Pipe<std::int64_t>();
  a.send_bytes(bytes_of("abc"));  // 3 bytes cannot be an i64
  std::string what = message_of<mp::CodecError>([&, &b = b] { (void)b.recv(); });
  EXPECT_NE(what.find("recv(connection fd"), std::string::npos) << what;
  EXPECT_NE(what.find("3-byte message does not decode as"), std::string::npos) << what;
  a.send(42);  // the stream is still in step after a bad message
  EXPECT_EQ(b.recv(), 42);
}

TEST(Pipe, FdsAreCloseOnExec) {
  for (bool duplex : {true, false}) {
    auto [a, b] = mp::Pipe<int>(duplex);
    EXPECT_NE(::fcntl(a.fileno(), F_GETFD) & FD_CLOEXEC, 0);
    EXPECT_NE(::fcntl(b.fileno(), F_GETFD) & FD_CLOEXEC, 0);
  }
}

TEST(Pipe, ManyPipesLeaveNoFdBehind) {
  // The test main fails this test if any fd is left open afterwards.
  for (int i = 0; i < 200; ++i) {
    auto [a, b] = mp::Pipe<int>(i % 2 == 0);
    mp::Connection<int> copy = i % 2 == 0 ? a : b;
    if (i % 3 == 0) copy.close();
  }
}

TEST(Pipe, LargeMessagesCrossProcessesIntact) {
  constexpr std::size_t size = std::size_t{64} << 20;
  for (bool duplex : {true, false}) {
    auto [reader, writer] = mp::Pipe<std::vector<std::uint64_t>>(duplex);
    pid_t child = fork_child([&, &reader = reader, &writer = writer] {
      reader.close();
      writer.send_bytes(pattern(size, 1));
      std::vector<std::uint64_t> numbers(size / 8);
      std::iota(numbers.begin(), numbers.end(), std::uint64_t{7});
      writer.send(numbers);
      writer.send_bytes(bytes_of("after"));
      return 0;
    });
    writer.close();
    std::vector<std::byte> raw = reader.recv_bytes();
    EXPECT_EQ(raw.size(), size);
    EXPECT_TRUE(raw == pattern(size, 1));
    std::vector<std::uint64_t> numbers = reader.recv();
    ASSERT_EQ(numbers.size(), size / 8);
    EXPECT_EQ(numbers.front(), 7U);
    EXPECT_EQ(numbers.back(), 7U + size / 8 - 1);
    EXPECT_EQ(reader.recv_bytes(), bytes_of("after"));
    EXPECT_THROW((void)reader.recv_bytes(), mp::EOFError);
    EXPECT_EQ(wait_child(child), 0);
  }
}

namespace {
volatile sig_atomic_t alarms = 0;
void count_alarm(int) { alarms = alarms + 1; }

// SIGALRM every 200 us, with a handler installed without SA_RESTART, so that
// blocking reads and writes really fail with EINTR or return short.
void start_alarm_storm() {
  struct sigaction action {};
  action.sa_handler = count_alarm;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;
  ::sigaction(SIGALRM, &action, nullptr);
  itimerval every{{0, 200}, {0, 200}};
  ::setitimer(ITIMER_REAL, &every, nullptr);
}
void stop_alarm_storm() {
  itimerval off{};
  ::setitimer(ITIMER_REAL, &off, nullptr);
  struct sigaction action {};
  action.sa_handler = SIG_DFL;
  ::sigaction(SIGALRM, &action, nullptr);
}
}  // namespace

TEST(Pipe, SignalsInterruptingLargeTransfersAreRetried) {
  constexpr std::size_t size = std::size_t{8} << 20;
  for (bool duplex : {true, false}) {
    auto [reader, writer] = mp::Pipe<std::string>(duplex);
    pid_t child = fork_child([&, &reader = reader, &writer = writer] {
      reader.close();
      start_alarm_storm();  // timers are not inherited: the child starts its own
      for (unsigned i = 0; i < 4; ++i) writer.send_bytes(pattern(size, i));
      writer.send("done");
      stop_alarm_storm();
      return 0;
    });
    writer.close();
    alarms = 0;
    start_alarm_storm();
    for (unsigned i = 0; i < 4; ++i) EXPECT_TRUE(reader.recv_bytes() == pattern(size, i)) << i;
    EXPECT_EQ(reader.recv(), "done");
    EXPECT_TRUE(reader.poll(60s));
    EXPECT_THROW((void)reader.recv(), mp::EOFError);
    stop_alarm_storm();
    EXPECT_GT(alarms, 0) << "the storm did not happen, the test proves nothing";
    EXPECT_EQ(wait_child(child), 0);
  }
}

TEST(Pipe, ParentAndChildPingPongThroughProcess) {
  auto [parent_conn, child_conn] = mp::Pipe<std::int64_t>();
  mp::Process child(
      [](mp::Connection<std::int64_t> parent_end, mp::Connection<std::int64_t> conn) {
        parent_end.close();  // Python's idiom: the child closes the end it does not use
        try {
          for (;;) conn.send(conn.recv() + 1);
        } catch (const mp::EOFError&) {
        }
      },
      parent_conn, child_conn);
  child.start();
  child_conn.close();
  std::int64_t n = 0;
  for (int i = 0; i < 1000; ++i) {
    parent_conn.send(n);
    n = parent_conn.recv() + 1;
  }
  EXPECT_EQ(n, 2000);
  parent_conn.close();  // the child sees EOF and returns
  child.join();
  EXPECT_EQ(child.exitcode(), 0);
}

TEST(Pipe, TheReaderSeesEOFOnlyOnceEveryProcessClosedTheWriteEnd) {
  auto [reader, writer] = mp::Pipe<std::string>(false);
  pid_t child = fork_child([&, &reader = reader, &writer = writer] {
    reader.close();
    writer.send("from the child");
    return 0;  // exiting closes the child's copy of the write end
  });
  writer.close();  // the parent's copy; without this the reader would wait forever
  EXPECT_EQ(reader.recv(), "from the child");
  EXPECT_THROW((void)reader.recv(), mp::EOFError);
  EXPECT_EQ(wait_child(child), 0);
}

TEST(Pipe, WaitReturnsTheReadyConnections) {
  auto [a1, b1] = mp::Pipe<int>();
  auto [a2, b2] = mp::Pipe<int>(false);
  auto [a3, b3] = mp::Pipe<int>();
  std::vector<int> fds = {b1.fileno(), a2.fileno(), b3.fileno()};
  EXPECT_TRUE(mp::wait(fds, 0s).empty());
  a1.send(1);
  b2.send(2);
  std::vector<int> ready = mp::wait(fds, 10s);
  std::sort(ready.begin(), ready.end());
  std::vector<int> expected = {b1.fileno(), a2.fileno()};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(ready, expected);
  EXPECT_EQ(b1.recv(), 1);
  EXPECT_EQ(a2.recv(), 2);
  a3.close();  // EOF counts as ready
  EXPECT_EQ(mp::wait(fds), std::vector<int>{b3.fileno()});
}

TEST(Pipe, WaitSeesConnectionsAndProcessSentinelsTogether) {
  auto [parent_conn, child_conn] = mp::Pipe<int>();
  mp::Process child(
      [](mp::Connection<int> conn) {
        conn.send(1);
        (void)conn.recv();  // leave when told
      },
      child_conn);
  child.start();
  std::vector<int> fds = {child.sentinel(), parent_conn.fileno()};
  EXPECT_EQ(mp::wait(fds, 60s), std::vector<int>{parent_conn.fileno()});
  EXPECT_EQ(parent_conn.recv(), 1);
  parent_conn.send(2);
  // The child has ended, but the parent still holds child_conn: no EOF yet.
  EXPECT_EQ(mp::wait(fds, 60s), std::vector<int>{child.sentinel()});
  EXPECT_FALSE(parent_conn.poll());
  child_conn.close();  // now no process holds the other end
  EXPECT_EQ(mp::wait(fds, 60s), fds);
  EXPECT_THROW((void)parent_conn.recv(), mp::EOFError);
  child.join();
  EXPECT_EQ(child.exitcode(), 0);
}

TEST(PipeThreads, TwoThreadsPingPong) {
  auto [left, right] = mp::Pipe<std::int64_t>();
  std::thread other([&, &right = right] {
    for (;;) {
      std::int64_t n;
      try {
        n = right.recv();
      } catch (const mp::EOFError&) {
        return;
      }
      right.send(n * 2);
    }
  });
  std::int64_t total = 0;
  for (std::int64_t i = 0; i < 2000; ++i) {
    left.send(i);
    total += left.recv();
  }
  left.close();
  other.join();
  EXPECT_EQ(total, 2 * (1999 * 2000 / 2));
}

TEST(PipeThreads, OneThreadSendsWhileAnotherReceivesOnTheSameDuplexEnd) {
  auto [a, b] = mp::Pipe<std::string>();
  constexpr int count = 500;
  std::thread echo([&, &b = b] {
    for (int i = 0; i < count; ++i) b.send(b.recv());
  });
  std::thread sender([&, &a = a] {
    for (int i = 0; i < count; ++i) a.send(std::string(static_cast<std::size_t>(i) * 37, 'a' + i % 26));
  });
  for (int i = 0; i < count; ++i)
    EXPECT_EQ(a.recv(), std::string(static_cast<std::size_t>(i) * 37, 'a' + i % 26));
  sender.join();
  echo.join();
}

}  // namespace
