// src/pool_dispatcher.cpp — Dispatcher: which chunk goes to which worker.
#include "pool_dispatcher.hpp"

#include <algorithm>

namespace mp::detail {

Dispatcher::Dispatcher(int workers, std::size_t maxtasksperchild)
    : maxtasksperchild_(maxtasksperchild), workers_(static_cast<std::size_t>(workers)) {}

std::uint64_t Dispatcher::submit(QueuedChunk chunk) {
  chunk.task_id = next_task_id_++;
  const std::uint64_t id = chunk.task_id;
  pending_.push_back(std::move(chunk));
  return id;
}

void Dispatcher::open_worker(int worker) {
  WorkerQueue& queue = workers_[static_cast<std::size_t>(worker)];
  queue.open = true;
  queue.chunks_assigned = 0;
  queue.measured = false;
  queue.average_run_ns = 0;
}

void Dispatcher::close_worker(int worker) { workers_[static_cast<std::size_t>(worker)].open = false; }

std::size_t Dispatcher::room(const WorkerQueue& worker) const noexcept {
  if (!worker.open) return 0;
  std::size_t window = 2;
  if (worker.measured) {
    const double average = std::max(worker.average_run_ns, 1.0);
    window =
        static_cast<std::size_t>(std::clamp(kWindowBudgetNs / average, 1.0, static_cast<double>(kMaxWindow)));
  }
  if (maxtasksperchild_ != 0) {
    const std::size_t left =
        maxtasksperchild_ > worker.chunks_assigned ? maxtasksperchild_ - worker.chunks_assigned : 0;
    window = std::min(window, left);
  }
  return worker.in_flight.size() >= window ? 0 : window - worker.in_flight.size();
}

std::vector<Dispatcher::Assignment> Dispatcher::assign() {
  std::vector<Assignment> sent;
  while (!pending_.empty()) {
    int best = -1;
    for (std::size_t i = 0; i < workers_.size(); ++i) {
      if (room(workers_[i]) == 0) continue;
      if (best < 0 ||
          workers_[i].in_flight.size() < workers_[static_cast<std::size_t>(best)].in_flight.size())
        best = static_cast<int>(i);
    }
    if (best < 0) break;
    WorkerQueue& worker = workers_[static_cast<std::size_t>(best)];
    ++worker.chunks_assigned;
    worker.in_flight.push_back(std::move(pending_.front()));  // deque: references stay valid
    pending_.pop_front();
    sent.push_back({best, &worker.in_flight.back()});
  }
  return sent;
}

std::optional<QueuedChunk> Dispatcher::finished(int worker, std::uint64_t task_id, std::uint64_t run_ns) {
  WorkerQueue& queue = workers_[static_cast<std::size_t>(worker)];
  auto it = std::find_if(queue.in_flight.begin(), queue.in_flight.end(),
                         [&](const QueuedChunk& c) { return c.task_id == task_id; });
  if (it == queue.in_flight.end()) return std::nullopt;
  const double ns = static_cast<double>(run_ns);
  queue.average_run_ns = queue.measured ? 0.75 * queue.average_run_ns + 0.25 * ns : ns;
  queue.measured = true;
  QueuedChunk chunk = std::move(*it);
  queue.in_flight.erase(it);
  return chunk;
}

void Dispatcher::drop(int worker, std::uint64_t task_id) {
  std::erase_if(workers_[static_cast<std::size_t>(worker)].in_flight,
                [&](const QueuedChunk& c) { return c.task_id == task_id; });
}

std::optional<QueuedChunk> Dispatcher::worker_died(int worker, std::uint64_t started_task) {
  WorkerQueue& queue = workers_[static_cast<std::size_t>(worker)];
  queue.open = false;
  std::optional<QueuedChunk> running;
  std::deque<QueuedChunk> unstarted;
  for (auto& chunk : queue.in_flight) {
    if (started_task != 0 && chunk.task_id == started_task) {
      running = std::move(chunk);
    } else if (!chunk.job->cancelled()) {
      unstarted.push_back(std::move(chunk));
    }
  }
  queue.in_flight.clear();
  for (auto it = unstarted.rbegin(); it != unstarted.rend(); ++it) pending_.push_front(std::move(*it));
  return running;
}

std::vector<Dispatcher::InFlight> Dispatcher::cancel(const JobState* job) {
  std::erase_if(pending_, [&](const QueuedChunk& c) { return c.job.get() == job; });
  std::vector<InFlight> running;
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    for (const auto& chunk : workers_[i].in_flight) {
      if (chunk.job.get() == job) running.push_back({static_cast<int>(i), chunk.task_id});
    }
  }
  return running;
}

std::vector<QueuedChunk> Dispatcher::take_all() {
  std::vector<QueuedChunk> all;
  for (auto& chunk : pending_) all.push_back(std::move(chunk));
  pending_.clear();
  for (auto& worker : workers_) {
    for (auto& chunk : worker.in_flight) all.push_back(std::move(chunk));
    worker.in_flight.clear();
  }
  return all;
}

bool Dispatcher::idle() const noexcept {
  return pending_.empty() && std::all_of(workers_.begin(), workers_.end(),
                                         [](const WorkerQueue& w) { return w.in_flight.empty(); });
}

std::size_t Dispatcher::in_flight(int worker) const noexcept {
  return workers_[static_cast<std::size_t>(worker)].in_flight.size();
}

const QueuedChunk* Dispatcher::find_in_flight(int worker, std::uint64_t task_id) const noexcept {
  for (const auto& chunk : workers_[static_cast<std::size_t>(worker)].in_flight)
    if (chunk.task_id == task_id) return &chunk;
  return nullptr;
}

}  // namespace mp::detail
