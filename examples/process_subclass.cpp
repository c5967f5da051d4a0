// process_subclass — subclass style, as in
//
//   class Squarer(Process):
//       def __init__(self, n): super().__init__(); self.n = n
//       def run(self): print(f'{self.name}: {self.n}^2 = {self.n * self.n}')
#include <cstdio>
#include <vector>

#include "mp/process.hpp"

class Squarer : public mp::Process {
 public:
  explicit Squarer(int n) : n_(n) {}

 protected:
  void run() override { std::printf("%s: %d^2 = %d\n", name().c_str(), n_, n_ * n_); }

 private:
  int n_;
};

int main() {
  std::vector<Squarer> squarers;
  for (int n = 1; n <= 3; ++n) squarers.emplace_back(n);
  for (auto& s : squarers) s.start();
  int failed = 0;
  for (auto& s : squarers) {
    s.join();
    if (s.exitcode() != 0) ++failed;
  }
  std::printf("%d subclassed processes joined, %d failed\n", static_cast<int>(squarers.size()), failed);
  return failed;
}
