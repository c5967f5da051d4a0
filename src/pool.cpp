// src/pool.cpp — mp::Pool's public members; the work is PoolCore's
// (src/pool_core.hpp says which file does what).
#include "mp/pool.hpp"

#include <memory>
#include <string>
#include <utility>

#include "pool_core.hpp"

namespace mp {

// ---- mp::Pool ---------------------------------------------------------------------------------

Pool::Pool(int processes, PoolOptions options) {
  if (processes < 0) {
    throw ValueError("Pool(processes): processes must be at least 1 (or 0 for cpu_count()), not " +
                     std::to_string(processes));
  }
  if (processes == 0) processes = detail::pool_cpu_count();
  core_ = std::make_unique<detail::PoolCore>(processes, options);
}

Pool::Pool(Pool&& other) noexcept = default;

Pool::~Pool() {
  if (!core_) return;
  if (core_->foreign()) {
    // A forked copy of the owner's Pool: the supervisor thread and the
    // workers belong to the owner. Nothing here to close, join or free safely.
    (void)core_.release();
    return;
  }
  try {
    core_->close();
    core_->join();
  } catch (...) {
  }
}

namespace {
void check_usable(const char* method, const std::unique_ptr<detail::PoolCore>& core) {
  if (!core) throw ValueError(std::string(method) + ": this Pool was moved from");
  if (core->foreign()) {
    throw ValueError(std::string(method) +
                     ": this Pool belongs to the process that created it; a forked child cannot use it");
  }
}
}  // namespace

void Pool::check_running(const char* method) const {
  check_usable(method, core_);
  core_->check_running(method);
}

std::shared_ptr<detail::JobState> Pool::submit(const char* method, std::vector<detail::ChunkSpec> chunks) {
  check_usable(method, core_);
  std::vector<std::uint32_t> counts;
  counts.reserve(chunks.size());
  for (const auto& chunk : chunks) counts.push_back(chunk.item_count);
  auto job = std::make_shared<detail::JobState>(std::move(counts), core_->job_events());
  job->set_canceller(core_->canceller());
  if (!chunks.empty()) core_->submit(method, job, std::move(chunks));
  return job;
}

void Pool::close() {
  check_usable("Pool::close()", core_);
  core_->close();
}

void Pool::terminate() {
  check_usable("Pool::terminate()", core_);
  core_->terminate();
}

void Pool::join() {
  check_usable("Pool::join()", core_);
  core_->join();
}

int Pool::processes() const noexcept { return core_ ? core_->processes() : 0; }

}  // namespace mp
