// mp/redis/task.hpp — MP_TASK: functions a Pool across machines may run, by name.
//
// C++ cannot send a function to another machine, so a task travels as the
// name of a registered function plus its encoded arguments, as Celery's task
// names do. Both the submitting program and the worker programs register the
// function, at namespace scope:
//
//   namespace app { int square(int x) { return x * x; } }
//   MP_TASK(app::square);                       // registered as "app::square"
//
//   auto name = mp::redis::detail::task_name(&app::square);          // "app::square"
//   auto bytes = mp::redis::detail::find_task(name)(mp::encode(std::tuple{7}));
//   int r = mp::decode<int>(bytes);              // 49
//
// The name is the function's qualified name as the compiler spells it, so it is
// the same in every program built from the same source. Arguments and the
// result travel by the codec (decayed parameter types, as a std::tuple); a
// void function's result is empty.
//
// Errors: task_name() of a function never registered, and find_task() of an
// unknown name, throw mp::ValueError saying to register it with MP_TASK; two
// different functions registered under one name make that name unusable
// (ValueError naming the clash) rather than running the wrong one.
//
// Safety: registration happens during static initialisation (before main);
// lookups from any thread. Lifetime: the registry lives for the program.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "mp/codec.hpp"
#include "mp/detail/export.hpp"

namespace mp::redis::detail {

// A registered task: decodes its arguments, runs the function, encodes its result.
using TaskInvoker = std::vector<std::byte> (*)(std::span<const std::byte> arguments);

// register_task(name, fn, invoker): called by MP_TASK before main; always true.
MP_API bool register_task(std::string_view name, const void* fn, TaskInvoker invoker) noexcept;
// task_name(fn): the name fn was registered under; ValueError if it never was.
[[nodiscard]] MP_API std::string task_name(const void* fn);
// find_task(name): the invoker registered under name; ValueError if none (or a clash).
[[nodiscard]] MP_API TaskInvoker find_task(std::string_view name);

template <class Signature>
struct TaskSignature;
template <class R, class... A>
struct TaskSignature<R (*)(A...)> {
  using Result = R;
  using Arguments = std::tuple<std::decay_t<A>...>;
};
template <class R, class... A>
struct TaskSignature<R (*)(A...) noexcept> : TaskSignature<R (*)(A...)> {};

template <auto Fn>
std::vector<std::byte> invoke_task(std::span<const std::byte> arguments) {
  using Signature = TaskSignature<decltype(Fn)>;
  auto args = mp::decode<typename Signature::Arguments>(arguments);
  if constexpr (std::is_void_v<typename Signature::Result>) {
    std::apply(Fn, std::move(args));
    return {};
  } else {
    return mp::encode(std::apply(Fn, std::move(args)));
  }
}

// qualified_name<Fn>(): "app::square", from the compiler's spelling of the template argument.
template <auto Fn>
constexpr std::string_view qualified_name() {
  std::string_view pretty =
      __PRETTY_FUNCTION__;  // gcc: "[with auto Fn = app::square; ...]", clang: "[Fn = &app::square]"
  auto start = pretty.find("Fn = ");
  if (start == std::string_view::npos) return pretty;
  start += 5;
  if (pretty[start] == '&') ++start;
  auto end = pretty.find_first_of(";]", start);
  return pretty.substr(start, end - start);
}

}  // namespace mp::redis::detail

#define MP_DETAIL_TASK_CONCAT2(a, b) a##b
#define MP_DETAIL_TASK_CONCAT(a, b) MP_DETAIL_TASK_CONCAT2(a, b)

// MP_TASK(fn): at namespace scope; registers fn under its qualified name.
#define MP_TASK(fn)                                                                            \
  [[maybe_unused]] static const bool MP_DETAIL_TASK_CONCAT(mp_task_registered_, __COUNTER__) = \
      ::mp::redis::detail::register_task(::mp::redis::detail::qualified_name<&(fn)>(),         \
                                         reinterpret_cast<const void*>(&(fn)),                 \
                                         &::mp::redis::detail::invoke_task<&(fn)>)
