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
#include "redis_pipeline.hpp"
#include "redis_url.hpp"

int main(int argc, char** argv) try {
  std::string url = server_url(argc > 1 ? argv[1] : nullptr);
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
