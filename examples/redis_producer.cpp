// redis_producer — one end of a pipeline across machines (with redis_worker).
//
// Puts N jobs into the JoinableQueue "pipeline-jobs" on a Redis server, waits
// (join) until workers anywhere have done every one of them, collects their
// results from the Queue "pipeline-results", checks them, and shuts the job
// queue down so the workers end.
//
//   redis_producer [redis://host:port | port] [jobs]      (default: $MP_REDIS_URL, 40 jobs)
//   redis_worker   [redis://host:port | port]             (start as many as you like, anywhere)
//
// Run it on one machine with `bash examples/redis_pipeline.demo build/release`.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <set>
#include <string>

#include "mp/redis.hpp"
#include "redis_pipeline.hpp"
#include "redis_url.hpp"

int main(int argc, char** argv) try {
  std::string url = server_url(argc > 1 ? argv[1] : nullptr);
  int count = argc > 2 ? std::atoi(argv[2]) : 40;
  mp::redis::JoinableQueue<Job> jobs(url, "pipeline-jobs");
  mp::redis::Queue<Result> results(url, "pipeline-results");

  std::int64_t expected_letters = 0;
  for (int i = 0; i < count; ++i) {
    Job job{i, "job number " + std::to_string(i) + std::string(static_cast<std::size_t>(i % 7), '!')};
    expected_letters += static_cast<std::int64_t>(job.text.size());
    jobs.put(job);
  }
  std::printf("producer: put %d jobs on %s\n", count, url.c_str());
  jobs.join();  // every job task_done() by some worker, re-deliveries included
  std::printf("producer: all %d jobs done\n", count);

  std::set<std::int32_t> ids;
  std::set<std::int32_t> workers;
  std::int64_t letters = 0;
  while (static_cast<int>(ids.size()) < count) {
    Result r = results.get(std::chrono::seconds(30));
    if (ids.insert(r.id).second) letters += r.letters;  // at-least-once: ignore a repeated result
    workers.insert(r.worker_pid);
  }
  jobs.shutdown();  // the workers drain what is left and end
  bool ok = letters == expected_letters;
  std::printf("producer: %zu results from %zu workers, %lld letters (%s)\n", ids.size(), workers.size(),
              static_cast<long long>(letters), ok ? "results check out" : "WRONG");
  return ok ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "producer: %s\n", e.what());
  return 1;
}
