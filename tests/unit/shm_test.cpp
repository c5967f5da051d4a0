// tests/unit/shm_test.cpp — memfd-backed shared regions (mp/detail/shm.hpp).
#include "mp/detail/shm.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

namespace {

using mp::detail::make_shared_object;
using mp::detail::region_of;
using mp::detail::SharedRegion;

bool fd_is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

std::size_t dev_shm_entries() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/dev/shm")) ++n;
  return n;
}

TEST(SharedRegion, IsAMemfdWithNoNameInDevShm) {
  const std::size_t before = dev_shm_entries();
  SharedRegion region = SharedRegion::create(8192, "test-region");
  EXPECT_EQ(dev_shm_entries(), before);
  ASSERT_GE(region.fd(), 0);
  EXPECT_EQ(region.size(), 8192u);
  char link[256] = {};
  const std::string path = "/proc/self/fd/" + std::to_string(region.fd());
  ASSERT_GT(::readlink(path.c_str(), link, sizeof link - 1), 0);
  EXPECT_EQ(std::string(link).rfind("/memfd:", 0), 0u) << link;
  EXPECT_NE(::fcntl(region.fd(), F_GETFD) & FD_CLOEXEC, 0);
  // zeroed, writable, shared
  for (std::size_t i = 0; i < region.size(); ++i) ASSERT_EQ(region.data()[i], std::byte{0});
  region.data()[100] = std::byte{42};
}

TEST(SharedRegion, FdIsClosedWhenTheLastHandleDrops) {
  int fd = -1;
  {
    auto object = make_shared_object<std::atomic<int>>("test-object", 7);
    const auto region = region_of(object);
    ASSERT_TRUE(region.has_value());
    fd = region->fd;
    EXPECT_TRUE(fd_is_open(fd));
    auto copy = object;
    object.reset();
    EXPECT_TRUE(fd_is_open(fd));  // the copy still holds it
    EXPECT_EQ(copy->load(), 7);
  }
  EXPECT_FALSE(fd_is_open(fd));
}

TEST(SharedRegion, AnAdoptedFdSeesTheSameBytes) {
  SharedRegion region = SharedRegion::create(4096, "test-adopt");
  std::memcpy(region.data(), "hello", 6);
  SharedRegion again = SharedRegion::adopt(::dup(region.fd()), "test-adopt");
  EXPECT_NE(again.data(), region.data());  // a second mapping
  EXPECT_EQ(again.size(), 4096u);
  EXPECT_STREQ(reinterpret_cast<const char*>(again.data()), "hello");
  std::memcpy(again.data(), "world", 6);
  EXPECT_STREQ(reinterpret_cast<const char*>(region.data()), "world");
}

TEST(SharedRegion, AChildThatMapsTheFdAgainWritesWhereTheParentReads) {
  SharedRegion region = SharedRegion::create(4096, "test-child");
  const int fd = region.fd();
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // Not through the inherited mapping: map the fd again, as a spawned child would.
    try {
      SharedRegion there = SharedRegion::adopt(::dup(fd), "test-child");
      std::memcpy(there.data() + 10, "from child", 11);
    } catch (...) {
      ::_exit(2);
    }
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_STREQ(reinterpret_cast<const char*>(region.data() + 10), "from child");
}

TEST(SharedRegion, AReservationLargerThanTheFileMapsWithoutTouchingMemory) {
  SharedRegion region = SharedRegion::create(4096, "test-reserve", std::size_t{1} << 30);
  EXPECT_EQ(region.size(), std::size_t{1} << 30);
  struct stat st {};
  ASSERT_EQ(::fstat(region.fd(), &st), 0);
  EXPECT_EQ(st.st_size, 4096);
  EXPECT_LE(st.st_blocks * 512, 4096);
  // Growing the file makes the new bytes usable through the existing mapping.
  ASSERT_EQ(::ftruncate(region.fd(), 2 << 20), 0);
  region.data()[(2 << 20) - 1] = std::byte{1};
  SharedRegion again = SharedRegion::adopt(::dup(region.fd()), "test-reserve", region.size());
  EXPECT_EQ(again.data()[(2 << 20) - 1], std::byte{1});
}

TEST(SharedRegion, TheSoftFdLimitIsRaisedToTheHardLimit) {
  (void)SharedRegion::create(4096, "test-limit");
  rlimit limit{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &limit), 0);
  EXPECT_EQ(limit.rlim_cur, limit.rlim_max);
}

TEST(SharedRegion, AdoptingABadFdThrowsAndNamesTheCall) {
  try {
    (void)SharedRegion::adopt(::open("/dev/null", O_RDONLY | O_CLOEXEC), "test-bad", 4096);
    FAIL() << "expected mp::Error";
  } catch (const mp::Error& e) {
    EXPECT_NE(std::string(e.what()).find("mmap(test-bad"), std::string::npos) << e.what();
  }
}

}  // namespace
