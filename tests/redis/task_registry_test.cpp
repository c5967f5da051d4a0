// MP_TASK: registration by qualified name, invocation through the codec, and the
// errors for unregistered functions and unknown names (no server needed).
#include <gtest/gtest.h>

#include <string>
#include <tuple>

#include "mp/codec.hpp"
#include "mp/errors.hpp"
#include "mp/redis/task.hpp"

namespace tasks {
int square(int x) { return x * x; }
std::string greet(const std::string& who, int times) {
  std::string out;
  for (int i = 0; i < times; ++i) out += "hello " + who + ";";
  return out;
}
int recorded = 0;
void record(int x) { recorded = x; }
int not_registered(int x) { return x; }
}  // namespace tasks

MP_TASK(tasks::square);

namespace {
// Not inlined: GCC 12 at -O3 reports a false -Wstringop-overflow in the codec's Writer when
// it sees a compile-time string's size (codec_io.hpp notes the same for vector::insert).
[[gnu::noinline]] std::vector<std::byte> greet_arguments(const std::string& who, int times) {
  return mp::encode(std::tuple<std::string, int>{who, times});
}
}  // namespace

MP_TASK(tasks::greet);
MP_TASK(tasks::record);

TEST(RedisTaskRegistry, RegisteredUnderTheQualifiedNameAndRunThroughTheCodec) {
  EXPECT_EQ(mp::redis::detail::task_name(reinterpret_cast<const void*>(&tasks::square)), "tasks::square");
  auto square = mp::redis::detail::find_task("tasks::square");
  EXPECT_EQ(mp::decode<int>(square(mp::encode(std::tuple<int>{7}))), 49);
  auto greet = mp::redis::detail::find_task("tasks::greet");
  EXPECT_EQ(mp::decode<std::string>(greet(greet_arguments("mp", 2))), "hello mp;hello mp;");
  auto record = mp::redis::detail::find_task("tasks::record");
  EXPECT_TRUE(record(mp::encode(std::tuple<int>{5})).empty());
  EXPECT_EQ(tasks::recorded, 5);
}

TEST(RedisTaskRegistry, UnregisteredFunctionsAndUnknownNamesAreValueErrors) {
  try {
    (void)mp::redis::detail::task_name(reinterpret_cast<const void*>(&tasks::not_registered));
    ADD_FAILURE() << "named";
  } catch (const mp::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("MP_TASK"), std::string::npos) << e.what();
  }
  try {
    (void)mp::redis::detail::find_task("tasks::missing");
    ADD_FAILURE() << "found";
  } catch (const mp::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("tasks::missing"), std::string::npos) << e.what();
  }
  auto square = mp::redis::detail::find_task("tasks::square");
  EXPECT_THROW((void)square(mp::encode(std::string("not an int tuple"))), mp::CodecError);
}
