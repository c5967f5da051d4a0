// Dispatcher (src/pool_dispatcher.hpp): the Pool's assignment of chunks to
// workers as plain logic, without processes: windows, fewest-in-flight-first,
// maxtasksperchild, what a dead worker's chunks become, cancel.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "../../src/pool_dispatcher.hpp"

namespace {

using mp::detail::Dispatcher;
using mp::detail::JobState;
using mp::detail::QueuedChunk;

std::shared_ptr<JobState> job_of(std::size_t chunks) {
  return std::make_shared<JobState>(std::vector<std::uint32_t>(chunks, 1));
}

void submit(Dispatcher& dispatcher, const std::shared_ptr<JobState>& job) {
  for (std::uint32_t i = 0; i < job->chunk_count(); ++i) {
    QueuedChunk chunk;
    chunk.job = job;
    chunk.chunk_index = i;
    chunk.item_count = 1;
    (void)dispatcher.submit(std::move(chunk));
  }
}

TEST(PoolDispatcher, NothingGoesToAClosedWorker) {
  Dispatcher dispatcher(2, 0);
  submit(dispatcher, job_of(3));
  EXPECT_TRUE(dispatcher.assign().empty());
  EXPECT_TRUE(dispatcher.has_pending());
  EXPECT_FALSE(dispatcher.idle());
}

TEST(PoolDispatcher, FewestInFlightFirstWithAWindowOfTwoBeforeMeasuring) {
  Dispatcher dispatcher(2, 0);
  dispatcher.open_worker(0);
  dispatcher.open_worker(1);
  submit(dispatcher, job_of(5));
  const auto sent = dispatcher.assign();
  ASSERT_EQ(sent.size(), 4u);  // 2 + 2: the unmeasured window
  EXPECT_EQ(sent[0].worker, 0);
  EXPECT_EQ(sent[1].worker, 1);
  EXPECT_EQ(sent[2].worker, 0);
  EXPECT_EQ(sent[3].worker, 1);
  EXPECT_EQ(sent[0].chunk->chunk_index, 0u);
  EXPECT_EQ(sent[3].chunk->chunk_index, 3u);
  EXPECT_TRUE(dispatcher.has_pending());
  // A result frees room: the last chunk goes to that worker.
  const auto done = dispatcher.finished(1, sent[1].chunk->task_id, 1'000);  // short: a wide window
  ASSERT_TRUE(done.has_value());
  EXPECT_EQ(done->chunk_index, 1u);
  const auto more = dispatcher.assign();
  ASSERT_EQ(more.size(), 1u);
  EXPECT_EQ(more[0].worker, 1);
  EXPECT_FALSE(dispatcher.has_pending());
}

TEST(PoolDispatcher, ShortTasksWidenTheWindowLongOnesNarrowIt) {
  Dispatcher dispatcher(1, 0);
  dispatcher.open_worker(0);
  submit(dispatcher, job_of(200));
  auto sent = dispatcher.assign();
  ASSERT_EQ(sent.size(), 2u);
  (void)dispatcher.finished(0, sent[0].chunk->task_id, 1'000);  // 1 us: window of kMaxWindow
  EXPECT_EQ(dispatcher.assign().size(), Dispatcher::kMaxWindow - 1);
  Dispatcher slow(1, 0);
  slow.open_worker(0);
  submit(slow, job_of(10));
  sent = slow.assign();
  (void)slow.finished(0, sent[0].chunk->task_id, 1'000'000'000);  // 1 s: window of 1
  EXPECT_TRUE(slow.assign().empty());                             // one still in flight
}

TEST(PoolDispatcher, MaxtasksperchildBoundsWhatOneWorkerIsSent) {
  Dispatcher dispatcher(1, 3);
  dispatcher.open_worker(0);
  submit(dispatcher, job_of(10));
  std::size_t sent = 0;
  for (int round = 0; round < 5; ++round) {
    for (const auto& a : dispatcher.assign()) {
      ++sent;
      (void)dispatcher.finished(0, a.chunk->task_id, 1'000);
    }
  }
  EXPECT_EQ(sent, 3u);
  dispatcher.open_worker(0);  // its replacement
  EXPECT_FALSE(dispatcher.assign().empty());
}

TEST(PoolDispatcher, ADeadWorkersRunningChunkIsReturnedAndTheRestRequeuedInOrder) {
  Dispatcher dispatcher(2, 0);
  dispatcher.open_worker(0);
  submit(dispatcher, job_of(3));
  const auto sent = dispatcher.assign();  // chunks 0 and 1 to worker 0
  ASSERT_EQ(sent.size(), 2u);
  const std::uint64_t running = sent[0].chunk->task_id;
  const auto lost = dispatcher.worker_died(0, running);
  ASSERT_TRUE(lost.has_value());
  EXPECT_EQ(lost->chunk_index, 0u);
  EXPECT_EQ(dispatcher.in_flight(0), 0u);
  EXPECT_TRUE(dispatcher.assign().empty());  // closed by its death
  dispatcher.open_worker(1);
  const auto again = dispatcher.assign();
  ASSERT_EQ(again.size(), 2u);
  EXPECT_EQ(again[0].chunk->chunk_index, 1u);  // chunk 1 first: it goes back to the front
  EXPECT_EQ(again[1].chunk->chunk_index, 2u);
  // A death before any task started (slot 0) loses nothing.
  EXPECT_FALSE(dispatcher.worker_died(1, 0).has_value());
  EXPECT_EQ(dispatcher.take_all().size(), 2u);
  EXPECT_TRUE(dispatcher.idle());
}

TEST(PoolDispatcher, CancelDropsPendingChunksAndListsThoseInFlight) {
  Dispatcher dispatcher(1, 0);
  dispatcher.open_worker(0);
  auto cancelled = job_of(4);
  auto kept = job_of(1);
  submit(dispatcher, cancelled);
  submit(dispatcher, kept);
  const auto sent = dispatcher.assign();  // two chunks of `cancelled`
  ASSERT_EQ(sent.size(), 2u);
  const auto running = dispatcher.cancel(cancelled.get());
  ASSERT_EQ(running.size(), 2u);
  EXPECT_EQ(running[0].worker, 0);
  EXPECT_EQ(running[0].task_id, sent[0].chunk->task_id);
  (void)dispatcher.finished(0, sent[0].chunk->task_id, 1'000);
  (void)dispatcher.finished(0, sent[1].chunk->task_id, 1'000);
  const auto next = dispatcher.assign();
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].chunk->job.get(), kept.get());
}

}  // namespace
