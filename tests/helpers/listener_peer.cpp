// listener_peer ADDRESS AUTHKEY: a separately executed mp program for
// listener_program_test.cpp. Connects to the test's Listener with
// mp::Client<Message>, receives one Message, answers it changed (the label
// gets " seen", the numbers are summed into "total"), then echoes every raw
// message until the test closes the connection. Exit 0 on a clean end,
// 1 with the reason on stderr otherwise.
#include <cstdio>
#include <map>
#include <numeric>
#include <string>
#include <tuple>
#include <vector>

#include "mp/errors.hpp"
#include "mp/listener.hpp"

// The same type as the test's: (label, numbers, counts).
using Message = std::tuple<std::string, std::vector<double>, std::map<std::string, int>>;

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: listener_peer ADDRESS AUTHKEY\n");
    return 2;
  }
  try {
    auto conn = mp::Client<Message>(argv[1], std::string(argv[2]));
    auto [label, numbers, counts] = conn.recv();
    counts["total"] = static_cast<int>(std::accumulate(numbers.begin(), numbers.end(), 0.0));
    conn.send({label + " seen", numbers, counts});
    for (;;) {
      std::vector<std::byte> bytes;
      try {
        bytes = conn.recv_bytes();
      } catch (const mp::EOFError&) {
        return 0;
      }
      conn.send_bytes(bytes);
    }
  } catch (const std::exception& error) {
    std::fprintf(stderr, "listener_peer: %s\n", error.what());
    return 1;
  }
}
