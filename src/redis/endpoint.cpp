// src/redis/endpoint.cpp — url parsing (see endpoint.hpp).
#include "endpoint.hpp"

#include <charconv>

#include "mp/errors.hpp"

namespace mp::redis::impl {

namespace {

constexpr std::string_view kScheme = "redis://";

bool parse_int(std::string_view text, int& out) {
  if (text.empty()) return false;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc{} && ptr == text.data() + text.size();
}

[[noreturn]] void bad_url(std::string_view url, std::string_view why) {
  throw mp::ValueError("mp::redis: malformed url \"" + redact_url(url) + "\": " + std::string(why) +
                       " (expected redis://[[user]:password@]host:port[/db])");
}

// The user-info ends at the last '@': a password may hold a raw '@' (hosts and db numbers never do).
std::string_view::size_type userinfo_end(std::string_view rest) { return rest.rfind('@'); }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// percent_decode(text, out): false when a % is not followed by two hex digits.
bool percent_decode(std::string_view text, std::string& out) {
  out.clear();
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out.push_back(text[i]);
      continue;
    }
    if (i + 2 >= text.size()) return false;
    int high = hex_value(text[i + 1]);
    int low = hex_value(text[i + 2]);
    if (high < 0 || low < 0) return false;
    out.push_back(static_cast<char>(high * 16 + low));
    i += 2;
  }
  return true;
}

}  // namespace

std::string redact_url(std::string_view url) {
  if (url.substr(0, kScheme.size()) != kScheme) {
    // Not a redis url: still never print what may be a password.
    auto at = url.rfind('@');
    if (at == std::string_view::npos) return std::string(url);
    return "***@" + std::string(url.substr(at + 1));
  }
  std::string_view rest = url.substr(kScheme.size());
  auto at = userinfo_end(rest);
  if (at == std::string_view::npos) return std::string(url);
  std::string_view userinfo = rest.substr(0, at);
  auto colon = userinfo.find(':');
  if (colon == std::string_view::npos)
    return std::string(kScheme) + "***@" + std::string(rest.substr(at + 1));
  return std::string(kScheme) + std::string(userinfo.substr(0, colon)) + ":***@" +
         std::string(rest.substr(at + 1));
}

Endpoint parse_url(std::string_view url) {
  if (url.substr(0, kScheme.size()) != kScheme) bad_url(url, "it must start with redis://");
  std::string_view rest = url.substr(kScheme.size());
  Endpoint endpoint;
  endpoint.url = redact_url(url);
  if (auto at = userinfo_end(rest); at != std::string_view::npos) {
    std::string_view userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    auto colon = userinfo.find(':');
    if (colon == std::string_view::npos) {
      bad_url(url, "a user needs a password (redis://user:password@host:port)");
    }
    if (!percent_decode(userinfo.substr(0, colon), endpoint.user)) {
      bad_url(url, "a % in the user is not followed by two hex digits");
    }
    if (!percent_decode(userinfo.substr(colon + 1), endpoint.password)) {
      bad_url(url, "a % in the password is not followed by two hex digits");
    }
    if (endpoint.password.empty()) bad_url(url, "the password is empty");
  }
  std::string_view authority = rest;
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    authority = rest.substr(0, slash);
    std::string_view db = rest.substr(slash + 1);
    if (!db.empty() && (!parse_int(db, endpoint.db) || endpoint.db < 0)) {
      bad_url(url, "the database must be a number >= 0");
    }
  }
  std::string_view host = authority;
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {  // [ipv6]:port
    auto close = authority.find(']');
    if (close == std::string_view::npos) bad_url(url, "unclosed [ in the host");
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') bad_url(url, "expected :port after ]");
      port = after.substr(1);
      if (port.empty()) bad_url(url, "empty port");
    }
  } else if (auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
    if (port.empty()) bad_url(url, "empty port");
  }
  if (host.empty()) bad_url(url, "no host");
  if (host.find_first_of(" \t\r\n?#@") != std::string_view::npos)
    bad_url(url, "invalid character in the host");
  if (!port.empty() && (!parse_int(port, endpoint.port) || endpoint.port < 1 || endpoint.port > 65535)) {
    bad_url(url, "the port must be a number in 1..65535");
  }
  endpoint.host = std::string(host);
  return endpoint;
}

}  // namespace mp::redis::impl
