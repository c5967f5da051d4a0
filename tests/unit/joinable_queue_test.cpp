// mp::JoinableQueue: task_done() / join() as in Python, across processes.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "mp/queue.hpp"
#include "support/child.hpp"

namespace {

using namespace std::chrono_literals;
using mp::test::fork_child;
using mp::test::SharedArray;
using mp::test::wait_child;

TEST(JoinableQueue, TaskDoneTooOftenRaisesValueError) {
  mp::JoinableQueue<int> q;
  EXPECT_THROW(q.task_done(), mp::ValueError);
  q.put(1);
  EXPECT_EQ(q.unfinished_tasks(), 1u);
  EXPECT_EQ(q.get(), 1);
  EXPECT_EQ(q.unfinished_tasks(), 1u);  // a get does not finish the task
  q.task_done();
  EXPECT_EQ(q.unfinished_tasks(), 0u);
  try {
    q.task_done();
    FAIL() << "expected ValueError";
  } catch (const mp::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("more times than"), std::string::npos) << e.what();
  }
}

TEST(JoinableQueue, JoinReturnsAtOnceWhenNothingIsPending) {
  mp::JoinableQueue<int> q;
  q.join();
  EXPECT_TRUE(q.join(0s));
  q.put(1);
  EXPECT_FALSE(q.join(1ms));
  EXPECT_FALSE(q.join(-1s));
  (void)q.get();
  q.task_done();
  EXPECT_TRUE(q.join(0s));
}

TEST(JoinableQueue, JoinWaitsForConsumerProcessesToFinishEveryItem) {
  constexpr int kItems = 2000, kConsumers = 3;
  mp::JoinableQueue<int> q(50);
  SharedArray<std::atomic<int>> processed(1);
  std::vector<pid_t> consumers;
  for (int c = 0; c < kConsumers; ++c)
    consumers.push_back(fork_child([&]() mutable {
      for (;;) {
        int item = q.get();
        if (item < 0) {
          q.task_done();
          return 0;
        }
        processed[0].fetch_add(1);
        q.task_done();
      }
    }));
  for (int i = 0; i < kItems; ++i) q.put(i);
  q.join();
  EXPECT_EQ(processed[0].load(), kItems);  // join returned only after every task_done
  for (int c = 0; c < kConsumers; ++c) q.put(-1);
  q.join();
  for (pid_t pid : consumers) EXPECT_EQ(wait_child(pid), 0);
  EXPECT_EQ(q.unfinished_tasks(), 0u);
  EXPECT_THROW(q.task_done(), mp::ValueError);
}

TEST(JoinableQueue, AJoinInAChildSeesTheParentsTaskDone) {
  mp::JoinableQueue<std::string> q;
  q.put("work");
  pid_t joiner = fork_child([q]() mutable { q.join(); });
  EXPECT_EQ(q.get(), "work");
  q.task_done();
  EXPECT_EQ(wait_child(joiner), 0);
}

TEST(JoinableQueueThreads, JoinAndTaskDoneRaceCleanly) {
  mp::JoinableQueue<int> q(8);
  constexpr int kItems = 3000;
  std::vector<std::thread> consumers;
  for (int c = 0; c < 2; ++c)
    consumers.emplace_back([q]() mutable {
      for (;;) {
        int item = q.get();
        q.task_done();
        if (item < 0) return;
      }
    });
  std::thread joiner([q]() mutable { q.join(); });
  for (int i = 0; i < kItems; ++i) q.put(i);
  q.join();
  q.put(-1);
  q.put(-1);
  for (auto& t : consumers) t.join();
  joiner.join();
  EXPECT_EQ(q.unfinished_tasks(), 0u);
}

}  // namespace
