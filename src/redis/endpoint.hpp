// src/redis/endpoint.hpp — where a Redis server is and how to log in (private to libmp_redis).
//
// parse_url("redis://[[user]:password@]host[:port][/db]") gives an Endpoint.
// The user and password are percent-decoded; the password lives only in
// Endpoint::password, which is sent with AUTH and never printed: every message
// names the server by Endpoint::url, which shows the password as "***".
#pragma once

#include <string>
#include <string_view>

namespace mp::redis::impl {

struct Endpoint {
  std::string url;  // for messages: the url as given, password shown as ***
  std::string host;
  int port = 6379;
  int db = 0;
  std::string user;      // "" with a password alone: requirepass / the default user
  std::string password;  // "" : no AUTH
  [[nodiscard]] bool has_credentials() const noexcept { return !password.empty() || !user.empty(); }
  // Endpoint::where(): "redis://... (host:port)" for messages.
  [[nodiscard]] std::string where() const { return url + " (" + host + ":" + std::to_string(port) + ")"; }
};

// parse_url(url): the endpoint, or mp::ValueError naming the url (password hidden) and what is wrong.
Endpoint parse_url(std::string_view url);

// redact_url(url): url with the password of its user-info replaced by *** (unchanged if none).
std::string redact_url(std::string_view url);

}  // namespace mp::redis::impl
