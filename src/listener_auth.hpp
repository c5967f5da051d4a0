// src/listener_auth.hpp — the authkey challenge of Python's
// multiprocessing.connection, both forms (private to libmp).
//
// One side delivers a challenge: "#CHALLENGE#" + message, where the message
// is 20 random bytes (Python <= 3.11) or "{sha256}" + 40 random bytes
// (Python 3.12+). The other side answers with the HMAC of the whole message
// under the authkey: a bare 16-byte HMAC-MD5 for a 20-byte message, else
// "{digest}" + the HMAC with the digest the message names. The deliverer
// replies "#WELCOME#" or "#FAILURE#". A deliverer accepts a bare HMAC-MD5
// answer to a modern message too (Python 3.11 answers that way; Python 3.12
// accepts it). Every message is at most 256 bytes.
//
// Safety: functions of one connection; the caller owns it for the duration.
// Visibility, Lifetime: n/a.
#pragma once

#include <string_view>

#include "mp/detail/clock.hpp"
#include "mp/listener.hpp"
#include "stream_connection.hpp"

namespace mp::detail {

// deliver_challenge(conn, authkey, form, deadline): challenges the peer.
// Throws AuthenticationError (after sending "#FAILURE#") when the answer is
// wrong, and when the peer closes, sends garbage or is silent past deadline.
void deliver_challenge(StreamConnection& conn, std::string_view authkey, ChallengeDigest form,
                       Deadline deadline);

// answer_challenge(conn, authkey, deadline): answers the peer's challenge.
// Throws AuthenticationError when the peer rejects the answer, and when it
// closes, sends something that is not a challenge or is silent past deadline.
void answer_challenge(StreamConnection& conn, std::string_view authkey, Deadline deadline);

}  // namespace mp::detail
