// Tests for mp::Event. EventThreads run under ThreadSanitizer.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "mp/event.hpp"
#include "support/child.hpp"

using namespace std::chrono_literals;
using mp::test::fork_child;
using mp::test::wait_child;

namespace {

TEST(Event, SetClearIsSet) {
  mp::Event event;
  EXPECT_FALSE(event.is_set());
  EXPECT_FALSE(event.wait(1ms));
  EXPECT_FALSE(event.wait(-1s));
  event.set();
  EXPECT_TRUE(event.is_set());
  EXPECT_TRUE(event.wait(0s));
  event.wait();  // returns at once
  event.set();   // idempotent
  EXPECT_TRUE(event.is_set());
  event.clear();
  EXPECT_FALSE(event.is_set());
  EXPECT_FALSE(event.wait(1ms));
}

TEST(Event, CopiesShareTheFlag) {
  mp::Event event;
  mp::Event copy = event;
  copy.set();
  EXPECT_TRUE(event.is_set());
}

TEST(EventThreads, SetWakesEveryWaiterAndPublishesData) {
  mp::Event event;
  int payload = 0;  // written before set(), read after wait()
  std::atomic<int> woken{0};
  std::vector<std::thread> waiters;
  for (int t = 0; t < 4; ++t)
    waiters.emplace_back([&] {
      event.wait();
      EXPECT_EQ(payload, 42);
      ++woken;
    });
  std::this_thread::sleep_for(10ms);
  payload = 42;
  event.set();
  for (auto& t : waiters) t.join();
  EXPECT_EQ(woken.load(), 4);
}

TEST(EventThreads, TimedWaitersSeeASet) {
  mp::Event event;
  std::vector<std::thread> waiters;
  std::atomic<int> ok{0};
  for (int t = 0; t < 3; ++t)
    waiters.emplace_back([&] {
      if (event.wait(20s)) ++ok;
    });
  event.set();
  for (auto& t : waiters) t.join();
  EXPECT_EQ(ok.load(), 3);
}

TEST(Event, ChildSetsParentWakes) {
  mp::Event event;
  mp::Event reply;
  pid_t child = fork_child([&] {
    event.set();
    return reply.wait(20s) ? 0 : 1;
  });
  EXPECT_TRUE(event.wait(20s));
  reply.set();
  EXPECT_EQ(wait_child(child), 0);
}

TEST(Event, WaiterKilledMidWaitDoesNotDisturbOthers) {
  mp::Event event;
  pid_t child = fork_child([&] {
    event.wait();
    return 0;
  });
  std::this_thread::sleep_for(10ms);
  EXPECT_EQ(mp::test::kill_child(child), -SIGKILL);
  std::thread waiter([&] { EXPECT_TRUE(event.wait(20s)); });
  event.set();
  waiter.join();
  event.clear();
  EXPECT_FALSE(event.wait(1ms));
}

}  // namespace
