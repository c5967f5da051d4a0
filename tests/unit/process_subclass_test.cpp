// mp::Process subclasses held by value (issue 9, defect 10): a subclass moved
// into a plain mp::Process loses its run(); that must never silently run the
// empty base run(). Constructing a Process from a subclass does not compile
// (tests/compile_fail/process_subclass_sliced.cpp); the one form the language
// lets through, binding the subclass to Process&& (vector::push_back), makes
// start() throw ProcessError.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "mp/errors.hpp"
#include "mp/process.hpp"

namespace {

struct Squarer : mp::Process {
  explicit Squarer(int n) : n(n) {}
  void run() override { mp::exit(n * n); }
  int n;
};

struct MovesItsBaseByHand : mp::Process {
  explicit MovesItsBaseByHand(int n) : n(n) {}
  MovesItsBaseByHand(MovesItsBaseByHand&& other) noexcept : Process(std::move(other)), n(other.n) {}
  void run() override { mp::exit(n); }
  int n;
};

TEST(ProcessSubclass, SlicedByPushBackRefusesToStartAndSaysWhy) {
  std::vector<mp::Process> v;
  v.push_back(Squarer(3));
  try {
    v[0].start();
    FAIL() << "a sliced Squarer started (and ran the empty base run())";
  } catch (const mp::ProcessError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("Squarer"), std::string::npos) << message;
    EXPECT_NE(message.find("unique_ptr"), std::string::npos) << message;
  }
  EXPECT_EQ(v[0].pid(), 0);
}

TEST(ProcessSubclass, SlicedThenMovedAgainStillRefuses) {
  std::vector<mp::Process> v;
  v.push_back(Squarer(3));
  mp::Process moved = std::move(v[0]);
  EXPECT_THROW(moved.start(), mp::ProcessError);
}

TEST(ProcessSubclass, MovedSubclassKeepsItsRun) {
  Squarer first(3);
  Squarer second(std::move(first));
  second.start();
  second.join();
  EXPECT_EQ(second.exitcode(), 9);
}

TEST(ProcessSubclass, SubclassMovingItsBaseByHandStillCompilesAndRuns) {
  MovesItsBaseByHand first(7);
  MovesItsBaseByHand second(std::move(first));
  second.start();
  second.join();
  EXPECT_EQ(second.exitcode(), 7);
}

TEST(ProcessSubclass, SubclassesByPointerInAVectorRun) {
  std::vector<std::unique_ptr<mp::Process>> v;
  for (int i = 1; i <= 3; ++i) v.push_back(std::make_unique<Squarer>(i));
  for (auto& p : v) p->start();
  for (auto& p : v) p->join();
  EXPECT_EQ(v[0]->exitcode(), 1);
  EXPECT_EQ(v[1]->exitcode(), 4);
  EXPECT_EQ(v[2]->exitcode(), 9);
}

TEST(ProcessSubclass, PlainProcessesMoveInAVectorAsBefore) {
  std::vector<mp::Process> v;
  for (int i = 0; i < 5; ++i) v.emplace_back([i] { mp::exit(i); });  // reallocations move them
  for (auto& p : v) p.start();
  for (int i = 0; i < 5; ++i) {
    v[static_cast<std::size_t>(i)].join();
    EXPECT_EQ(v[static_cast<std::size_t>(i)].exitcode(), i);
  }
}

}  // namespace
