// Pipe benchmarks: a round trip between two processes (parent sends, a forked
// child echoes), and one-way throughput for 4 KiB and 1 MiB messages over a
// duplex Pipe and a one-way Pipe(false) (both shared-memory rings), beside
// the same round trip on a bare socketpair (the kernel's floor, which the
// socket Pipe used to pay).
// Listener/Client: the same round trip over a TCP connection on 127.0.0.1
// made by mp::Listener / mp::Client with an authkey (Python's framing), as an
// i64 in mp's codec and as a py::Object (a pickle, as Python's send() makes).
// bench/compare/pipe.py runs the same work with Python's multiprocessing.Pipe
// and multiprocessing.connection.Listener/Client.
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "mp/detail/connection_core.hpp"
#include "mp/errors.hpp"
#include "mp/listener.hpp"
#include "mp/pipe.hpp"
#include "mp/py.hpp"

namespace {

// Forks a child that runs body() and _exits; the parent gets its pid.
template <class F>
pid_t fork_child(F body) {
  pid_t pid = ::fork();
  if (pid < 0) std::abort();
  if (pid == 0) {
    int code = 0;
    try {
      body();
    } catch (...) {
      code = 1;
    }
    ::_exit(code);
  }
  return pid;
}

void reap(pid_t pid, benchmark::State& state) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) state.SkipWithError("the child failed");
}

// round_trips(state, parent_conn, child_conn): the typed round trip both
// transports are measured with: send an i64, the child sends it back plus one.
void round_trips(benchmark::State& state, mp::Connection<std::int64_t>& parent_conn,
                 mp::Connection<std::int64_t>& child_conn) {
  pid_t child = fork_child([&] {
    parent_conn.close();
    try {
      for (;;) child_conn.send(child_conn.recv() + 1);
    } catch (const mp::EOFError&) {
    }
  });
  child_conn.close();
  std::int64_t n = 0;
  for (auto _ : state) {
    parent_conn.send(n);
    n = parent_conn.recv();
  }
  benchmark::DoNotOptimize(n);
  parent_conn.close();
  reap(child, state);
  state.SetItemsProcessed(state.iterations());
}

// The round trip over mp::Pipe (shared memory since issue 10).
void BM_PipeRoundTripInt(benchmark::State& state) {
  auto [parent_conn, child_conn] = mp::Pipe<std::int64_t>();
  round_trips(state, parent_conn, child_conn);
}
BENCHMARK(BM_PipeRoundTripInt)->UseRealTime();

// The same round trip over the socket transport the Pipe used before issue 10
// (make_stream_connection_pair: a socketpair, mp framing), measured in the
// same run, so before and after compare back to back on a shared machine.
void BM_SocketPipeRoundTripInt(benchmark::State& state) {
  auto [first, second] = mp::detail::make_stream_connection_pair(true);
  auto parent_conn = mp::detail::ConnectionAccess::wrap<mp::Connection<std::int64_t>>(std::move(first));
  auto child_conn = mp::detail::ConnectionAccess::wrap<mp::Connection<std::int64_t>>(std::move(second));
  round_trips(state, parent_conn, child_conn);
}
BENCHMARK(BM_SocketPipeRoundTripInt)->UseRealTime();

// The floor the kernel sets: the same round trip with bare write()/read() of
// 8 bytes on a blocking socketpair, no framing, no codec, no spinning. Not
// mp code; printed by bench/compare/pipe.py next to the goal.
void BM_RawSocketpairRoundTrip(benchmark::State& state) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    state.SkipWithError("socketpair failed");
    return;
  }
  pid_t child = fork_child([&] {
    ::close(fds[0]);
    std::int64_t n;
    while (::read(fds[1], &n, sizeof n) == sizeof n) {
      ++n;
      if (::write(fds[1], &n, sizeof n) != sizeof n) break;
    }
  });
  ::close(fds[1]);
  std::int64_t n = 0;
  for (auto _ : state) {
    if (::write(fds[0], &n, sizeof n) != sizeof n || ::read(fds[0], &n, sizeof n) != sizeof n) {
      state.SkipWithError("raw round trip failed");
      break;
    }
  }
  ::close(fds[0]);
  reap(child, state);
}
BENCHMARK(BM_RawSocketpairRoundTrip)->UseRealTime();

// One-way throughput: the parent sends state.range(0)-byte messages, the child
// receives them; an empty message asks the child to acknowledge, so the timed
// region ends only once every byte was received.
void BM_PipeThroughput(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  const bool duplex = state.range(1) != 0;
  auto [data_reader, data_writer] = mp::Pipe<int>(duplex);
  auto [control_parent, control_child] = mp::Pipe<int>();
  pid_t child =
      fork_child([&, &dr = data_reader, &dw = data_writer, &cp = control_parent, &cc = control_child] {
        dw.close();
        cp.close();
        try {
          for (;;) {
            if (dr.recv_bytes().empty()) cc.send(0);
          }
        } catch (const mp::EOFError&) {
        }
      });
  data_reader.close();
  control_child.close();
  std::vector<std::byte> message(size, std::byte{0x5a});
  for (auto _ : state) data_writer.send_bytes(message);
  data_writer.send_bytes({});
  (void)control_parent.recv();
  data_writer.close();
  reap(child, state);
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(size));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PipeThroughput)
    ->ArgNames({"bytes", "duplex"})
    ->Args({4096, 1})
    ->Args({4096, 0})
    ->Args({1 << 20, 1})
    ->Args({1 << 20, 0})
    ->UseRealTime();

// A round trip over a Listener/Client connection: the child connects with
// Client<T>, the parent accepts, sends a number and gets it back plus one.
template <class T>
void BM_ListenerRoundTrip(benchmark::State& state) {
  mp::Listener listener("127.0.0.1:0", 1, std::string("bench key"));
  const std::string address = listener.address();
  pid_t child = fork_child([&] {
    listener.close();
    auto conn = mp::Client<T>(address, std::string("bench key"));
    try {
      for (;;) {
        T n = conn.recv();
        if constexpr (std::is_same_v<T, mp::py::Object>) {
          conn.send(n.as_int() + 1);
        } else {
          conn.send(n + 1);
        }
      }
    } catch (const mp::EOFError&) {
    }
  });
  auto conn = listener.accept<T>();
  T n = std::int64_t{0};
  for (auto _ : state) {
    conn.send(n);
    n = conn.recv();
  }
  benchmark::DoNotOptimize(n);
  conn.close();
  reap(child, state);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ListenerRoundTrip<std::int64_t>)->Name("BM_ListenerRoundTripInt")->UseRealTime();
BENCHMARK(BM_ListenerRoundTrip<mp::py::Object>)->Name("BM_ListenerRoundTripPyObject")->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
