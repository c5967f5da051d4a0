// mp/detail/queue_codec.hpp — codec<Queue<T>>, codec<JoinableQueue<T>> and
// codec<SimpleQueue<T>>: a queue passed as an argument of a Process started by
// forkserver or spawn (mp/detail/handle_codec.hpp). The ring's memfd travels
// in the launch's fd channel; the child maps it again and gets the same queue
// (its own close() state: a new process has not closed it). Outside a launch
// a queue is refused, as Python refuses to pickle one ("Queue objects should
// only be shared between processes through inheritance"). Included at the end
// of mp/queue.hpp.
#pragma once

#include <string>
#include <type_traits>

#include "mp/detail/handle_codec.hpp"
#include "mp/queue.hpp"

namespace mp {
namespace detail {
template <class Q>
struct queue_handle : std::false_type {};
template <class T>
struct queue_handle<Queue<T>> : std::true_type {
  using item = T;
  static constexpr const char* name = "mp::Queue";
};
template <class T>
struct queue_handle<JoinableQueue<T>> : std::true_type {
  using item = T;
  static constexpr const char* name = "mp::JoinableQueue";
};
}  // namespace detail

template <class Q>
requires(detail::queue_handle<Q>::value) struct codec<Q> {
  static constexpr bool shared_by_inheritance = true;
  static constexpr const char* kType = detail::queue_handle<Q>::name;
  static void encode(Writer& writer, const Q& queue) {
    const detail::Ring& ring = queue.ring_;
    detail::put_region(writer, ring.fd(), 0, ring.mapped_bytes(), kType);
  }
  static Q make(Reader& reader) {
    auto [region, offset] = detail::take_region(reader, kType, detail::kRingDataOffset, 4096);
    if (offset != 0) reader.fail("a queue's ring starts its region");
    return Q(detail::AdoptTag{}, detail::Ring::adopt(std::move(region)));
  }
  static void decode(Reader& reader, Q& queue) { queue = make(reader); }
  static void signature(std::string& out) {
    out += "handle<";
    out += kType;
    out += "<";
    detail::append_signature<typename detail::queue_handle<Q>::item>(out);
    out += ">>";
  }
};

template <class T>
struct codec<SimpleQueue<T>> {
  static constexpr bool shared_by_inheritance = true;
  static void encode(Writer& writer, const SimpleQueue<T>& queue) {
    codec<Queue<T>>::encode(writer, queue.queue_);
  }
  static SimpleQueue<T> make(Reader& reader) { return SimpleQueue<T>(codec<Queue<T>>::make(reader)); }
  static void decode(Reader& reader, SimpleQueue<T>& queue) { queue = make(reader); }
  static void signature(std::string& out) {
    out += "handle<mp::SimpleQueue<";
    detail::append_signature<T>(out);
    out += ">>";
  }
};

}  // namespace mp
