// mp/detail/connection_codec.hpp — codec<Connection<T>>: a Pipe end (or any
// Connection whose transport implements ConnectionCore::travel) passed as an
// argument of a Process started by forkserver or spawn
// (mp/detail/handle_codec.hpp). The end's fds travel in the launch's fd
// channel, its metadata and rebuild factory in the bytes; the child's end is
// the same end (both processes hold it, as after fork: close the one you do
// not use). Outside a launch a Connection is refused. Included at the end of
// mp/connection.hpp.
#pragma once

#include <string>

#include "mp/connection.hpp"
#include "mp/detail/connection_core.hpp"
#include "mp/detail/handle_codec.hpp"

namespace mp {

template <class T>
struct codec<Connection<T>> {
  static constexpr bool shared_by_inheritance = true;
  static void encode(Writer& writer, const Connection<T>& connection) {
    detail::put_connection(writer, detail::ConnectionAccess::core(connection), "mp::Connection");
  }
  static Connection<T> make(Reader& reader) {
    return detail::ConnectionAccess::wrap<Connection<T>>(detail::take_connection(reader, "mp::Connection"));
  }
  static void decode(Reader& reader, Connection<T>& connection) { connection = make(reader); }
  static void signature(std::string& out) {
    out += "handle<mp::Connection<";
    detail::append_signature<T>(out);
    out += ">>";
  }
};

}  // namespace mp
