// src/redis/admin.hpp — what mp-redis reads and changes on a server (private to libmp_redis).
//
// Admin reads the keys the queues keep (functions.cpp lists them) and runs the
// administrative functions (mp2_retry_dead, mp2_purge). No hiredis type
// appears here, so tools/mp-redis needs only this header.
//
// Errors: mp::ValueError for a malformed url or a queue that does not exist;
// mp::AuthenticationError for a refused login; mp::ConnectionError when the
// server cannot be reached within 3 s; mp::Error for anything else the server says.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace mp::redis::impl {

struct ConsumerInfo {
  std::string id;                   // host:pid:random
  bool alive = false;               // its lease is held
  long long heartbeat_age_ms = -1;  // since its lease was last renewed (-1: unknown)
  long long in_flight = 0;          // items it holds
};

struct QueueInfo {
  std::string name;
  std::string item_type;  // the codec signature the queue was created with
  long long maxsize = 0;
  long long max_deliveries = 0;
  bool shut_down = false;
  long long depth = 0;       // items waiting
  long long in_flight = 0;   // items held by consumers
  long long unfinished = 0;  // put and not yet acknowledged
  long long done = 0;        // acknowledged
  long long failed = 0;      // deliveries lost with a dead consumer (handed out again)
  long long dead = 0;        // dead letters now
  long long cancelled = 0;   // a Pool's tasks cancelled by their submitters (RemoteResult::cancel)
  std::vector<ConsumerInfo> consumers;
  [[nodiscard]] long long live_consumers() const;
  [[nodiscard]] long long last_heartbeat_age_ms() const;  // the freshest; -1 if none
};

class Admin {
 public:
  explicit Admin(std::string_view url);
  ~Admin();
  Admin(const Admin&) = delete;
  Admin& operator=(const Admin&) = delete;

  // Admin::queue_names(): every mp queue on the server (its db), sorted.
  std::vector<std::string> queue_names();
  // Admin::queue(name): what the queue holds now; ValueError if there is no such queue.
  QueueInfo queue(const std::string& name);
  // Admin::dead_letters(name): the dead letters' bytes, oldest first.
  std::vector<std::string> dead_letters(const std::string& name);
  // Admin::retry_dead(name): puts the dead letters back on the queue; how many.
  long long retry_dead(const std::string& name);
  // Admin::purge(name): removes the waiting items and dead letters (not held ones); how many.
  long long purge(const std::string& name);
  // Admin::url(): the url for messages (password hidden).
  [[nodiscard]] const std::string& url() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mp::redis::impl
