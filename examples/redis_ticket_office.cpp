// redis_ticket_office — the seeds' ticket office, with sellers that could sit
// on different machines: an mp::redis::Lock guards the ledger.
//
// The office writes a ledger (20 tickets) and starts 3 sellers as separate
// programs (this executable with "seller" as its first argument). Each seller
// takes the lock, reads the ledger, sells one ticket, writes it back, and
// releases, until none are left. The ledger also keeps the fencing token of its
// last writer and refuses a smaller one, as a resource protected by a
// lease-based lock should. At the end the office checks that every ticket was
// sold exactly once.
//
//   redis_ticket_office [redis://host:port | port]     (default: $MP_REDIS_URL)
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "mp/redis.hpp"
#include "redis_url.hpp"

extern char** environ;

namespace {

constexpr int kTickets = 20;
constexpr int kSellers = 3;

struct Ledger {
  int remaining = 0;
  unsigned long long last_token = 0;
};

Ledger read_ledger(const std::string& path) {
  Ledger ledger;
  std::ifstream in(path);
  in >> ledger.remaining >> ledger.last_token;
  return ledger;
}

// The protected resource: refuses a writer whose fencing token is older than the last one.
bool write_ledger(const std::string& path, const Ledger& ledger, unsigned long long token) {
  if (token <= read_ledger(path).last_token) return false;
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << ledger.remaining << ' ' << token << '\n';
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

int seller(const std::string& url, const std::string& id, const std::string& dir) {
  mp::redis::Lock lock(url, "ticket-office", std::chrono::seconds(5));
  int sold = 0;
  for (;;) {
    std::lock_guard hold(lock);
    Ledger ledger = read_ledger(dir + "/ledger");
    if (ledger.remaining == 0) break;
    int ticket = kTickets - ledger.remaining + 1;
    ledger.remaining -= 1;
    if (!write_ledger(dir + "/ledger", ledger, lock.fencing_token())) {
      std::fprintf(stderr, "seller %s: the ledger refused a stale fencing token\n", id.c_str());
      return 1;
    }
    std::ofstream(dir + "/sales", std::ios::app) << ticket << ' ' << id << '\n';
    ++sold;
  }
  std::printf("seller %s sold %d tickets\n", id.c_str(), sold);
  return 0;
}

}  // namespace

int main(int argc, char** argv) try {
  if (argc > 1 && std::string(argv[1]) == "seller") return seller(argv[2], argv[3], argv[4]);

  std::string url = server_url(argc > 1 ? argv[1] : nullptr);
  char pattern[] = "/tmp/mp-ticket-office-XXXXXX";
  if (::mkdtemp(pattern) == nullptr) throw std::runtime_error("mkdtemp failed");
  std::string dir = pattern;
  { std::ofstream(dir + "/ledger") << kTickets << " 0\n"; }

  std::vector<pid_t> sellers;
  for (int s = 0; s < kSellers; ++s) {
    std::string id = std::to_string(s + 1);
    std::vector<std::string> args = {argv[0], "seller", url, id, dir};
    std::vector<char*> cargs;
    for (auto& a : args) cargs.push_back(a.data());
    cargs.push_back(nullptr);
    pid_t pid = 0;
    if (::posix_spawn(&pid, argv[0], nullptr, nullptr, cargs.data(), environ) != 0) {
      throw std::runtime_error("posix_spawn of a seller failed");
    }
    sellers.push_back(pid);
  }
  bool ok = true;
  for (pid_t pid : sellers) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    ok = ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }
  std::set<int> tickets;
  int sales = 0;
  {
    std::ifstream in(dir + "/sales");
    int ticket = 0;
    std::string who;
    while (in >> ticket >> who) {
      tickets.insert(ticket);
      ++sales;
    }
  }
  Ledger final_ledger = read_ledger(dir + "/ledger");
  std::remove((dir + "/sales").c_str());
  std::remove((dir + "/ledger").c_str());
  ::rmdir(dir.c_str());
  ok = ok && sales == kTickets && static_cast<int>(tickets.size()) == kTickets && final_ledger.remaining == 0;
  std::printf("ticket office: %d tickets sold by %d sellers, %s; last fencing token %llu\n", sales, kSellers,
              ok ? "none sold twice" : "MISCOUNTED", final_ledger.last_token);
  return ok ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "ticket office: %s\n", e.what());
  return 1;
}
