// joinable_queue: daemon consumers call task_done() for each item; the producer
// calls join() and goes on once every item has been processed.
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "mp/mp.hpp"

namespace {

void worker(mp::JoinableQueue<std::string> jobs, mp::Queue<std::string> done) {
  for (;;) {  // a daemon: it runs until its parent ends
    std::string job = jobs.get();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));  // "work"
    done.put(job + " finished");
    jobs.task_done();
  }
}

}  // namespace

int main() {
  mp::JoinableQueue<std::string> jobs;
  mp::Queue<std::string> done;
  std::vector<mp::Process> workers;
  for (int i = 0; i < 2; ++i) {
    workers.emplace_back(worker, jobs, done);
    workers.back().set_daemon(true);
    workers.back().start();
  }
  for (int i = 0; i < 20; ++i) jobs.put("job " + std::to_string(i));
  jobs.join();  // every job was task_done()'d
  std::printf("join returned: %zu unfinished, %zu results waiting\n", jobs.unfinished_tasks(), done.qsize());
  try {
    jobs.task_done();
  } catch (const mp::ValueError&) {
    std::printf("one task_done() too many: ValueError\n");
  }
}
