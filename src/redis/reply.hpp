// src/redis/reply.hpp — reading a server's reply, checked (private to libmp_redis).
//
// A reply is only read through these helpers: each checks the type it expects
// and throws mp::Error naming the call, what was expected and what came
// ("unexpected reply from the server: expected an integer, got a status
// \"OK\""), so a wrong type is never read as 0 (issue 9, defect 12). Numbers
// sent as strings are parsed with from_chars: corrupt text is the same clear
// mp::Error, never a std::invalid_argument.
#pragma once

#include <hiredis/hiredis.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mp::redis::impl {

struct ReplyFree {
  void operator()(redisReply* reply) const noexcept { freeReplyObject(reply); }
};
using Reply = std::unique_ptr<redisReply, ReplyFree>;

[[nodiscard]] bool is_error(const redisReply* reply) noexcept;
[[nodiscard]] inline bool is_error(const Reply& reply) noexcept { return is_error(reply.get()); }
[[nodiscard]] bool is_nil(const redisReply* reply) noexcept;
[[nodiscard]] bool is_string(const redisReply* reply) noexcept;
// reply_text(reply): the text of a string, status, error or integer reply ("" otherwise).
[[nodiscard]] std::string reply_text(const redisReply* reply);
// describe_reply(reply): "a string \"...\"", "an array of 3", "nil"... for messages (short).
[[nodiscard]] std::string describe_reply(const redisReply* reply);

// throw_if_error(reply, what): mp::ValueError for WRONGTYPE (a key holds
// another Redis type), mp::Error for any other error reply or a missing reply.
void throw_if_error(const redisReply* reply, std::string_view what);
inline void throw_if_error(const Reply& reply, std::string_view what) { throw_if_error(reply.get(), what); }

// unexpected_reply(what, expected, reply): the mp::Error thrown for a reply of the wrong type.
[[noreturn]] void unexpected_reply(std::string_view what, std::string_view expected, const redisReply* reply);

// integer_of(reply, what): an integer reply, or a string holding a decimal integer.
[[nodiscard]] long long integer_of(const redisReply* reply, std::string_view what);
// integer_or(reply, fallback, what): as integer_of, but nil gives fallback.
[[nodiscard]] long long integer_or(const redisReply* reply, long long fallback, std::string_view what);
// element_of(reply, index, what): element index of an array reply with more than index elements.
[[nodiscard]] const redisReply* element_of(const redisReply* reply, std::size_t index, std::string_view what);
// array_size(reply, what): the element count of an array reply.
[[nodiscard]] std::size_t array_size(const redisReply* reply, std::string_view what);
// bytes_of(reply, what): the bytes of a string reply.
[[nodiscard]] std::vector<std::byte> bytes_of(const redisReply* reply, std::string_view what);
// text_of(reply, what): a string or status reply as text; nil gives "".
[[nodiscard]] std::string text_of(const redisReply* reply, std::string_view what);

// parse_integer(text): the decimal integer text holds, exactly; nullopt otherwise.
[[nodiscard]] std::optional<long long> parse_integer(std::string_view text) noexcept;

}  // namespace mp::redis::impl
