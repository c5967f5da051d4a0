// mp::Listener / mp::Client against the machine's real Python and its
// multiprocessing.connection: bytes both ways, the authkey challenge in the
// form this Python speaks and in Python 3.12's "{sha256}" form, a wrong key
// on both sides. Each test checks both ends: the C++ side with gtest, the
// Python side by its exit status (tests/helpers/python_peer.py).
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "mp/errors.hpp"
#include "mp/listener.hpp"
#include "mp/py.hpp"
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

// The mp side of the "data" exchange: checks what Python sent field by
// field, answers with the same dict plus "reply", then sends its repr() for
// Python to compare with its own.
void exchange_data(mp::Connection<mp::py::Object>& conn) {
  exchange_bytes(conn);
  namespace py = mp::py;
  py::Object got = conn.recv();
  EXPECT_EQ(got["x"], (py::List{1, 2.5, "s"}));
  EXPECT_EQ(got["x"][1].as_float(), 2.5);
  EXPECT_EQ(got["t"], (py::Tuple{1, py::None, true, false}));
  EXPECT_EQ(got["b"].as_bytes(), py::Bytes(std::string("\x00\xff", 2)));
  EXPECT_EQ(got["big"].as_int(), INT64_MAX);
  EXPECT_EQ(got["neg"].as_int(), INT64_MIN);
  EXPECT_EQ(got["unicode"].as_str(), "h\u00e9llo \u2603 \U0001f600");
  EXPECT_EQ(got["nested"]["empty_tuple"], py::Tuple{});
  EXPECT_EQ(got["nested"][7].as_str(), "int key");
  EXPECT_EQ(got["floats"][2].as_float(), 1e300);
  py::Object reply = got;
  reply.as_dict().set("reply", "from mp");
  conn.send(reply);
  std::string repr = got.repr();
  conn.send_bytes(std::as_bytes(std::span<const char>(repr.data(), repr.size())));
}

TEST(ListenerPython, PlainDataBothWaysPythonClient) {
  for (const char* form : {"native", "modern"}) {
    mp::Listener listener("127.0.0.1:0", 1, std::string("k"));
    PythonPeer python({"client", listener.address(), "k", form, "data"});
    auto conn = listener.accept<mp::py::Object>();
    exchange_data(conn);
    EXPECT_EQ(python.wait(), 0) << form;
  }
}

TEST(ListenerPython, PlainDataBothWaysMpClient) {
  PythonPeer python({"listener", "k", "native", "data"});
  std::string address = python.read_line();
  ASSERT_FALSE(address.empty());
  auto conn = mp::Client<mp::py::Object>(address, std::string("k"));
  exchange_data(conn);
  EXPECT_EQ(python.wait(), 0);
}

TEST(ListenerPython, AMaliciousPickleIsRefusedAndItsCodeNeverRuns) {
  std::string marker = "/tmp/mp-evil-marker-" + std::to_string(::getpid());
  std::filesystem::remove(marker);
  ::setenv("MP_EVIL_MARKER", marker.c_str(), 1);
  mp::Listener listener("127.0.0.1:0", 1, std::string("k"));
  PythonPeer python({"client", listener.address(), "k", "native", "evil"});
  auto conn = listener.accept<mp::py::Object>();
  try {
    (void)conn.recv();
    ADD_FAILURE() << "a pickle calling os.system was accepted";
  } catch (const mp::CodecError& error) {
    std::string what = error.what();
    EXPECT_NE(what.find("refused opcode STACK_GLOBAL"), std::string::npos) << what;
  }
  conn.send_bytes(std::as_bytes(std::span<const char>("refused", 7)));
  EXPECT_EQ(python.wait(), 0);
  EXPECT_FALSE(std::filesystem::exists(marker)) << "the pickle's code ran";
  ::unsetenv("MP_EVIL_MARKER");
}

}  // namespace
