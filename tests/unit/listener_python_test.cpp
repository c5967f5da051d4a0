// mp::Listener / mp::Client against the machine's real Python and its
// multiprocessing.connection: bytes both ways, the authkey challenge in the
// form this Python speaks and in Python 3.12's "{sha256}" form, a wrong key
// on both sides. Each test checks both ends: the C++ side with gtest, the
// Python side by its exit status (tests/helpers/python_peer.py).
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "mp/errors.hpp"
#include "mp/listener.hpp"
#include "unit/python_peer.hpp"

namespace {

using mp::test::PythonPeer;

std::vector<std::byte> bytes_of(std::string_view text) {
  std::vector<std::byte> out(text.size());
  std::memcpy(out.data(), text.data(), text.size());
  return out;
}

std::string text_of(const std::vector<std::byte>& bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

// The mp side of the "bytes" exchange (see python_peer.py).
template <class T>
void exchange_bytes(mp::Connection<T>& conn) {
  EXPECT_EQ(text_of(conn.recv_bytes()), "bytes from python");
  conn.send_bytes(bytes_of("bytes from mp"));
}

void python_client_to_mp_listener(const std::string& form, mp::ChallengeDigest ours) {
  mp::ConnectionOptions options;
  options.challenge = ours;
  mp::Listener listener("127.0.0.1:0", 1, std::string("shared secret"), options);
  PythonPeer python({"client", listener.address(), "shared secret", form, "bytes"});
  auto conn = listener.accept<std::string>();
  exchange_bytes(conn);
  EXPECT_EQ(python.wait(), 0);
}

TEST(ListenerPython, PythonClientToMpListenerNativeChallenge) {
  python_client_to_mp_listener("native", mp::ChallengeDigest::sha256);
  python_client_to_mp_listener("native", mp::ChallengeDigest::legacy_md5);
}

TEST(ListenerPython, PythonClientToMpListenerSha256Challenge) {
  python_client_to_mp_listener("modern", mp::ChallengeDigest::sha256);
  python_client_to_mp_listener("modern", mp::ChallengeDigest::legacy_md5);
}

TEST(ListenerPython, PythonClientOverAUnixSocket) {
  mp::Listener listener("@mp-python-test-" + std::to_string(::getpid()), 1, std::string("k"));
  PythonPeer python({"client", listener.address(), "k", "native", "bytes"});
  auto conn = listener.accept<std::string>();
  exchange_bytes(conn);
  EXPECT_EQ(python.wait(), 0);
}

TEST(ListenerPython, PythonClientWithoutAuthkey) {
  mp::Listener listener("127.0.0.1:0");
  PythonPeer python({"client", listener.address(), "-", "native", "bytes"});
  auto conn = listener.accept<std::string>();
  exchange_bytes(conn);
  EXPECT_EQ(python.wait(), 0);
}

TEST(ListenerPython, PythonClientWithAWrongKeyFailsOnBothSides) {
  for (const char* form : {"native", "modern"}) {
    mp::Listener listener("127.0.0.1:0", 1, std::string("right"));
    PythonPeer python({"client", listener.address(), "wrong", form, "wrongkey"});
    EXPECT_THROW((void)listener.accept<std::string>(), mp::AuthenticationError) << form;
    EXPECT_EQ(python.wait(), 0) << "Python did not see an AuthenticationError (" << form << ")";
  }
}

void mp_client_exchange(const std::string& form, mp::ChallengeDigest ours) {
  PythonPeer python({"listener", "shared secret", form, "bytes"});
  std::string address = python.read_line();
  ASSERT_FALSE(address.empty()) << "the Python listener printed no address";
  mp::ConnectionOptions options;
  options.challenge = ours;
  auto conn = mp::Client<std::string>(address, std::string("shared secret"), options);
  exchange_bytes(conn);
  EXPECT_EQ(python.wait(), 0);
}

TEST(ListenerPython, MpClientToPythonListenerNativeChallenge) {
  mp_client_exchange("native", mp::ChallengeDigest::sha256);
  mp_client_exchange("native", mp::ChallengeDigest::legacy_md5);
}

TEST(ListenerPython, MpClientToPythonListenerSha256Challenge) {
  mp_client_exchange("modern", mp::ChallengeDigest::sha256);
  mp_client_exchange("modern", mp::ChallengeDigest::legacy_md5);
}

TEST(ListenerPython, MpClientWithAWrongKeyFailsOnBothSides) {
  for (const char* form : {"native", "modern"}) {
    PythonPeer python({"listener", "right", form, "wrongkey"});
    std::string address = python.read_line();
    ASSERT_FALSE(address.empty());
    EXPECT_THROW((void)mp::Client<std::string>(address, std::string("wrong")), mp::AuthenticationError)
        << form;
    EXPECT_EQ(python.wait(), 0) << "Python did not see an AuthenticationError (" << form << ")";
  }
}

}  // namespace
