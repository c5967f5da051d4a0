// A Process subclass moved into a plain mp::Process would lose its run() and
// fields (issue 9, defect 10): constructing a Process from a subclass object
// must not compile outside the subclass's own constructors.
// expect-error: Subclass_would_be_sliced_keep_it_by_pointer
#include <vector>

#include "mp/process.hpp"

struct Squarer : mp::Process {
  explicit Squarer(int n) : n(n) {}
  void run() override {}
  int n;
};

int main() {
  std::vector<mp::Process> v;
  v.emplace_back(Squarer(3));
}
