// mp/detail/message_format.hpp — how a Connection<T> turns a T into one
// message and back.
//
// By default a T travels in mp's codec (mp/codec.hpp). A header may
// specialise message_format<T> to give T another wire form; mp/py.hpp does so
// for py::Object, which travels as a pickle, the form Python's
// Connection.send()/recv() use. A specialisation has:
//   static constexpr bool specialised = true;
//   static void encode_into(std::vector<std::byte>& out, const T&);   // appends
//   static T decode(std::span<const std::byte> message);              // CodecError if not a T
//   static std::string name();                                        // for error messages
//
// Safety, Visibility, Lifetime: pure functions of their arguments.
#pragma once

namespace mp::detail {

template <class T>
struct message_format {
  static constexpr bool specialised = false;
};

}  // namespace mp::detail
