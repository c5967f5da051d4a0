// mp::Listener / mp::Client between mp ends: addresses, the authkey
// challenge in both forms, limits against hostile peers, fd hygiene. The
// Python side of the protocol is in listener_python_test.cpp.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "mp/errors.hpp"
#include "mp/listener.hpp"
#include "mp/wait.hpp"

namespace {

using namespace std::chrono_literals;

std::vector<std::byte> bytes_of(std::string_view text) {
  std::vector<std::byte> out(text.size());
  std::memcpy(out.data(), text.data(), text.size());
  return out;
}

std::string text_of(const std::vector<std::byte>& bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

std::string unique_abstract_name(const char* what) {
  return "@mp-listener-test-" + std::string(what) + "-" + std::to_string(::getpid());
}

// A raw TCP/Unix client that speaks no protocol: for hostile-peer tests.
int raw_connect(const std::string& address) {
  if (address.front() == '@') {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un where{};
    where.sun_family = AF_UNIX;
    std::memcpy(where.sun_path + 1, address.data() + 1, address.size() - 1);
    auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size());
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&where), length), 0) << std::strerror(errno);
    return fd;
  }
  ADD_FAILURE() << "raw_connect: only abstract addresses";
  return -1;
}

TEST(Listener, TcpPortZeroPicksAPortAndBytesTravelBothWays) {
  mp::Listener listener("127.0.0.1:0");
  std::string address = listener.address();
  ASSERT_EQ(address.rfind("127.0.0.1:", 0), 0U) << address;
  EXPECT_NE(address, "127.0.0.1:0");
  EXPECT_FALSE(listener.last_accepted().has_value());
  auto client = std::async(std::launch::async, [&] {
    auto conn = mp::Client<std::string>(address);
    conn.send_bytes(bytes_of("ping"));
    return text_of(conn.recv_bytes());
  });
  auto conn = listener.accept<std::string>();
  EXPECT_EQ(text_of(conn.recv_bytes()), "ping");
  conn.send_bytes(bytes_of("pong"));
  EXPECT_EQ(client.get(), "pong");
  ASSERT_TRUE(listener.last_accepted().has_value());
  EXPECT_EQ(listener.last_accepted()->rfind("127.0.0.1:", 0), 0U) << *listener.last_accepted();
}

TEST(Listener, UnixPathTypedValuesAndTheFileIsRemovedAtClose) {
  std::string path = "/tmp/mp-listener-test-" + std::to_string(::getpid()) + ".sock";
  {
    mp::Listener listener(path, 1, std::string("key"));
    EXPECT_EQ(listener.address(), path);
    EXPECT_TRUE(std::filesystem::exists(path));
    auto client = std::async(std::launch::async, [&] {
      auto conn = mp::Client<std::vector<int>>(path, std::string("key"));
      conn.send({1, 2, 3});
      return conn.recv();
    });
    auto conn = listener.accept<std::vector<int>>();
    auto got = conn.recv();
    EXPECT_EQ(got, (std::vector<int>{1, 2, 3}));
    got.push_back(4);
    conn.send(got);
    EXPECT_EQ(client.get(), (std::vector<int>{1, 2, 3, 4}));
    EXPECT_EQ(listener.last_accepted(),
              std::optional<std::string>(""));  // an unnamed Unix peer, as in Python
    listener.close();
    EXPECT_FALSE(std::filesystem::exists(path));
    EXPECT_THROW((void)listener.fileno(), mp::ValueError);
    EXPECT_THROW((void)listener.accept<int>(), mp::ValueError);
  }
}

TEST(Listener, AbstractNameAndWaitSeesAPendingPeer) {
  mp::Listener listener(unique_abstract_name("wait"));
  EXPECT_EQ(listener.address(), unique_abstract_name("wait"));
  EXPECT_TRUE(mp::wait({listener.fileno()}, 0ms).empty());
  auto conn_client = mp::Client<int>(listener.address());  // the backlog holds it before accept
  EXPECT_EQ(mp::wait({listener.fileno()}, 5s), std::vector<int>{listener.fileno()});
  auto conn = listener.accept<int>();
  conn_client.send(7);
  EXPECT_EQ(conn.recv(), 7);
}

TEST(Listener, BothChallengeFormsSucceedWithTheSameKey) {
  for (auto form : {mp::ChallengeDigest::sha256, mp::ChallengeDigest::legacy_md5}) {
    for (auto client_form : {mp::ChallengeDigest::sha256, mp::ChallengeDigest::legacy_md5}) {
      mp::ConnectionOptions server_options;
      server_options.challenge = form;
      mp::Listener listener("127.0.0.1:0", 1, std::string("secret"), server_options);
      auto client = std::async(std::launch::async, [&] {
        mp::ConnectionOptions options;
        options.challenge = client_form;
        auto conn = mp::Client<std::string>(listener.address(), std::string("secret"), options);
        conn.send("hello");
      });
      auto conn = listener.accept<std::string>();
      EXPECT_EQ(conn.recv(), "hello");
      client.get();
    }
  }
}

TEST(Listener, AWrongKeyIsAnAuthenticationErrorOnBothSidesAndTheListenerGoesOn) {
  mp::Listener listener("127.0.0.1:0", 4, std::string("right"));
  auto wrong = std::async(std::launch::async, [&] {
    try {
      (void)mp::Client<int>(listener.address(), std::string("wrong"));
    } catch (const mp::AuthenticationError& error) {
      return std::string(error.what());
    }
    return std::string("no error");
  });
  try {
    (void)listener.accept<int>();
    ADD_FAILURE() << "accept() took a peer with the wrong key";
  } catch (const mp::AuthenticationError& error) {
    EXPECT_NE(std::string(error.what()).find("wrong"), std::string::npos) << error.what();
  }
  std::string client_error = wrong.get();
  EXPECT_NE(client_error.find("rejected"), std::string::npos) << client_error;

  auto right = std::async(std::launch::async, [&] {
    auto conn = mp::Client<int>(listener.address(), std::string("right"));
    conn.send(1);
  });
  EXPECT_EQ(listener.accept<int>().recv(), 1);
  right.get();
}

TEST(Listener, AClientWithoutKeyFailsAgainstAKeyedListener) {
  mp::ConnectionOptions options;
  options.handshake_timeout = 5s;
  mp::Listener listener(unique_abstract_name("nokey"), 1, std::string("key"), options);
  auto client = std::async(std::launch::async, [&] {
    auto conn = mp::Client<std::string>(listener.address());  // sends nothing, receives the challenge
    conn.send_bytes(bytes_of("not an answer"));
    try {
      (void)conn.recv_bytes();  // the challenge
      return text_of(conn.recv_bytes());
    } catch (const mp::Error& error) {
      return std::string(error.what());
    }
  });
  EXPECT_THROW((void)listener.accept<int>(), mp::AuthenticationError);
  EXPECT_EQ(client.get(), "#FAILURE#");
}

TEST(Listener, ASilentPeerFailsTheChallengeAfterTheHandshakeTimeout) {
  mp::ConnectionOptions options;
  options.handshake_timeout = 200ms;  // an upper bound on the wait, not a timing assertion
  mp::Listener listener(unique_abstract_name("silent"), 4, std::string("key"), options);
  int silent = raw_connect(listener.address());
  try {
    (void)listener.accept<int>();
    ADD_FAILURE() << "a silent peer was accepted";
  } catch (const mp::AuthenticationError& error) {
    EXPECT_NE(std::string(error.what()).find("in time"), std::string::npos) << error.what();
  }
  ::close(silent);
}

TEST(Listener, GarbageDuringTheChallengeIsRefusedAndTheListenerGoesOn) {
  mp::Listener listener(unique_abstract_name("garbage"), 4, std::string("key"));
  int garbage = raw_connect(listener.address());
  // Claims a 1 GiB answer: more than the 256 bytes a challenge answer may have.
  std::array<unsigned char, 4> header{0x40, 0, 0, 0};
  ASSERT_EQ(::write(garbage, header.data(), header.size()), 4);
  try {
    (void)listener.accept<int>();
    ADD_FAILURE() << "a garbage answer was accepted";
  } catch (const mp::AuthenticationError& error) {
    EXPECT_NE(std::string(error.what()).find("longer than 256"), std::string::npos) << error.what();
  }
  ::close(garbage);
  auto good = std::async(std::launch::async,
                         [&] { mp::Client<int>(listener.address(), std::string("key")).send(5); });
  EXPECT_EQ(listener.accept<int>().recv(), 5);
  good.get();
}

TEST(Listener, AHugeClaimedLengthIsRefusedBeforeAllocation) {
  mp::Listener listener(unique_abstract_name("huge"));
  int raw = raw_connect(listener.address());
  auto conn = listener.accept<std::string>();
  // -1, then 2^62: a message no one could send.
  std::array<unsigned char, 12> header{0xff, 0xff, 0xff, 0xff, 0x40, 0, 0, 0, 0, 0, 0, 0};
  ASSERT_EQ(::write(raw, header.data(), header.size()), 12);
  try {
    (void)conn.recv_bytes();
    ADD_FAILURE() << "a 2^62-byte message was accepted";
  } catch (const mp::CodecError& error) {
    EXPECT_NE(std::string(error.what()).find("more than the"), std::string::npos) << error.what();
  }
  EXPECT_TRUE(conn.closed()) << "the stream cannot be trusted after a bad header";
  ::close(raw);
}

TEST(Listener, TheLongHeaderFormIsRead) {
  // Python announces a message beyond 2^31 - 1 bytes as -1 then an 8-byte
  // big-endian length; the reader takes that form for any length.
  mp::Listener listener(unique_abstract_name("long"));
  int raw = raw_connect(listener.address());
  auto conn = listener.accept<std::string>();
  std::array<unsigned char, 17> frame{0xff, 0xff, 0xff, 0xff, 0,   0,   0,   0,  0,
                                      0,    0,    5,    'h',  'e', 'l', 'l', 'o'};
  ASSERT_EQ(::write(raw, frame.data(), frame.size()), 17);
  EXPECT_EQ(text_of(conn.recv_bytes()), "hello");
  ::close(raw);
}

TEST(Listener, ANegativeLengthIsACodecError) {
  mp::Listener listener(unique_abstract_name("negative"));
  int raw = raw_connect(listener.address());
  auto conn = listener.accept<std::string>();
  std::array<unsigned char, 4> header{0xff, 0xff, 0xff, 0xfe};  // -2
  ASSERT_EQ(::write(raw, header.data(), header.size()), 4);
  EXPECT_THROW((void)conn.recv_bytes(), mp::CodecError);
  ::close(raw);
}

TEST(Listener, AMessageAboveTheLimitIsRefusedAndOneAtTheLimitPasses) {
  mp::ConnectionOptions options;
  options.max_message_size = 1000;
  mp::Listener listener(unique_abstract_name("limit"), 1, std::nullopt, options);
  auto client = mp::Client<std::string>(listener.address());
  auto conn = listener.accept<std::string>();
  client.send_bytes(std::vector<std::byte>(1000));
  EXPECT_EQ(conn.recv_bytes().size(), 1000U);
  client.send_bytes(std::vector<std::byte>(1001));
  EXPECT_THROW((void)conn.recv_bytes(), mp::CodecError);
}

TEST(Listener, MalformedAddressesAreValueErrors) {
  EXPECT_THROW(mp::Listener("no-port-here"), mp::ValueError);
  EXPECT_THROW(mp::Listener("127.0.0.1:99999"), mp::ValueError);
  EXPECT_THROW(mp::Listener("@"), mp::ValueError);
  EXPECT_THROW(mp::Listener("/" + std::string(200, 'x')), mp::ValueError);
  EXPECT_THROW((void)mp::Client<int>(""), mp::ValueError);
}

TEST(Listener, ConnectingWhereNobodyListensNamesTheAddress) {
  try {
    (void)mp::Client<int>(unique_abstract_name("nobody"));
    ADD_FAILURE() << "connected to nobody";
  } catch (const mp::Error& error) {
    EXPECT_NE(std::string(error.what()).find("connect"), std::string::npos) << error.what();
  }
}

TEST(Listener, TwoHundredConnectionsLeakNoFds) {
  // The test main checks fds after the test; this makes 200 authenticated
  // round trips through one listener.
  mp::Listener listener(unique_abstract_name("many"), 16, std::string("k"));
  auto clients = std::async(std::launch::async, [&] {
    for (int i = 0; i < 200; ++i) {
      auto conn = mp::Client<int>(listener.address(), std::string("k"));
      conn.send(i);
      if (conn.recv() != i + 1) return false;
    }
    return true;
  });
  for (int i = 0; i < 200; ++i) {
    auto conn = listener.accept<int>();
    conn.send(conn.recv() + 1);
  }
  EXPECT_TRUE(clients.get());
}

}  // namespace

namespace {

// Threads in one process (run under ThreadSanitizer by `make tsan`): two
// threads accept on one Listener while four client threads connect, each
// with its own authenticated round trip.
TEST(ListenerThreads, TwoAcceptingThreadsServeFourClients) {
  mp::Listener listener("@mp-listener-threads-" + std::to_string(::getpid()), 8, std::string("k"));
  constexpr int clients_per_acceptor = 2;
  auto acceptor = [&] {
    for (int i = 0; i < clients_per_acceptor; ++i) {
      auto conn = listener.accept<int>();
      conn.send(conn.recv() * 2);
      (void)listener.last_accepted();
    }
  };
  std::thread first(acceptor);
  std::thread second(acceptor);
  std::vector<std::future<int>> clients;
  for (int i = 0; i < 2 * clients_per_acceptor; ++i) {
    clients.push_back(std::async(std::launch::async, [&, i] {
      auto conn = mp::Client<int>(listener.address(), std::string("k"));
      conn.send(i);
      return conn.recv();
    }));
  }
  for (int i = 0; i < 2 * clients_per_acceptor; ++i)
    EXPECT_EQ(clients[static_cast<std::size_t>(i)].get(), 2 * i);
  first.join();
  second.join();
}

}  // namespace
