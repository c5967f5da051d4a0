// mp/detail/launch.hpp — how a Process's target travels to a child that is not
// a fork of the process that made it (start methods "forkserver" and "spawn").
//
// A launch is (entry, payload): `entry` is the trampoline
// run_travelled_target<F, Args...> (or run_registered<T> for a subclass
// registered with MP_REGISTER_PROCESS), sent as a CodeAddress: the index of the
// loaded object (executable or shared library) that holds it and the offset in
// it, so it is valid in every run of the same binary, ASLR or not; `payload` is
// the callable's state then the arguments, in mp's codec (a function pointer
// travels as a CodeAddress too). The child calls the entry with the payload;
// it decodes and calls target(args...).
//
// What can travel is what Pool accepts (see pool_task.hpp): a function
// pointer, a capture-less lambda, a function object whose state is trivially
// copyable or codec-serialisable; arguments that are codec-serialisable
// (decoded into default-made objects, or made by their codec), and handles on
// shared objects (Queue, Lock and the other primitives, Value, Array,
// Connection): their fds travel beside the payload in the launch's fd channel
// (mp/detail/codec_fds.hpp), and the entry gets the received fds with the
// payload. The child shares the very objects the parent passed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "mp/codec.hpp"
#include "mp/detail/codec_fds.hpp"
#include "mp/detail/export.hpp"
#include "mp/detail/pool_task.hpp"

namespace mp {
class Process;
}

namespace mp::detail {

// CodeAddress: a function's address that stays valid across exec of the same
// binary: which loaded object holds it (its index in dl_iterate_phdr's order,
// which is the load order) and the offset from that object's base.
struct CodeAddress {
  std::uint32_t object = UINT32_MAX;  // UINT32_MAX: not found
  std::uint32_t reserved = 0;
  std::uint64_t offset = 0;
};
static_assert(sizeof(CodeAddress) == 16);

// code_address_of(function): its CodeAddress (object UINT32_MAX if no loaded
// object holds it). code_pointer_from(address): the address in this run, or
// nullptr. Both noexcept.
MP_API CodeAddress code_address_of(const void* function) noexcept;
MP_API const void* code_pointer_from(CodeAddress address) noexcept;

// The trampoline a child calls with the payload and the fds that came with
// it (handles adopt theirs; the rest are closed before the target runs).
// Throws what the target throws.
using LaunchEntry = void (*)(std::span<const std::byte> payload, IncomingFds& fds);

// LaunchArgument<T>: T can be a launch argument: encodable, or a handle whose
// codec makes it in the child (codec<T>::make: Barrier, Array, Connection
// have no default constructor).
template <class T>
concept LaunchArgument = HasCodec<T> &&(Encodable<T> || MadeByCodec<T>);

template <class F>
inline constexpr bool is_function_pointer_v =
    std::is_pointer_v<F>&& std::is_function_v<std::remove_pointer_t<F>>;

// target_travels<F, Args...>: the target and its arguments can be rebuilt in a
// child from bytes.
template <class F, class... Args>
inline constexpr bool target_travels = callable_travels<F> && (LaunchArgument<Args> && ...);

template <class F>
void put_travelling_callable(Writer& writer, const F& f) {
  if constexpr (is_function_pointer_v<F>) {
    CodeAddress address = code_address_of(reinterpret_cast<const void*>(f));
    writer.bytes(&address, sizeof address);
  } else {
    put_callable(writer, f);
  }
}

template <class F>
F take_travelling_callable(Reader& reader) {
  if constexpr (is_function_pointer_v<F>) {
    CodeAddress address;
    reader.bytes(&address, sizeof address, "function");
    const void* pointer = code_pointer_from(address);
    if (pointer == nullptr) throw CodecError("mp::Process: the target function is not in this program");
    return reinterpret_cast<F>(const_cast<void*>(pointer));
  } else {
    return take_callable<F>(reader);
  }
}

// run_travelled_target<F, Args...>: the trampoline of a target-style Process.
template <class F, class... Args>
void run_travelled_target(std::span<const std::byte> payload, IncomingFds& fds) {
  Reader reader(payload, "mp::Process target", &fds);
  F f = take_travelling_callable<F>(reader);
  // Braces: the arguments are decoded left to right, in the order they were written.
  std::tuple<Args...> arguments{decode_new<Args>(reader)...};
  reader.finish();
  fds.release_unclaimed();
  std::apply([&f](auto&... each) { std::invoke(std::move(f), std::move(each)...); }, arguments);
}

// encode_target(out, fds, f, args...): the payload of run_travelled_target<F,
// Args...>; the handles among the arguments add their fds to `fds`.
template <class F, class... Args>
void encode_target(std::vector<std::byte>& out, OutgoingFds& fds, const F& f, const Args&... arguments) {
  Writer writer(out, &fds);
  put_travelling_callable(writer, f);
  (codec<Args>::encode(writer, arguments), ...);
}

// A Process subclass registered with MP_REGISTER_PROCESS: how to encode one
// and the trampoline that decodes it and calls its run() in the child.
struct RegisteredProcess {
  const std::type_info* type = nullptr;
  void (*encode)(const Process& object, std::vector<std::byte>& out, OutgoingFds& fds) = nullptr;
  LaunchEntry entry = nullptr;
};
MP_API void register_process(const RegisteredProcess& registration);
[[nodiscard]] MP_API const RegisteredProcess* find_registered_process(const std::type_info& type) noexcept;

// stop_forkserver(): close this process's connection to its fork server and
// reap the server (its daemon children die with it). mp calls it at normal
// exit, after finishing the children; tests call it to leave nothing behind.
MP_API void stop_forkserver() noexcept;

}  // namespace mp::detail
