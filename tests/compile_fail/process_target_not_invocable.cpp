// The target must be callable with the (decay-copied) arguments; the error says so.
// expect-error: the target cannot be called with these arguments
#include <string>

#include "mp/process.hpp"

void greet(const std::string& name) { (void)name; }

int main() {
  mp::Process p(greet, 42);  // an int is not a std::string
  (void)p;
}
