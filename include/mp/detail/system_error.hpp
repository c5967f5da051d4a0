// mp/detail/system_error.hpp — turning errno into an mp exception at the edge.
//
// Messages have one shape: "call(object): reason", e.g.
// "futex_wait(queue jobs): Interrupted system call".
#pragma once

#include <string>
#include <string_view>

#include "mp/detail/export.hpp"

namespace mp::detail {

// system_message(call, object, err): "call(object): strerror(err)".
MP_API std::string system_message(std::string_view call, std::string_view object, int err);

// throw_system_error(call, object, err): throws mp::Error with system_message().
[[noreturn]] MP_API void throw_system_error(std::string_view call, std::string_view object, int err);

}  // namespace mp::detail
