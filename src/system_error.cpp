#include "mp/detail/system_error.hpp"

#include <cstring>

#include "mp/errors.hpp"

namespace mp::detail {

std::string system_message(std::string_view call, std::string_view object, int err) {
  std::string message(call);
  message += '(';
  message += object;
  message += "): ";
  message += std::strerror(err);
  return message;
}

void throw_system_error(std::string_view call, std::string_view object, int err) {
  throw Error(system_message(call, object, err));
}

}  // namespace mp::detail
