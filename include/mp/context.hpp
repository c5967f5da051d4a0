// mp/context.hpp — start methods: how mp makes a child process (Python's
// multiprocessing contexts: "fork", "forkserver", "spawn").
//
//   int main(int argc, char** argv) {
//     mp::init(argc, argv);                                 // first line of main()
//     mp::set_start_method(mp::StartMethod::forkserver);    // safe with threads running
//     mp::Process p(square_and_print, 7);                   // a function pointer, codec arguments
//     p.start(); p.join();
//   }
//
// fork: the child is a copy of this process (any callable, the parent's
// memory). forkserver: a single-threaded server process, started from a quiet
// state (at init(), or on first use: forked when this process has one thread,
// else a fresh run of this program), forks every child; its pidfd comes back,
// so pid(), sentinel(), join(timeout), exitcode() (-S for signal S: the server
// reaps and reports the status), terminate(), kill(), is_alive() and mp::wait
// behave as under fork. spawn: the child is a fresh run of this program
// (/proc/self/exe); init() runs the target there and never returns. Under
// forkserver and spawn the target travels as a Pool task does (launch.hpp):
// what cannot travel fails to compile when the types say so (the
// Process(StartMethod, ...) constructor), else start() throws ProcessError
// saying why (spawn without init(), an unregistered subclass, a capturing
// lambda under a default start method that is not fork). Handles passed as
// arguments (Queue, JoinableQueue, SimpleQueue, Lock, RLock, Semaphore,
// BoundedSemaphore, Event, Condition, Barrier, Value, Array, Connection) are
// the same objects in the child, as under fork: their memfds (a Pipe end's
// socket) travel with the launch, by SCM_RIGHTS to the server or inherited
// across exec (mp/detail/handle_codec.hpp); at most 251 per forkserver start.
//
// Safety: every function may be called from any thread; set_start_method()
// before starting processes. Visibility: a forkserver child sees the program
// as it was when the server started (at init() or first use), a spawn child as
// it is at the start of main(); neither sees later changes in the parent's
// memory: share through mp's objects. Lifetime: the server dies with the
// process that started it (even by SIGKILL), and so do its daemon children;
// it is started at most once per process (a child that starts processes under
// forkserver gets its own).
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <type_traits>
#include <typeinfo>
#include <vector>

#include "mp/codec.hpp"
#include "mp/detail/export.hpp"
#include "mp/detail/launch.hpp"
#include "mp/process.hpp"

namespace mp {

// mp::init(argc, argv): the first line of main(). Remembers argv (spawn runs
// the program again with it) and starts the fork server from this quiet state
// if forkserver is, or may become, the start method (it always starts it:
// one idle process). In a child started by spawn it runs the child's target
// and ends the process: it never returns there.
MP_API void init(int argc, char** argv);

// mp::set_start_method(method, force): the method Process (and Pool) use when
// none is given. ProcessError if a Process was already started, unless force.
// Choosing explicitly (even fork) silences the fork-with-threads warning.
MP_API void set_start_method(StartMethod method, bool force = false);

// mp::get_start_method(): fork unless set.
[[nodiscard]] MP_API StartMethod get_start_method();

// mp::get_all_start_methods(): {fork, forkserver, spawn}.
[[nodiscard]] MP_API std::vector<StartMethod> get_all_start_methods();

// mp::parent_process(): in a child started by mp, the process that started it
// (name and pid); nullopt in the main process.
[[nodiscard]] MP_API std::optional<ProcessInfo> parent_process();

// mp::to_string(method): "fork", "forkserver", "spawn".
[[nodiscard]] MP_API const char* to_string(StartMethod method) noexcept;

namespace detail {

struct MP_API ProcessAccess {
  static void run(Process& process) { process.run(); }
  static void adopt_current_identity(Process& process);  // its name/pid become current_process()'s
};

template <class T>
void encode_registered_process(const Process& object, std::vector<std::byte>& out, OutgoingFds& fds) {
  Writer writer(out, &fds);
  writer.value(static_cast<const T&>(object));
}

template <class T>
void run_registered_process(std::span<const std::byte> payload, IncomingFds& fds) {
  T object{};
  Reader reader(payload, "mp::Process subclass", &fds);
  reader.value(object);
  reader.finish();
  fds.release_unclaimed();
  ProcessAccess::adopt_current_identity(object);
  ProcessAccess::run(object);
}

template <class T>
bool register_process_type() {
  static_assert(std::is_base_of_v<Process, T>,
                "MP_REGISTER_PROCESS(Type): Type must derive from mp::Process");
  static_assert(std::is_default_constructible_v<T>,
                "MP_REGISTER_PROCESS(Type): Type must be default-constructible (the child makes one, then "
                "decodes its fields into it)");
  static_assert(
      Encodable<T>,
      "MP_REGISTER_PROCESS(Type): Type must be codec-serialisable: give it a member "
      "`template <class A> void serialize(A& ar) { ar(field1, field2); }` listing the fields its run() "
      "needs");
  register_process(RegisteredProcess{&typeid(T), &encode_registered_process<T>, &run_registered_process<T>});
  return true;
}

}  // namespace detail
}  // namespace mp

#define MP_DETAIL_CONCAT2(a, b) a##b
#define MP_DETAIL_CONCAT(a, b) MP_DETAIL_CONCAT2(a, b)
// MP_REGISTER_PROCESS(Type): at namespace scope; lets the Process subclass
// Type run under forkserver and spawn (Type: default-constructible, with a
// serialize() member naming the fields its run() needs).
#define MP_REGISTER_PROCESS(Type)                                                                          \
  namespace {                                                                                              \
  [[maybe_unused]] const bool MP_DETAIL_CONCAT(mp_registered_process_,                                     \
                                               __COUNTER__) = ::mp::detail::register_process_type<Type>(); \
  }
