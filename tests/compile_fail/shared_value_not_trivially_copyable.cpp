// mp::Value<T> shares T as raw bytes between processes: a T that is not
// trivially copyable (here std::string, which owns heap memory that another
// process cannot see) must not compile.
// expect-error: T must be trivially copyable
#include <string>

#include "mp/shared.hpp"

int main() {
  mp::Value<std::string> name;
  return static_cast<int>(name.value().size());
}
