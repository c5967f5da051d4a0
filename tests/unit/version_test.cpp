// mp::version() is the CMake project version (passed to this test as
// MP_EXPECTED_VERSION), in MAJOR.MINOR.PATCH form.
#include <gtest/gtest.h>

#include <regex>
#include <string>

#include "mp/mp.hpp"

TEST(Version, IsTheProjectVersion) {
  EXPECT_EQ(mp::version(), MP_EXPECTED_VERSION);
  EXPECT_TRUE(std::regex_match(std::string(mp::version()), std::regex(R"(\d+\.\d+\.\d+)"))) << mp::version();
}
