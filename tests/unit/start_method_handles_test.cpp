// Handles passed to children that are not forks (issue 11):
//  - the codec's fd channel and the travel hook of a Connection's transport,
//    in one process (encode with an OutgoingFds, decode from dups of its fds:
//    the protocol without a child);
//  - every kind of handle shared with fork, forkserver and spawn children,
//    both ways, and a killed child holding a Lock, through the helper program
//    start_methods_child (it calls mp::init, so spawn works); 200 starts with
//    handles leave no fd and no /dev/shm entry behind;
//  - the clear errors: a handle encoded outside a launch (a Queue item, a
//    Pipe message, a Pool argument), a closed or untravellable Connection, too
//    many handles for one forkserver request.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <span>
#include <string>
#include <vector>

#include "mp/codec.hpp"
#include "mp/connection.hpp"
#include "mp/context.hpp"
#include "mp/detail/codec_fds.hpp"
#include "mp/detail/connection_core.hpp"
#include "mp/errors.hpp"
#include "mp/pipe.hpp"
#include "mp/pool.hpp"
#include "mp/process.hpp"
#include "mp/queue.hpp"
#include "mp/shared.hpp"
#include "mp/synchronize.hpp"
#include "unit/process_test_support.hpp"

namespace {

using namespace std::chrono_literals;

// ---- the fd channel, in one process ------------------------------------------------

// Travel: what a launch does, here: encode with an fd channel, "receive" dups
// of the fds, decode in the same process.
struct Travel {
  std::vector<std::byte> bytes;
  mp::detail::OutgoingFds out;
  template <class... Handles>
  explicit Travel(const Handles&... handles) {
    mp::Writer writer(bytes, &out);
    (writer.value(handles), ...);
  }
  mp::detail::IncomingFds received() const {
    std::vector<mp::detail::UniqueFd> fds;
    for (int fd : out.fds()) fds.emplace_back(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
    return mp::detail::IncomingFds(std::move(fds));
  }
};

TEST(HandleCodec, QueueDecodedFromItsFdIsTheSameQueue) {
  mp::Queue<int> queue;
  Travel travel(queue);
  ASSERT_EQ(travel.out.fds().size(), 1u);
  mp::detail::IncomingFds fds = travel.received();
  mp::Reader reader(travel.bytes, "test", &fds);
  auto same = mp::detail::decode_new<mp::Queue<int>>(reader);
  reader.finish();
  same.put(5);
  EXPECT_EQ(queue.get(1s), 5);
}

TEST(HandleCodec, AValueAndItsLockShareOneFdAndOneMapping) {
  mp::Value<long> value(3);
  Travel travel(value, value.get_lock());
  ASSERT_EQ(travel.out.fds().size(), 1u);  // one region, one fd
  mp::detail::IncomingFds fds = travel.received();
  mp::Reader reader(travel.bytes, "test", &fds);
  auto value2 = mp::detail::decode_new<mp::Value<long>>(reader);
  auto lock2 = mp::detail::decode_new<mp::Lock>(reader);
  reader.finish();
  fds.release_unclaimed();
  EXPECT_EQ(value2.value(), 3);
  value2.value() = 4;
  EXPECT_EQ(value.value(), 4);
  {
    std::lock_guard hold(lock2);                    // the Value's lock, through the other handle
    EXPECT_FALSE(value.get_lock().acquire(false));  // held by this thread: a plain Lock does not re-enter
  }
  EXPECT_TRUE(value.get_lock().acquire(false));
  value.get_lock().release();
}

TEST(HandleCodec, OutsideALaunchAHandleIsRefusedSayingHowToShareIt) {
  mp::Lock lock;
  try {
    (void)mp::encode(std::vector<mp::Lock>{lock});
    FAIL() << "a Lock was encoded as a value";
  } catch (const mp::ProcessError& error) {
    EXPECT_NE(std::string(error.what())
                  .find("mp::Lock objects should only be shared between processes through "
                        "inheritance"),
              std::string::npos)
        << error.what();
  }
}

TEST(HandleCodec, DecodingAHandleWithoutItsFdsIsACodecError) {
  mp::Event event;
  Travel travel(event);
  mp::Reader without(travel.bytes, "test");
  EXPECT_THROW((void)mp::detail::decode_new<mp::Event>(without), mp::CodecError);
  mp::detail::IncomingFds none;
  mp::Reader with_none(travel.bytes, "test", &none);
  EXPECT_THROW((void)mp::detail::decode_new<mp::Event>(with_none), mp::CodecError);
}

TEST(HandleCodec, AHandleOfAnotherKindIsACodecError) {
  mp::Event event;
  Travel travel(event);
  mp::detail::IncomingFds fds = travel.received();
  mp::Reader reader(travel.bytes, "test", &fds);
  EXPECT_THROW((void)mp::detail::decode_new<mp::Barrier>(reader), mp::CodecError);  // magic differs
}

struct Job {
  mp::Queue<int> results;
  int n = 0;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(results, n);
  }
};

TEST(HandleCodec, AQueueInsideAPipeMessageIsRefused) {
  auto [a, b] = mp::Pipe<Job>();
  Job job;
  EXPECT_THROW(a.send(job), mp::ProcessError);
}

int add_one(int x, const mp::Lock&) { return x + 1; }

TEST(HandleCodec, ALockAsAPoolArgumentIsRefused) {
  mp::Pool pool(1);
  mp::Lock lock;
  EXPECT_THROW((void)pool.apply(add_one, 1, lock), mp::ProcessError);
}

// rebuild_here(end): what a child does with a travelled end, in this process:
// the fds it would receive (dups), the metadata and the factory.
template <class T>
mp::Connection<T> rebuild_here(const mp::Connection<T>& end) {
  mp::detail::ConnectionTravel travel;
  EXPECT_TRUE(mp::detail::ConnectionAccess::core(end)->travel(travel));
  EXPECT_NE(travel.rebuild, nullptr);
  std::vector<mp::detail::UniqueFd> received;
  for (int fd : travel.fds) received.emplace_back(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
  auto core = travel.rebuild(std::span<mp::detail::UniqueFd>(received), travel.metadata);
  return mp::detail::ConnectionAccess::wrap<mp::Connection<T>>(std::move(core));
}

TEST(ConnectionTravel, DuplexEndRebuiltFromItsFdAndMetadataTalksBothWays) {
  auto [a, b] = mp::Pipe<std::string>();
  mp::Connection<std::string> b2 = rebuild_here(b);
  a.send("to the rebuilt end");
  EXPECT_EQ(b2.recv(), "to the rebuilt end");
  b2.send("back");
  EXPECT_EQ(a.recv(), "back");
}

TEST(ConnectionTravel, OneWayEndsKeepTheirDirection) {
  auto [reader, writer] = mp::Pipe<int>(false);
  mp::Connection<int> reader2 = rebuild_here(reader);
  mp::Connection<int> writer2 = rebuild_here(writer);
  EXPECT_FALSE(reader2.writable());
  EXPECT_FALSE(writer2.readable());
  writer2.send(7);
  EXPECT_EQ(reader2.recv(), 7);
  EXPECT_THROW(reader2.send(1), mp::ValueError);
}

TEST(ConnectionTravel, RebuildRefusesMetadataItDoesNotKnow) {
  auto [a, b] = mp::Pipe<int>();
  mp::detail::ConnectionTravel travel;
  ASSERT_TRUE(mp::detail::ConnectionAccess::core(a)->travel(travel));
  std::vector<mp::detail::UniqueFd> received;
  received.emplace_back(::fcntl(travel.fds[0], F_DUPFD_CLOEXEC, 0));
  std::vector<std::byte> short_metadata(3);
  EXPECT_THROW((void)travel.rebuild(std::span<mp::detail::UniqueFd>(received), short_metadata),
               mp::CodecError);
}

TEST(ConnectionTravel, ClosedEndRaisesValueError) {
  auto [a, b] = mp::Pipe<int>();
  a.close();
  mp::detail::ConnectionTravel travel;
  EXPECT_THROW((void)mp::detail::ConnectionAccess::core(a)->travel(travel), mp::ValueError);
}

// ---- children that are not forks --------------------------------------------------

void lock_and_count(std::vector<mp::Lock> locks) { mp::exit(static_cast<int>(locks.size() % 256)); }
void send_one(mp::Connection<int> connection) { connection.send(1); }

class HandleLaunch : public ::testing::Test {
 protected:
  void TearDown() override { mp::detail::stop_forkserver(); }
};

TEST_F(HandleLaunch, AClosedConnectionIsAValueErrorAtStart) {
  auto [a, b] = mp::Pipe<int>();
  b.close();
  mp::Process p(mp::StartMethod::forkserver, send_one, b);
  EXPECT_THROW(p.start(), mp::ValueError);
}

// A transport that does not implement ConnectionCore::travel.
class StayingCore final : public mp::detail::ConnectionCore {
 public:
  void send_bytes(std::span<const std::byte>, const char*) override {}
  void send_frame(std::span<std::byte>, const char*) override {}
  std::vector<std::byte> recv_bytes(const char*) override { return {}; }
  bool poll(mp::detail::Deadline) override { return false; }
  void close() noexcept override {}
  bool closed() const noexcept override { return false; }
  bool readable() const noexcept override { return true; }
  bool writable() const noexcept override { return true; }
  int fileno() const override { return 0; }
  std::string name() const override { return "a transport that stays"; }
};

TEST_F(HandleLaunch, AConnectionWhoseTransportCannotTravelIsAProcessErrorSayingSo) {
  auto end = mp::detail::ConnectionAccess::wrap<mp::Connection<int>>(std::make_shared<StayingCore>());
  mp::Process p(mp::StartMethod::forkserver, send_one, end);
  try {
    p.start();
    FAIL() << "started";
  } catch (const mp::ProcessError& error) {
    EXPECT_NE(std::string(error.what()).find("cannot travel"), std::string::npos) << error.what();
  }
}

TEST_F(HandleLaunch, ManyLocksTravelAndTooManyForOneForkserverRequestIsAProcessError) {
  std::vector<mp::Lock> locks(200);
  mp::Process fits(mp::StartMethod::forkserver, lock_and_count, locks);
  fits.start();
  fits.join();
  EXPECT_EQ(fits.exitcode(), 200);
  locks.resize(252);
  mp::Process too_many(mp::StartMethod::forkserver, lock_and_count, locks);
  try {
    too_many.start();
    FAIL() << "started";
  } catch (const mp::ProcessError& error) {
    EXPECT_NE(std::string(error.what()).find("at most 251"), std::string::npos) << error.what();
  }
}

// Through start_methods_child: every kind of handle, under each method.
const char* const kEveryHandleOk =
    "Queue ok\n"
    "JoinableQueue ok\n"
    "SimpleQueue ok\n"
    "Lock ok\n"
    "RLock ok\n"
    "Lock held by a killed child ok\n"
    "Semaphore ok\n"
    "Event ok\n"
    "Condition ok\n"
    "Barrier ok\n"
    "Value and Array ok\n"
    "Value's lock ok\n"
    "Connection ok\n"
    "one-way Connection ok\n"
    "subclass with a Queue field ok\n";

std::string run_program(const std::string& mode, const std::string& method) {
  std::string output;
  std::string errors;
  const int status = mp::test::run_helper("start_methods_child", {mode, method}, output, &errors);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << mode << " " << method << ": " << errors;
  return output;
}

TEST(HandlesProgram, EveryKindIsSharedWithSpawnChildren) {
  EXPECT_EQ(run_program("handles", "spawn"), kEveryHandleOk);
}
TEST(HandlesProgram, EveryKindIsSharedWithForkserverChildren) {
  EXPECT_EQ(run_program("handles", "forkserver"), kEveryHandleOk);
}
TEST(HandlesProgram, EveryKindIsSharedWithForkChildren) {
  EXPECT_EQ(run_program("handles", "fork"), kEveryHandleOk);
}

TEST(HandlesProgram, TwoHundredSpawnStartsWithHandlesLeaveNoFdAndNoShmEntry) {
  EXPECT_EQ(run_program("handle_starts", "spawn"), "fds +0 shm +0\n");
}
TEST(HandlesProgram, TwoHundredForkserverStartsWithHandlesLeaveNoFdAndNoShmEntry) {
  EXPECT_EQ(run_program("handle_starts", "forkserver"), "fds +0 shm +0\n");
}

}  // namespace
