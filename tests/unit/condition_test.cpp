// Tests for mp::Condition. ConditionThreads run under ThreadSanitizer.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "mp/condition.hpp"
#include "mp/errors.hpp"
#include "mp/shared.hpp"
#include "support/child.hpp"

using namespace std::chrono_literals;
using mp::test::fork_child;
using mp::test::wait_child;

namespace {

TEST(Condition, WaitAndNotifyWithoutTheLockAreValueError) {
  mp::Condition cond;
  EXPECT_THROW(cond.wait(), mp::ValueError);
  EXPECT_THROW((void)cond.wait(1ms), mp::ValueError);
  EXPECT_THROW(cond.notify(), mp::ValueError);
  EXPECT_THROW(cond.notify_all(), mp::ValueError);
  EXPECT_THROW(cond.release(), mp::ValueError);
  std::lock_guard hold(cond);
  EXPECT_THROW(cond.notify(-1), mp::ValueError);
  EXPECT_NO_THROW(cond.notify(0));
  EXPECT_NO_THROW(cond.notify(3));  // nobody waits: nothing happens
}

TEST(Condition, TimedWaitReturnsFalseAndKeepsTheLock) {
  mp::Lock lock;
  mp::Condition cond(lock);
  cond.acquire();
  EXPECT_FALSE(cond.wait(2ms));
  EXPECT_FALSE(lock.try_lock());  // held again after the wait
  EXPECT_FALSE(cond.wait_for([] { return false; }, 2ms));
  EXPECT_TRUE(cond.wait_for([] { return true; }, 0s));
  cond.release();
  EXPECT_THROW(cond.release(), mp::ValueError);
}

TEST(ConditionThreads, NotifyWakesAtMostN) {
  mp::Condition cond;
  int ready = 0;  // under the lock
  int woken = 0;  // under the lock
  std::vector<std::thread> waiters;
  for (int t = 0; t < 5; ++t)
    waiters.emplace_back([&] {
      std::lock_guard hold(cond);
      ++ready;
      cond.wait();
      ++woken;
    });
  auto under_lock = [&](auto f) {
    std::lock_guard hold(cond);
    return f();
  };
  // Once ready == 5 is seen under the lock, all five are inside wait().
  ASSERT_TRUE(mp::test::eventually([&] { return under_lock([&] { return ready == 5; }); }));
  under_lock([&] {
    cond.notify(2);
    return 0;
  });
  ASSERT_TRUE(mp::test::eventually([&] { return under_lock([&] { return woken == 2; }); }));
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(under_lock([&] { return woken; }), 2);  // not three
  under_lock([&] {
    cond.notify(1);
    return 0;
  });
  ASSERT_TRUE(mp::test::eventually([&] { return under_lock([&] { return woken == 3; }); }));
  under_lock([&] {
    cond.notify_all();
    return 0;
  });
  for (auto& t : waiters) t.join();
  EXPECT_EQ(woken, 5);
}

TEST(ConditionThreads, WaitReleasesAReenteredRLockFully) {
  mp::RLock lock;
  mp::Condition cond(lock);
  bool flag = false;  // under the lock
  cond.acquire();
  cond.acquire();
  std::thread notifier([&] {
    std::lock_guard hold(cond);  // possible only while the waiter's wait has released both levels
    flag = true;
    cond.notify();
  });
  EXPECT_TRUE(cond.wait_for([&] { return flag; }, 20s));
  std::thread probe([&] { EXPECT_FALSE(lock.try_lock()); });  // held again
  probe.join();
  cond.release();
  cond.release();  // both levels are back
  EXPECT_THROW(cond.release(), mp::ValueError);
  notifier.join();
}

TEST(ConditionThreads, WaitForReturnsThePredicatesLastValue) {
  mp::Condition cond;
  int value = 0;  // under the lock
  std::thread setter([&] {
    for (int i = 1; i <= 3; ++i) {
      std::lock_guard hold(cond);
      value = i;
      cond.notify_all();
    }
  });
  {
    std::lock_guard hold(cond);
    EXPECT_TRUE(cond.wait_for([&] { return value == 3; }, 20s));
    EXPECT_FALSE(cond.wait_for([&] { return value == 4; }, 5ms));
  }
  setter.join();
}

TEST(ConditionThreads, ProducersAndConsumersOverAPlainLock) {
  mp::Lock lock;
  mp::Condition cond(lock);
  std::deque<int> items;  // under the lock
  long sum = 0;
  std::vector<std::thread> threads;
  for (int p = 0; p < 2; ++p)
    threads.emplace_back([&] {
      for (int i = 1; i <= 500; ++i) {
        std::lock_guard hold(cond);
        items.push_back(i);
        cond.notify();
      }
    });
  std::atomic<long> consumed{0};
  for (int c = 0; c < 2; ++c)
    threads.emplace_back([&] {
      for (int i = 0; i < 500; ++i) {
        std::lock_guard hold(cond);
        cond.wait_for([&] { return !items.empty(); });
        consumed += items.front();
        items.pop_front();
      }
    });
  for (auto& t : threads) t.join();
  sum = consumed.load();
  EXPECT_EQ(sum, 2 * 500 * 501 / 2);
}

TEST(Condition, ChildNotifiesParent) {
  mp::Condition cond;
  mp::Value<int> value(0);
  cond.acquire();
  pid_t child = fork_child([&] {
    std::lock_guard hold(cond);
    value.value() = 7;
    cond.notify();
    return 0;
  });
  EXPECT_TRUE(cond.wait_for([&] { return value.value() == 7; }, 20s));
  cond.release();
  EXPECT_EQ(wait_child(child), 0);
}

TEST(Condition, WaiterKilledMidWaitDoesNotSwallowANotify) {
  mp::Condition cond;
  mp::Value<int> ready(0);  // under the lock
  pid_t child = fork_child([&] {
    std::lock_guard hold(cond);
    ready.value() = 1;
    cond.wait();
    return 0;
  });
  auto ready_is = [&](int n) {
    std::lock_guard hold(cond);
    return ready.value() == n;
  };
  ASSERT_TRUE(mp::test::eventually([&] { return ready_is(1); }));  // the child is inside wait()
  EXPECT_EQ(mp::test::kill_child(child), -SIGKILL);
  bool woken = false;
  std::thread waiter([&] {
    std::lock_guard hold(cond);
    ready.value() = 2;
    woken = cond.wait(20s);
  });
  ASSERT_TRUE(mp::test::eventually([&] { return ready_is(2); }));
  {
    std::lock_guard hold(cond);
    cond.notify(1);  // the dead waiter is still counted; the live one must wake
  }
  waiter.join();
  EXPECT_TRUE(woken);
}

TEST(Condition, GrantLeftByAKilledWaiterWakesNoLaterWaiter) {
  // Issue 9, defect 13: a waiter killed inside wait() after a notify(1) made
  // it a grant left that grant spare, and a later notify(1) then woke two.
  mp::Condition cond;
  mp::Value<int> ready(0);  // under the lock: how many are inside wait()
  auto ready_is = [&](int n) {
    std::lock_guard hold(cond);
    return ready.value() == n;
  };
  pid_t child = fork_child([&] {
    std::lock_guard hold(cond);
    ready.value() = 1;
    cond.wait();
    return 0;
  });
  ASSERT_TRUE(mp::test::eventually([&] { return ready_is(1); }));  // the child is inside wait()
  ::kill(child, SIGSTOP);  // cannot take the grant the notify below makes for it
  {
    std::lock_guard hold(cond);
    cond.notify(1);
  }
  EXPECT_EQ(mp::test::kill_child(child), -SIGKILL);
  std::atomic<int> notified{0};
  std::vector<std::thread> waiters;
  for (int t = 0; t < 2; ++t)
    waiters.emplace_back([&] {
      std::lock_guard hold(cond);
      ++ready.value();
      // Long enough for the notified one to return however loaded the
      // machine; the other one times out.
      if (cond.wait(1s)) notified.fetch_add(1);
    });
  ASSERT_TRUE(mp::test::eventually([&] { return ready_is(3); }));  // both inside wait()
  {
    std::lock_guard hold(cond);
    cond.notify(1);
  }
  for (auto& t : waiters) t.join();
  EXPECT_EQ(notified.load(), 1) << "notify(1) must wake at most one";
}

TEST(Condition, HolderKilledWhileHoldingTheLockIsReportedToTheWokenWaiter) {
  mp::Lock lock;
  mp::Condition cond(lock);
  mp::Value<int> ready(0);    // under the lock
  mp::Value<int> holding(0);  // atomic_ref: the child holds the lock now
  bool returned = false;
  bool owner_died = false;
  std::thread waiter([&] {
    std::lock_guard hold(cond);
    ready.value() = 1;
    returned = cond.wait(20s);
    owner_died = lock.previous_owner_died();  // its re-acquire took over from the dead child
  });
  ASSERT_TRUE(mp::test::eventually([&] {
    std::lock_guard hold(cond);
    return ready.value() == 1;
  }));
  pid_t child = fork_child([&] {
    cond.acquire();
    cond.notify();
    std::atomic_ref<int>(holding.value()).store(1);
    ::pause();  // dies holding the lock
    return 0;
  });
  ASSERT_TRUE(mp::test::eventually([&] { return std::atomic_ref<int>(holding.value()).load() == 1; }));
  EXPECT_EQ(mp::test::kill_child(child), -SIGKILL);
  waiter.join();
  EXPECT_TRUE(returned);
  EXPECT_TRUE(owner_died);
}

}  // namespace
