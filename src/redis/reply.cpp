// src/redis/reply.cpp — checked reply access (see reply.hpp).
#include "reply.hpp"

#include <charconv>

#include "mp/errors.hpp"

namespace mp::redis::impl {

bool is_error(const redisReply* reply) noexcept {
  return reply != nullptr && reply->type == REDIS_REPLY_ERROR;
}
bool is_nil(const redisReply* reply) noexcept { return reply != nullptr && reply->type == REDIS_REPLY_NIL; }
bool is_string(const redisReply* reply) noexcept {
  return reply != nullptr && reply->type == REDIS_REPLY_STRING;
}

std::string reply_text(const redisReply* reply) {
  if (reply == nullptr) return {};
  switch (reply->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR: return std::string(reply->str, reply->len);
    case REDIS_REPLY_INTEGER: return std::to_string(reply->integer);
    default: return {};
  }
}

std::string describe_reply(const redisReply* reply) {
  if (reply == nullptr) return "no reply";
  auto quoted = [&] {
    std::string text = reply_text(reply);
    if (text.size() > 60) text = text.substr(0, 60) + "...";
    return "\"" + text + "\"";
  };
  switch (reply->type) {
    case REDIS_REPLY_STRING: return "a string " + quoted();
    case REDIS_REPLY_STATUS: return "a status " + quoted();
    case REDIS_REPLY_ERROR: return "an error " + quoted();
    case REDIS_REPLY_INTEGER: return "the integer " + std::to_string(reply->integer);
    case REDIS_REPLY_NIL: return "nil";
    case REDIS_REPLY_ARRAY: return "an array of " + std::to_string(reply->elements);
    default: return "a reply of type " + std::to_string(reply->type);
  }
}

void throw_if_error(const redisReply* reply, std::string_view what) {
  if (reply == nullptr) throw mp::Error(std::string(what) + ": no reply from the server");
  if (!is_error(reply)) return;
  std::string text = reply_text(reply);
  if (text.rfind("WRONGTYPE", 0) == 0) {
    throw mp::ValueError(std::string(what) + ": a key of this name holds another kind of Redis value (" +
                         text + "); pick another name or delete the key");
  }
  if (text.rfind("NOPERM", 0) == 0) {
    throw mp::Error(std::string(what) + ": the server's ACL refuses this user the command (" + text +
                    "); README \"Redis\" lists the commands mp needs");
  }
  throw mp::Error(std::string(what) + ": the server answered: " + text);
}

void unexpected_reply(std::string_view what, std::string_view expected, const redisReply* reply) {
  throw mp::Error(std::string(what) + ": unexpected reply from the server: expected " +
                  std::string(expected) + ", got " + describe_reply(reply) +
                  " (another program using mp's keys, or a server mp does not "
                  "support?)");
}

std::optional<long long> parse_integer(std::string_view text) noexcept {
  long long value = 0;
  if (text.empty()) return std::nullopt;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || ptr != text.data() + text.size()) return std::nullopt;
  return value;
}

long long integer_of(const redisReply* reply, std::string_view what) {
  throw_if_error(reply, what);
  if (reply->type == REDIS_REPLY_INTEGER) return reply->integer;
  if (reply->type == REDIS_REPLY_STRING) {
    if (auto value = parse_integer(std::string_view(reply->str, reply->len))) return *value;
  }
  unexpected_reply(what, "an integer", reply);
}

long long integer_or(const redisReply* reply, long long fallback, std::string_view what) {
  if (is_nil(reply)) return fallback;
  return integer_of(reply, what);
}

std::size_t array_size(const redisReply* reply, std::string_view what) {
  throw_if_error(reply, what);
  if (reply->type != REDIS_REPLY_ARRAY) unexpected_reply(what, "an array", reply);
  return reply->elements;
}

const redisReply* element_of(const redisReply* reply, std::size_t index, std::string_view what) {
  if (array_size(reply, what) <= index) {
    unexpected_reply(what, "an array of at least " + std::to_string(index + 1), reply);
  }
  return reply->element[index];
}

std::vector<std::byte> bytes_of(const redisReply* reply, std::string_view what) {
  throw_if_error(reply, what);
  if (reply->type != REDIS_REPLY_STRING) unexpected_reply(what, "a string", reply);
  auto* begin = reinterpret_cast<const std::byte*>(reply->str);
  return {begin, begin + reply->len};
}

std::string text_of(const redisReply* reply, std::string_view what) {
  throw_if_error(reply, what);
  if (reply->type == REDIS_REPLY_NIL) return {};
  if (reply->type != REDIS_REPLY_STRING && reply->type != REDIS_REPLY_STATUS) {
    unexpected_reply(what, "a string", reply);
  }
  return std::string(reply->str, reply->len);
}

}  // namespace mp::redis::impl
