// The main() of every mp test binary: GoogleTest plus a listener that fails
// the run when a test leaves an fd, a child process or a /dev/shm entry behind.
#include <gtest/gtest.h>

#include <cstdio>

#include "common/leak_check.hpp"

namespace {

class LeakListener : public testing::EmptyTestEventListener {
 public:
  void OnTestStart(const testing::TestInfo&) override { before_ = mp::test::take_snapshot(); }
  void OnTestEnd(const testing::TestInfo& info) override {
    std::string leaks = mp::test::describe_leaks(before_);
    if (!leaks.empty()) {
      std::fprintf(stderr, "[  LEAKED  ] %s.%s:\n%s", info.test_suite_name(), info.name(), leaks.c_str());
      leaked_ = true;
    }
  }
  bool leaked() const { return leaked_; }

 private:
  mp::test::ResourceSnapshot before_;
  bool leaked_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  auto* listener = new LeakListener;  // owned by gtest once appended
  testing::UnitTest::GetInstance()->listeners().Append(listener);
  int rc = RUN_ALL_TESTS();
  if (rc == 0 && listener->leaked()) {
    std::fprintf(stderr, "a test leaked resources (see [  LEAKED  ] above)\n");
    return 1;
  }
  return rc;
}
