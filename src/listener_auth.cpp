// src/listener_auth.cpp — the authkey challenge (see listener_auth.hpp),
// with HMAC, random bytes and constant-time comparison from OpenSSL's libcrypto.
#include "listener_auth.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "mp/errors.hpp"

namespace mp::detail {
namespace {

constexpr std::string_view challenge_prefix = "#CHALLENGE#";
constexpr std::string_view welcome = "#WELCOME#";
constexpr std::string_view failure = "#FAILURE#";
constexpr std::size_t max_handshake_message = 256;
constexpr std::size_t legacy_message_size = 20;  // Python <= 3.11's random challenge
constexpr std::size_t md5_size = 16;
constexpr std::size_t modern_random_size = 40;  // Python 3.12's random part after "{sha256}"
constexpr std::size_t max_digest_name = 8;      // "sha3_256"

using Bytes = std::vector<std::byte>;

std::span<const std::byte> as_bytes(std::string_view text) {
  return std::as_bytes(std::span<const char>(text.data(), text.size()));
}

void append(Bytes& out, std::string_view text) {
  auto bytes = as_bytes(text);
  out.insert(out.end(), bytes.begin(), bytes.end());
}

bool equals(std::span<const std::byte> bytes, std::string_view text) {
  return bytes.size() == text.size() && std::memcmp(bytes.data(), text.data(), text.size()) == 0;
}

// The digests Python allows by name in a "{name}" prefix.
const EVP_MD* digest_by_name(std::string_view name) {
  if (name == "md5") return EVP_md5();
  if (name == "sha256") return EVP_sha256();
  if (name == "sha384") return EVP_sha384();
  if (name == "sha3_256") return EVP_sha3_256();
  if (name == "sha3_384") return EVP_sha3_384();
  return nullptr;
}

Bytes hmac(const EVP_MD* digest, std::string_view key, std::span<const std::byte> message) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
  unsigned int size = 0;
  if (HMAC(digest, key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(message.data()), message.size(), out.data(),
           &size) == nullptr)
    throw AuthenticationError("authkey challenge: HMAC failed in libcrypto");
  Bytes result(size);
  std::memcpy(result.data(), out.data(), size);
  return result;
}

// A message's digest name and payload, as Python reads them: a 16- or
// 20-byte message is legacy (name empty: bare HMAC-MD5); otherwise it must
// start with "{name}" naming an allowed digest. nullopt if neither.
struct Named {
  std::string name;
  std::span<const std::byte> payload;
};
std::optional<Named> split_digest_name(std::span<const std::byte> message) {
  if (message.size() == legacy_message_size || message.size() == md5_size) return Named{"", message};
  if (message.empty() || message[0] != std::byte{'{'}) return std::nullopt;
  for (std::size_t i = 1; i < message.size() && i <= max_digest_name + 1; ++i) {
    if (message[i] != std::byte{'}'}) continue;
    std::string name(reinterpret_cast<const char*>(message.data()) + 1, i - 1);
    if (digest_by_name(name) == nullptr) return std::nullopt;
    return Named{name, message.subspan(i + 1)};
  }
  return std::nullopt;
}

// Receives one handshake message; every failure is an AuthenticationError.
Bytes receive(StreamConnection& conn, Deadline deadline, const char* step) {
  try {
    return conn.recv_message("accept/Client authkey challenge", max_handshake_message, deadline);
  } catch (const TimeoutError&) {
    throw AuthenticationError(std::string("authkey challenge: the peer sent no ") + step +
                              " in time (ConnectionOptions::handshake_timeout)");
  } catch (const EOFError&) {
    throw AuthenticationError(
        std::string("authkey challenge: the peer closed the connection instead of sending ") + step);
  } catch (const CodecError&) {
    throw AuthenticationError(std::string("authkey challenge: the peer sent a message longer than ") +
                              std::to_string(max_handshake_message) +
                              " bytes or not in Python's framing as " + step);
  }
}

void send(StreamConnection& conn, std::span<const std::byte> bytes) {
  try {
    conn.send_bytes(bytes, "accept/Client authkey challenge");
  } catch (const ConnectionError&) {
    throw AuthenticationError("authkey challenge: the peer closed the connection during the challenge");
  }
}

}  // namespace

void deliver_challenge(StreamConnection& conn, std::string_view authkey, ChallengeDigest form,
                       Deadline deadline) {
  Bytes message;
  if (form == ChallengeDigest::sha256) {
    append(message, "{sha256}");
  }
  const std::size_t random_size = form == ChallengeDigest::sha256 ? modern_random_size : legacy_message_size;
  const std::size_t random_at = message.size();
  message.resize(random_at + random_size);
  if (RAND_bytes(reinterpret_cast<unsigned char*>(message.data() + random_at),
                 static_cast<int>(random_size)) != 1)
    throw AuthenticationError("authkey challenge: RAND_bytes failed in libcrypto");

  Bytes challenge;
  append(challenge, challenge_prefix);
  challenge.insert(challenge.end(), message.begin(), message.end());
  send(conn, challenge);

  Bytes answer = receive(conn, deadline, "answer to our challenge");
  std::string reason;
  auto named = split_digest_name(answer);
  if (!named) {
    reason = "the answer is neither a bare HMAC-MD5 nor \"{digest}\" + an HMAC with a digest Python allows";
  } else {
    const EVP_MD* digest = digest_by_name(named->name.empty() ? "md5" : named->name);
    Bytes expected = hmac(digest, authkey, message);
    if (expected.size() != named->payload.size() ||
        CRYPTO_memcmp(expected.data(), named->payload.data(), expected.size()) != 0)
      reason = "the digest received was wrong (the peer's authkey differs)";
  }
  if (!reason.empty()) {
    try {
      send(conn, as_bytes(failure));
    } catch (const AuthenticationError&) {  // the peer may be gone already; the reason below is what matters
    }
    throw AuthenticationError("authkey challenge: " + reason);
  }
  send(conn, as_bytes(welcome));
}

void answer_challenge(StreamConnection& conn, std::string_view authkey, Deadline deadline) {
  Bytes challenge = receive(conn, deadline, "challenge");
  std::span<const std::byte> all(challenge);
  if (all.size() < challenge_prefix.size() || !equals(all.first(challenge_prefix.size()), challenge_prefix))
    throw AuthenticationError(
        "authkey challenge: protocol error, the peer's first message is not a \"#CHALLENGE#\" (does it use "
        "an "
        "authkey?)");
  std::span<const std::byte> message = all.subspan(challenge_prefix.size());
  if (message.size() < legacy_message_size)
    throw AuthenticationError("authkey challenge: the peer's challenge is too short (" +
                              std::to_string(message.size()) + " bytes)");
  auto named = split_digest_name(message);
  if (!named)
    throw AuthenticationError("authkey challenge: the peer's challenge names no digest Python allows");
  Bytes answer;
  if (named->name.empty()) {
    answer = hmac(EVP_md5(), authkey, message);
  } else {
    append(answer, "{" + named->name + "}");
    Bytes mac = hmac(digest_by_name(named->name), authkey, message);
    answer.insert(answer.end(), mac.begin(), mac.end());
  }
  send(conn, answer);
  Bytes verdict = receive(conn, deadline, "verdict on our answer");
  if (!equals(verdict, welcome))
    throw AuthenticationError("authkey challenge: the peer rejected our answer (the authkeys differ)");
}

}  // namespace mp::detail
