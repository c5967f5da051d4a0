// mp::version() is the CMake project version (passed to this test as
// MP_EXPECTED_VERSION), in MAJOR.MINOR.PATCH form.
#include <gtest/gtest.h>

#include <string_view>

#include "mp/mp.hpp"

namespace {

// is_dotted_triple(s): three non-empty runs of digits separated by dots.
// (Checked by hand: GCC 12 warns inside <regex> under the asan preset's -O1.)
bool is_dotted_triple(std::string_view s) {
  int parts = 0;
  bool digits = false;
  for (char c : s) {
    if (c >= '0' && c <= '9') {
      digits = true;
    } else if (c == '.' && digits && parts < 2) {
      ++parts;
      digits = false;
    } else {
      return false;
    }
  }
  return parts == 2 && digits;
}

}  // namespace

TEST(Version, IsTheProjectVersion) {
  EXPECT_EQ(mp::version(), MP_EXPECTED_VERSION);
  EXPECT_TRUE(is_dotted_triple(mp::version())) << mp::version();
  EXPECT_FALSE(is_dotted_triple("1.2"));
  EXPECT_FALSE(is_dotted_triple("1..2"));
  EXPECT_FALSE(is_dotted_triple("1.2.3.4"));
}
