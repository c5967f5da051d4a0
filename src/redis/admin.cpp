// src/redis/admin.cpp — Admin (see admin.hpp).
#include "admin.hpp"

#include <algorithm>
#include <chrono>

#include "link.hpp"
#include "mp/errors.hpp"
#include "queue_impl.hpp"
#include "retry.hpp"

namespace mp::redis::impl {

namespace {
constexpr auto kServerTimeout = std::chrono::seconds(3);
constexpr std::string_view kMetaPrefix = "mpq:{";
constexpr std::string_view kMetaSuffix = "}:meta";

long long now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
}  // namespace

long long QueueInfo::live_consumers() const {
  return std::count_if(consumers.begin(), consumers.end(), [](const ConsumerInfo& c) { return c.alive; });
}

long long QueueInfo::last_heartbeat_age_ms() const {
  long long best = -1;
  for (const auto& c : consumers) {
    if (c.alive && c.heartbeat_age_ms >= 0 && (best < 0 || c.heartbeat_age_ms < best))
      best = c.heartbeat_age_ms;
  }
  return best;
}

struct Admin::Impl {
  explicit Impl(std::string_view url) : endpoint(parse_url(url)), link(endpoint), described("mp-redis") {}

  template <class Attempt>
  auto run(const char* what, Attempt&& attempt) {
    Retry retry(endpoint, std::chrono::duration_cast<std::chrono::milliseconds>(kServerTimeout),
                Deadline::never(), what, described);
    return retry([&] { return attempt(retry); });
  }

  void require_queue(const std::string& name) {
    QueueKeys keys(name);
    long long exists = run("checking the queue", [&](Retry& retry) {
      return integer_of(link.run1(Command{"EXISTS", keys.meta}, retry.reply_deadline()).get(), "EXISTS");
    });
    if (exists == 0) {
      throw mp::ValueError("mp-redis: no queue named \"" + name + "\" on " + endpoint.url +
                           " (mp-redis stats lists them)");
    }
  }

  Endpoint endpoint;
  Link link;
  std::string described;
};

Admin::Admin(std::string_view url) : impl_(std::make_unique<Impl>(url)) {}
Admin::~Admin() = default;
const std::string& Admin::url() const noexcept { return impl_->endpoint.url; }

std::vector<std::string> Admin::queue_names() {
  std::vector<std::string> names;
  std::string cursor = "0";
  do {
    Reply reply = impl_->run("listing queues", [&](Retry& retry) {
      return impl_->link.run1(Command{"SCAN", cursor, "MATCH", "mpq:{*}:meta", "COUNT", "1000"},
                              retry.reply_deadline());
    });
    const std::string what = "SCAN";
    cursor = text_of(element_of(reply.get(), 0, what), what);
    const redisReply* keys = element_of(reply.get(), 1, what);
    for (std::size_t i = 0; i < array_size(keys, what); ++i) {
      std::string key = text_of(keys->element[i], what);
      if (key.size() < kMetaPrefix.size() + kMetaSuffix.size()) continue;
      names.push_back(key.substr(kMetaPrefix.size(), key.size() - kMetaPrefix.size() - kMetaSuffix.size()));
    }
  } while (cursor != "0");
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

QueueInfo Admin::queue(const std::string& name) {
  impl_->require_queue(name);
  QueueKeys keys(name);
  const std::string what = "reading queue \"" + name + "\"";
  QueueInfo info;
  info.name = name;
  auto replies = impl_->run("reading a queue", [&](Retry& retry) {
    return impl_->link.run(
        std::vector<Command>{
            Command{"HMGET", keys.meta, "signature", "maxsize", "max_deliveries", "shutdown"},
            Command{"LLEN", keys.items}, Command{"GET", keys.unfinished},
            Command{"HMGET", keys.prefix + "stats", "done", "failed", "cancelled"},
            Command{"LLEN", keys.prefix + "dead"}, Command{"SMEMBERS", keys.consumers}},
        retry.reply_deadline());
  });
  const redisReply* meta = replies[0].get();
  info.item_type = text_of(element_of(meta, 0, what), what);
  info.maxsize = integer_or(element_of(meta, 1, what), 0, what);
  info.max_deliveries = integer_or(element_of(meta, 2, what), 0, what);
  info.shut_down = !is_nil(element_of(meta, 3, what));
  info.depth = integer_of(replies[1].get(), what);
  info.unfinished = integer_or(replies[2].get(), 0, what);
  info.done = integer_or(element_of(replies[3].get(), 0, what), 0, what);
  info.failed = integer_or(element_of(replies[3].get(), 1, what), 0, what);
  info.cancelled = integer_or(element_of(replies[3].get(), 2, what), 0, what);
  info.dead = integer_of(replies[4].get(), what);
  const redisReply* members = replies[5].get();
  std::vector<Command> per_consumer;
  for (std::size_t i = 0; i < array_size(members, what); ++i) {
    ConsumerInfo consumer;
    consumer.id = text_of(members->element[i], what);
    per_consumer.push_back(Command{"GET", keys.heartbeat(consumer.id)});
    per_consumer.push_back(Command{"LLEN", keys.inflight(consumer.id)});
    info.consumers.push_back(std::move(consumer));
  }
  if (!per_consumer.empty()) {
    auto details = impl_->run("reading a queue's consumers", [&](Retry& retry) {
      return impl_->link.run(per_consumer, retry.reply_deadline());
    });
    long long now = now_ms();
    for (std::size_t i = 0; i < info.consumers.size(); ++i) {
      auto& consumer = info.consumers[i];
      const redisReply* heartbeat = details[2 * i].get();
      consumer.alive = !is_nil(heartbeat);
      if (consumer.alive) {
        auto renewed = parse_integer(text_of(heartbeat, what));
        if (renewed && *renewed > 1000000000000LL) consumer.heartbeat_age_ms = std::max(0LL, now - *renewed);
      }
      consumer.in_flight = integer_of(details[2 * i + 1].get(), what);
      info.in_flight += consumer.in_flight;
    }
  }
  std::sort(info.consumers.begin(), info.consumers.end(),
            [](const ConsumerInfo& a, const ConsumerInfo& b) { return a.id < b.id; });
  return info;
}

std::vector<std::string> Admin::dead_letters(const std::string& name) {
  impl_->require_queue(name);
  QueueKeys keys(name);
  Reply reply = impl_->run("reading dead letters", [&](Retry& retry) {
    return impl_->link.run1(Command{"LRANGE", keys.prefix + "dead", "0", "-1"}, retry.reply_deadline());
  });
  const std::string what = "reading the dead letters of queue \"" + name + "\"";
  std::vector<std::string> out;
  std::size_t n = array_size(reply.get(), what);
  for (std::size_t i = n; i-- > 0;) out.push_back(text_of(reply->element[i], what));  // oldest first
  return out;
}

long long Admin::retry_dead(const std::string& name) {
  impl_->require_queue(name);
  QueueKeys keys(name);
  Reply reply = impl_->run("retrying dead letters", [&](Retry& retry) {
    return impl_->link.run1(
        Command{"FCALL", "mp2_retry_dead", "3", keys.items, keys.prefix + "dead", keys.unfinished},
        retry.reply_deadline());
  });
  return integer_of(reply.get(), "retrying the dead letters of queue \"" + name + "\"");
}

long long Admin::purge(const std::string& name) {
  impl_->require_queue(name);
  QueueKeys keys(name);
  Reply reply = impl_->run("purging", [&](Retry& retry) {
    return impl_->link.run1(
        Command{"FCALL", "mp2_purge", "3", keys.items, keys.prefix + "dead", keys.unfinished, keys.joined},
        retry.reply_deadline());
  });
  return integer_of(reply.get(), "purging queue \"" + name + "\"");
}

}  // namespace mp::redis::impl
