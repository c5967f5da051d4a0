// A Process owns one child: it can be moved, never copied.
// expect-error: (use of deleted function|call to deleted constructor)
#include "mp/process.hpp"

int main() {
  mp::Process first([] {});
  mp::Process second(first);
  (void)second;
}
