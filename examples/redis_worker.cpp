// redis_worker — the other end of the pipeline across machines (see redis_producer).
//
// Takes jobs from the JoinableQueue "pipeline-jobs", counts their letters,
// puts a Result on "pipeline-results", and marks each job task_done(). Ends
// when the producer shuts the job queue down. A worker killed mid-job loses
// nothing: its lease runs out and the job is handed to another worker.
//
//   redis_worker [redis://host:port | port]      (default: $MP_REDIS_URL)
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "mp/redis.hpp"

struct Job {
  std::int32_t id = 0;
  std::string text;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(id, text);
  }
};

struct Result {
  std::int32_t id = 0;
  std::int64_t letters = 0;
  std::int32_t worker_pid = 0;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(id, letters, worker_pid);
  }
};

static std::string server_url(int argc, char** argv) {
  std::string arg = argc > 1 ? argv[1] : "";
  if (arg.empty()) {
    if (const char* env = std::getenv("MP_REDIS_URL")) return env;
    if (const char* port = std::getenv("MP_REDIS_PORT")) return std::string("redis://127.0.0.1:") + port;
    return "redis://127.0.0.1:6379";
  }
  if (arg.rfind("redis://", 0) == 0) return arg;
  return "redis://127.0.0.1:" + arg;  // a bare port
}

int main(int argc, char** argv) try {
  std::string url = server_url(argc, argv);
  mp::redis::JoinableQueue<Job> jobs(url, "pipeline-jobs");
  mp::redis::Queue<Result> results(url, "pipeline-results");
  int processed = 0;
  for (;;) {
    Job job;
    try {
      job = jobs.get();
    } catch (const mp::ShutDown&) {
      break;  // the producer is done
    }
    auto letters = static_cast<std::int64_t>(job.text.size());  // the "work"
    results.put(Result{job.id, letters, static_cast<std::int32_t>(::getpid())});
    jobs.task_done();
    ++processed;
  }
  std::printf("worker %d: processed %d jobs\n", static_cast<int>(::getpid()), processed);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "worker: %s\n", e.what());
  return 1;
}
