// Python's Pipe demos in C++: the classic `parent_conn, child_conn = Pipe()`
// from the multiprocessing docs (also the example atop mp/pipe.hpp), the
// example atop mp/connection.hpp (boundaries, the empty message, EOF), then a
// duplex ping-pong between a parent and
// a child that ends when the parent closes its end (the child sees EOFError).
//
// Python:
//   def f(conn):
//       conn.send([42, None, 'hello'])
//       conn.close()
//   parent_conn, child_conn = Pipe()
//   p = Process(target=f, args=(child_conn,))
//   p.start()
//   print(parent_conn.recv())   # prints "[42, None, 'hello']"
//   p.join()
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <tuple>

#include "mp/errors.hpp"
#include "mp/pipe.hpp"
#include "mp/process.hpp"

namespace {

using Message = std::tuple<int, std::optional<int>, std::string>;

void f(mp::Connection<Message> conn) {
  conn.send({42, std::nullopt, "hello"});
  conn.close();
}

// The child's side of the ping-pong: answers n with n + 1 until the parent
// closes its end.
void pong(mp::Connection<std::int64_t> parent_end, mp::Connection<std::int64_t> conn) {
  parent_end.close();  // Python's idiom: close the end this process does not use
  try {
    for (;;) conn.send(conn.recv() + 1);
  } catch (const mp::EOFError&) {
    // the parent closed its end: we are done
  }
}

}  // namespace

int main() {
  {
    auto [parent_conn, child_conn] = mp::Pipe<Message>();
    mp::Process p(f, child_conn);
    p.start();
    auto [number, nothing, text] = parent_conn.recv();
    std::printf("[%d, %s, '%s']\n", number, nothing ? std::to_string(*nothing).c_str() : "None",
                text.c_str());
    p.join();
  }

  {
    // Messages keep their boundaries; EOF comes only after every message.
    auto [a, b] = mp::Pipe<std::string>();
    a.send("hello");
    a.send_bytes({});  // the empty message is a message too
    std::string text = b.recv();
    bool empty = b.recv_bytes().empty();
    a.close();
    std::printf("received '%s', then an empty message: %s\n", text.c_str(), empty ? "yes" : "no");
    if (b.poll()) {  // poll is true at EOF: recv() would not block...
      try {
        (void)b.recv();
      } catch (const mp::EOFError& error) {  // ...it throws
        std::printf("EOFError: %s\n", error.what());
      }
    }
  }

  constexpr int round_trips = 1000;
  auto [parent_conn, child_conn] = mp::Pipe<std::int64_t>();
  mp::Process child(pong, parent_conn, child_conn);
  child.start();
  child_conn.close();  // the parent uses only its own end
  std::int64_t value = 0;
  for (int i = 0; i < round_trips; ++i) {
    parent_conn.send(value);
    value = parent_conn.recv() + 1;  // the child added one, we add one
  }
  std::printf("ping-pong: %d round trips, final value %lld\n", round_trips, static_cast<long long>(value));
  parent_conn.close();  // the child's recv() raises EOFError and it returns
  child.join();
  std::printf("child exited with %d\n", child.exitcode().value_or(-1));
  return child.exitcode() == 0 ? 0 : 1;
}
