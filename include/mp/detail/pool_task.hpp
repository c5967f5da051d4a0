// mp/detail/pool_task.hpp — what a Pool task is on the wire, and the
// trampolines that run it in a worker.
//
// A task (one chunk of a map, or one apply) travels as
//   (address of run_chunk<F, Item, Style>, item count, payload)
// where payload = the callable's state, then each item, in mp's codec:
//   * the callable: trivially copyable -> its sizeof(F) object bytes (a function
//     pointer is the owner's address, which the worker maps to its own with
//     code_in_this_run(), as it does the trampoline's; other addresses in a
//     callable's state are copied as they are); otherwise its codec
//     encoding (a function object with a serialize() member, say);
//   * each item: codec-encoded (map: the element; starmap: the tuple whose
//     members are spread into the call; apply: the tuple of arguments).
// The worker calls the trampoline at that address with the payload; it decodes
// the callable and the items, calls the callable on each item in order, and
// appends each result's encoding (nothing for void) to the result bytes.
//
// Checks are static_asserts with messages that say what to change; they fire
// in the Pool member the user called (see pool.hpp).
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "mp/codec.hpp"
#include "mp/detail/export.hpp"
#include "mp/errors.hpp"

namespace mp::detail {

// code_in_this_run(owner_address): a code address as the pool's owner knows
// it (a trampoline below, a function pointer callable), as it is in this
// process. In the owner, and in the workers of a pool whose zygote was forked
// from it, the same address. In a worker of a pool started by forkserver or
// spawn, another run of the same binary (ASLR), it is relocated by loaded
// object and offset, as a Process target's CodeAddress is (launch.hpp).
// Throws mp::Error when no object loaded here holds it (a library the owner
// loaded with dlopen, say). Defined in src/after_fork/pool_zygote.cpp.
MP_API const void* code_in_this_run(const void* owner_address);

// ChunkRunner: the trampoline signature. Throws whatever the task throws
// (the worker turns it into a RemoteError) or CodecError on malformed bytes.
using ChunkRunner = void (*)(std::span<const std::byte> payload, std::uint32_t item_count,
                             std::vector<std::byte>& results);

// How an item becomes the call: f(item), or std::apply(f, item).
enum class CallStyle { single, spread };

// callable_travels<F>: F can be rebuilt in a worker from bytes.
template <class F>
inline constexpr bool callable_travels = std::is_trivially_copyable_v<F> || Encodable<F>;

// invoke_result_or_void<F, Args...>: std::invoke_result_t, or void when F
// cannot be called with Args (so that a failed check gives one message).
template <bool Invocable, class F, class... Args>
struct invoke_result_or_void {
  using type = void;
};
template <class F, class... Args>
struct invoke_result_or_void<true, F, Args...> {
  using type = std::invoke_result_t<F, Args...>;
};

template <class F, class... Args>
struct call_with {
  static constexpr bool invocable = std::is_invocable_v<F&, Args&...>;
  using raw_result = typename invoke_result_or_void<invocable, F&, Args&...>::type;
};

// spread_traits<F, Item>: calling f with the members of a tuple, pair or array.
template <class F, class Item>
struct spread_traits {
  static constexpr bool spreadable = false;
  static constexpr bool invocable = false;
  using raw_result = void;
};
template <class F, class... Ts>
struct spread_traits<F, std::tuple<Ts...>> : call_with<F, Ts...> {
  static constexpr bool spreadable = true;
};
template <class F, class A, class B>
struct spread_traits<F, std::pair<A, B>> : call_with<F, A, B> {
  static constexpr bool spreadable = true;
};
template <class F, class T, std::size_t N>
struct spread_traits<F, std::array<T, N>> {
  template <std::size_t... I>
  static auto pick(std::index_sequence<I...>) -> call_with<F, std::enable_if_t<(I >= 0), T>...>;
  using base = decltype(pick(std::make_index_sequence<N>{}));
  static constexpr bool spreadable = true;
  static constexpr bool invocable = base::invocable;
  using raw_result = typename base::raw_result;
};

// call_traits<F, Item, Style>: can the worker make the call, and what it returns.
template <class F, class Item, CallStyle Style>
struct call_traits : call_with<F, Item> {
  static constexpr bool spreadable = true;
};
template <class F, class Item>
struct call_traits<F, Item, CallStyle::spread> : spread_traits<F, Item> {};

// call_result_t<F, Item, Style>: what one call returns, as it travels back
// (references and cv dropped; void stays void).
template <class F, class Item, CallStyle Style>
using call_result_t = std::remove_cvref_t<typename call_traits<F, Item, Style>::raw_result>;

// check_task<F, Item, Style>(): the compile-time rules of a Pool task, each
// with a message that says what to change. Returns whether all hold, so the
// caller can skip the code that would only add more errors.
template <class F, class Item, CallStyle Style>
constexpr bool check_task() {
  static_assert(!std::is_pointer_v<F> || std::is_function_v<std::remove_pointer_t<F>> || Encodable<F>,
                "mp::Pool: the callable is a data pointer; pass a function, a lambda or a function object");
  static_assert(callable_travels<F>,
                "mp::Pool: the callable cannot travel to a worker process: it must be a function pointer, a "
                "capture-less lambda, or a function object whose state is trivially copyable or "
                "codec-serialisable (a serialize() member); a lambda capturing a std::string, a std::vector, "
                "a std::function or a smart pointer is none of these (capture plain values, or pass the data "
                "as an argument)");
  static_assert(Encodable<Item>,
                "mp::Pool: an argument (or range item) is not codec-serialisable: arguments travel to the "
                "worker by mp's codec; make the type trivially copyable, give it a serialize() member or "
                "specialise mp::codec<T>");
  static_assert(call_traits<F, Item, Style>::spreadable,
                "mp::Pool::starmap: each item must be a std::tuple, std::pair or std::array whose members "
                "become the arguments");
  constexpr bool invocable = call_traits<F, Item, Style>::invocable;
  static_assert(!call_traits<F, Item, Style>::spreadable || invocable,
                "mp::Pool: the callable cannot be called with these arguments (map: one range item; starmap: "
                "the members of one tuple; apply: the arguments given)");
  using Raw = typename call_traits<F, Item, Style>::raw_result;
  using Result = std::remove_cvref_t<Raw>;
  constexpr bool result_ok = std::is_void_v<Result> || Encodable<Result>;
  static_assert(!invocable || result_ok,
                "mp::Pool: the callable's result is not codec-serialisable: results travel back from the "
                "worker by mp's codec; return a trivially copyable type, a std container of them, or a type "
                "with a serialize() member");
  return callable_travels<F> && Encodable<Item> && call_traits<F, Item, Style>::spreadable && invocable &&
         result_ok;
}

// put_callable(writer, f) / take_callable<F>(reader): the callable's state.
template <class F>
void put_callable(Writer& writer, const F& f) {
  if constexpr (std::is_trivially_copyable_v<F>) {
    writer.bytes(std::addressof(f), sizeof(F));
  } else {
    writer.value(f);
  }
}

template <class F>
F take_callable(Reader& reader) {
  if constexpr (std::is_trivially_copyable_v<F>) {
    // bit_cast needs no default constructor (a lambda with captures has none)
    // and gives a real F object from its object bytes.
    std::array<std::byte, sizeof(F)> raw;
    reader.bytes(raw.data(), sizeof(F), "callable");
    return std::bit_cast<F>(raw);
  } else {
    F f{};
    reader.value(f);
    return f;
  }
}

// run_chunk<F, Item, Style>: the trampoline. Runs in a worker.
template <class F, class Item, CallStyle Style>
void run_chunk(std::span<const std::byte> payload, std::uint32_t item_count,
               std::vector<std::byte>& results) {
  using Result = call_result_t<F, Item, Style>;
  Reader reader(payload, "pool task");
  F f = take_callable<F>(reader);
  if constexpr (std::is_pointer_v<F> && std::is_function_v<std::remove_pointer_t<F>>) {
    // A function pointer is the owner's address (see code_in_this_run()).
    f = reinterpret_cast<F>(const_cast<void*>(code_in_this_run(reinterpret_cast<const void*>(f))));
  }
  Writer writer(results);
  for (std::uint32_t i = 0; i < item_count; ++i) {
    Item item{};
    reader.value(item);
    auto call = [&]() -> decltype(auto) {
      if constexpr (Style == CallStyle::single) {
        return std::invoke(f, item);
      } else {
        return std::apply(f, item);
      }
    };
    if constexpr (std::is_void_v<Result>) {
      call();
    } else {
      const Result& result = call();
      writer.value(result);
    }
  }
  reader.finish();
}

// take_results<R>(job bytes, count, out): decodes count results appended by run_chunk.
template <class R>
void take_results(std::span<const std::byte> bytes, std::uint32_t count, std::vector<R>& out) {
  Reader reader(bytes, "pool result");
  for (std::uint32_t i = 0; i < count; ++i) {
    R value{};
    reader.value(value);
    out.push_back(std::move(value));
  }
  reader.finish();
}

}  // namespace mp::detail
