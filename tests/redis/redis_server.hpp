// tests/redis/redis_server.hpp — a throwaway redis-server for one test.
//
// Each RedisServer runs its own `redis-server` on 127.0.0.1 with a free port,
// an AOF with appendfsync always, and a fresh temporary directory (absolute
// path: redis chdirs into --dir before opening its log). It is ready once it
// answers a literal +PONG (a server still loading its AOF answers -LOADING).
// The destructor stops it by pid, reaps it, and removes the directory.
// extra_args are appended to the command line (e.g. {"--requirepass", "pw"});
// admin_auth, when set, is what command() and the readiness check send with AUTH
// ({password} or {user, password}).
//
// Fork hygiene: the code between fork() and execv() in start() only calls
// async-signal-safe functions (prctl, getppid, open, dup2, close, execv,
// _exit); argv is built before the fork.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace mp::test {

inline int free_tcp_port() {
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(s);
  return ntohs(addr.sin_port);
}

struct RedisReplyFree {
  void operator()(redisReply* r) const noexcept { freeReplyObject(r); }
};
using RedisReplyPtr = std::unique_ptr<redisReply, RedisReplyFree>;

class RedisServer {
 public:
  // RedisServer(): started and answering PONG; std::runtime_error otherwise.
  explicit RedisServer(std::vector<std::string> extra_args = {}, std::vector<std::string> admin_auth = {})
      : extra_args_(std::move(extra_args)), admin_auth_(std::move(admin_auth)) {
    char pattern[] = "/tmp/mp-redis-test-XXXXXX";
    if (::mkdtemp(pattern) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = pattern;
    for (int attempt = 0; attempt < 5; ++attempt) {
      port_ = free_tcp_port();
      if (start_process()) return;
    }
    throw std::runtime_error("redis-server did not start (see " + dir_ + "/redis.log)");
  }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;
  ~RedisServer() {
    stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  [[nodiscard]] int port() const { return port_; }
  [[nodiscard]] pid_t pid() const { return pid_; }
  [[nodiscard]] std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }
  [[nodiscard]] const std::string& dir() const { return dir_; }

  // RedisServer::kill9(): SIGKILL, as a crash; the data dir stays for restart().
  void kill9() { end(SIGKILL); }
  // RedisServer::stop(): SIGTERM (clean shutdown), then reap.
  void stop() { end(SIGTERM); }
  // RedisServer::freeze() / thaw(): SIGSTOP / SIGCONT: a server that accepts
  // connections (the kernel does) but never answers.
  void freeze() const { ::kill(pid_, SIGSTOP); }
  void thaw() const { ::kill(pid_, SIGCONT); }
  // RedisServer::restart(): the same port and dir (so the same AOF).
  void restart() {
    stop();
    if (!start_process())
      throw std::runtime_error("redis-server did not restart (see " + dir_ + "/redis.log)");
  }
  // RedisServer::start_again(): after kill9()/stop().
  void start_again() {
    if (!start_process())
      throw std::runtime_error("redis-server did not restart (see " + dir_ + "/redis.log)");
  }

  // RedisServer::command({...}): runs one command on a fresh connection (for inspection).
  RedisReplyPtr command(std::initializer_list<std::string> args) const {
    return command_argv(std::vector<std::string>(args));
  }
  RedisReplyPtr command_argv(const std::vector<std::string>& args) const {
    redisContext* c = redisConnect("127.0.0.1", port_);
    if (c == nullptr || c->err != 0) {
      if (c != nullptr) redisFree(c);
      throw std::runtime_error("cannot connect to the test server");
    }
    authenticate(c);
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    auto* reply = static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()));
    redisFree(c);
    return RedisReplyPtr(reply);
  }
  long long integer(std::initializer_list<std::string> args) const {
    auto r = command(args);
    if (!r) return -999;
    if (r->type == REDIS_REPLY_INTEGER) return r->integer;
    if (r->type == REDIS_REPLY_STRING) return std::stoll(std::string(r->str, r->len));
    return -999;
  }

 private:
  bool start_process() {
    std::vector<std::string> args = {"redis-server",
                                     "--port",
                                     std::to_string(port_),
                                     "--bind",
                                     "127.0.0.1",
                                     "--protected-mode",
                                     "yes",
                                     "--save",
                                     "",
                                     "--appendonly",
                                     "yes",
                                     "--appendfsync",
                                     "always",
                                     "--dir",
                                     dir_,
                                     "--logfile",
                                     dir_ + "/redis.log",
                                     "--daemonize",
                                     "no"};
    args.insert(args.end(), extra_args_.begin(), extra_args_.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const char* exe = "/usr/bin/redis-server";
    const pid_t parent = ::getpid();
    pid_t child = ::fork();
    if (child < 0) return false;
    if (child == 0) {
      // No server outlives the test process, even one SIGKILLed by ctest's
      // timeout: the kernel kills it when the thread that started it ends
      // (tests start servers from their main thread). Checking the parent
      // after arming closes the race with a parent that died first.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      int null_fd = ::open("/dev/null", O_RDWR);
      ::dup2(null_fd, 0);
      ::dup2(null_fd, 1);
      ::dup2(null_fd, 2);
      ::execv(exe, argv.data());
      ::_exit(127);
    }
    pid_ = child;
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < until) {
      if (ping()) return true;
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {  // died (port taken?)
        pid_ = -1;
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    end(SIGKILL);
    return false;
  }

  [[nodiscard]] bool ping() const {
    timeval tv{1, 0};
    redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, tv);
    bool ok = false;
    if (c != nullptr && c->err == 0) {
      authenticate(c);
      auto* r = static_cast<redisReply*>(redisCommand(c, "PING"));
      ok = r != nullptr && r->type == REDIS_REPLY_STATUS && std::string(r->str, r->len) == "PONG";
      if (r != nullptr) freeReplyObject(r);
    }
    if (c != nullptr) redisFree(c);
    return ok;
  }

  void authenticate(redisContext* c) const {
    if (admin_auth_.empty()) return;
    std::vector<const char*> argv{"AUTH"};
    std::vector<size_t> lens{4};
    for (const auto& a : admin_auth_) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    auto* r = static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()));
    if (r != nullptr) freeReplyObject(r);
  }

  void end(int sig) {
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    ::kill(pid_, SIGCONT);  // a frozen server must run to see the signal
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > until) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    pid_ = -1;
  }

  std::vector<std::string> extra_args_;
  std::vector<std::string> admin_auth_;
  std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace mp::test
