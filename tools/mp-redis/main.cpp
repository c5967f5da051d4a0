// tools/mp-redis/main.cpp — mp-redis: show and manage what mp keeps on a Redis server.
//
//   mp-redis [--json] stats URL          every queue: depth, in flight, live consumers and their
//                                        last heartbeat, done, failed, dead letters, cancelled
//   mp-redis [--json] dead URL NAME      the dead letters of queue NAME
//   mp-redis [--json] retry URL NAME     dead letters back to the queue
//   mp-redis [--json] purge URL NAME     remove the waiting items and dead letters of NAME
//
// Exit codes: 0 done; 1 the server or the queue said no (unreachable, refused
// login, no such queue, ...); 2 usage (unknown command, missing argument,
// malformed url). Errors go to stderr, one line, never with the password.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include "admin.hpp"
#include "mp/errors.hpp"

namespace {

using mp::redis::impl::Admin;
using mp::redis::impl::QueueInfo;

constexpr const char* kUsage =
    "usage: mp-redis [--json] COMMAND URL [NAME]\n"
    "  stats URL         every mp queue on the server: depth, in flight, live consumers,\n"
    "                    last heartbeat, done, failed (deliveries lost with a dead consumer), dead letters,\n"
    "                    cancelled (a Pool's tasks stopped by AsyncResult::cancel)\n"
    "  dead URL NAME     list the dead letters of queue NAME\n"
    "  retry URL NAME    put the dead letters of NAME back on the queue\n"
    "  purge URL NAME    remove the waiting items and the dead letters of NAME\n"
    "URL is redis://[[user]:password@]host:port[/db]. --json prints JSON for scripts.\n"
    "Exit codes: 0 done, 1 the server or queue refused, 2 usage.\n";

struct Usage {
  std::string message;
};

std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20 || c >= 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  return out + "\"";
}

std::string hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

// printable(bytes): the bytes as text, non-printable ones as \xNN, at most 48 shown.
std::string printable(std::string_view bytes) {
  std::string out;
  std::size_t shown = 0;
  for (unsigned char c : bytes) {
    if (shown++ == 48) return out + "...";
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

std::string age(long long ms) {
  if (ms < 0) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s ago", static_cast<double>(ms) / 1000.0);
  return buf;
}

int stats(Admin& admin, bool json) {
  std::vector<QueueInfo> queues;
  for (const auto& name : admin.queue_names()) queues.push_back(admin.queue(name));
  if (json) {
    std::printf("{\"url\":%s,\"queues\":[", json_string(admin.url()).c_str());
    for (std::size_t q = 0; q < queues.size(); ++q) {
      const auto& i = queues[q];
      std::printf(
          "%s{\"name\":%s,\"item_type\":%s,\"maxsize\":%lld,\"max_deliveries\":%lld,\"shut_down\":%s,"
          "\"depth\":%lld,\"in_flight\":%lld,\"unfinished\":%lld,\"done\":%lld,\"failed\":%lld,\"dead\":%lld,"
          "\"cancelled\":%lld,\"live_consumers\":%lld,\"last_heartbeat_ms_ago\":%lld,\"consumers\":[",
          q == 0 ? "" : ",", json_string(i.name).c_str(), json_string(i.item_type).c_str(), i.maxsize,
          i.max_deliveries, i.shut_down ? "true" : "false", i.depth, i.in_flight, i.unfinished, i.done,
          i.failed, i.dead, i.cancelled, i.live_consumers(), i.last_heartbeat_age_ms());
      for (std::size_t c = 0; c < i.consumers.size(); ++c) {
        const auto& consumer = i.consumers[c];
        std::printf("%s{\"id\":%s,\"alive\":%s,\"heartbeat_ms_ago\":%lld,\"in_flight\":%lld}",
                    c == 0 ? "" : ",", json_string(consumer.id).c_str(), consumer.alive ? "true" : "false",
                    consumer.heartbeat_age_ms, consumer.in_flight);
      }
      std::printf("]}");
    }
    std::printf("]}\n");
    return 0;
  }
  if (queues.empty()) {
    std::printf("no mp queues on %s\n", admin.url().c_str());
    return 0;
  }
  std::printf("%-24s %8s %9s %9s %-15s %10s %8s %6s %9s\n", "queue", "depth", "in flight", "consumers",
              "last heartbeat", "done", "failed", "dead", "cancelled");
  for (const auto& i : queues) {
    std::string name = i.name + (i.shut_down ? " (shut down)" : "");
    std::printf("%-24s %8lld %9lld %9lld %-15s %10lld %8lld %6lld %9lld\n", name.c_str(), i.depth,
                i.in_flight, i.live_consumers(), age(i.last_heartbeat_age_ms()).c_str(), i.done, i.failed,
                i.dead, i.cancelled);
  }
  return 0;
}

int dead(Admin& admin, const std::string& name, bool json) {
  auto letters = admin.dead_letters(name);
  if (json) {
    std::printf("{\"queue\":%s,\"dead\":[", json_string(name).c_str());
    for (std::size_t i = 0; i < letters.size(); ++i) {
      std::printf("%s{\"index\":%zu,\"size\":%zu,\"hex\":\"%s\"}", i == 0 ? "" : ",", i, letters[i].size(),
                  hex(letters[i]).c_str());
    }
    std::printf("]}\n");
    return 0;
  }
  std::printf("%zu dead letter%s in queue \"%s\"%s\n", letters.size(), letters.size() == 1 ? "" : "s",
              name.c_str(), letters.empty() ? "" : " (oldest first; bytes as the codec wrote them):");
  for (std::size_t i = 0; i < letters.size(); ++i) {
    std::printf("  #%zu  %zu bytes  %s\n", i, letters[i].size(), printable(letters[i]).c_str());
  }
  return 0;
}

int run(const std::vector<std::string>& args) {
  bool json = false;
  std::vector<std::string> words;
  for (const auto& a : args) {
    if (a == "--json") {
      json = true;
    } else if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a.size() > 1 && a[0] == '-' && a[1] == '-') {
      throw Usage{"unknown option " + a};
    } else {
      words.push_back(a);
    }
  }
  if (words.empty()) throw Usage{"no command"};
  const std::string& command = words[0];
  const bool named = command == "dead" || command == "retry" || command == "purge";
  if (command != "stats" && !named) throw Usage{"unknown command \"" + command + "\""};
  const std::size_t wanted = named ? 3 : 2;
  if (words.size() < wanted) throw Usage{command + ": missing " + (words.size() < 2 ? "URL" : "NAME")};
  if (words.size() > wanted) throw Usage{command + ": unexpected argument \"" + words[wanted] + "\""};
  Admin admin(words[1]);
  if (command == "stats") return stats(admin, json);
  const std::string& name = words[2];
  if (command == "dead") return dead(admin, name, json);
  if (command == "retry") {
    long long n = admin.retry_dead(name);
    if (json) {
      std::printf("{\"queue\":%s,\"retried\":%lld}\n", json_string(name).c_str(), n);
    } else {
      std::printf("put %lld dead letter%s back on queue \"%s\"\n", n, n == 1 ? "" : "s", name.c_str());
    }
    return 0;
  }
  long long n = admin.purge(name);
  if (json) {
    std::printf("{\"queue\":%s,\"purged\":%lld}\n", json_string(name).c_str(), n);
  } else {
    std::printf("removed %lld item%s (waiting and dead) from queue \"%s\"\n", n, n == 1 ? "" : "s",
                name.c_str());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    return run(args);
  } catch (const Usage& usage) {
    std::fprintf(stderr, "mp-redis: %s\n%s", usage.message.c_str(), kUsage);
    return 2;
  } catch (const mp::ValueError& e) {
    // A malformed url is usage; a missing queue is the server's answer.
    std::fprintf(stderr, "%s\n", e.what());
    return std::strstr(e.what(), "malformed url") != nullptr ? 2 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mp-redis: %s\n", e.what());
    return 1;
  }
}
