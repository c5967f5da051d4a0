// The example at the top of README.md, built and run by the tests so it stays true.
#include <mp/mp.hpp>

#include <iostream>
#include <string>
#include <vector>

void worker(mp::Queue<std::string> results, int n) { results.put("worker " + std::to_string(n) + " done"); }

int main() {
  mp::Queue<std::string> results;
  std::vector<mp::Process> workers;
  for (int n = 0; n < 4; ++n) workers.emplace_back(worker, results, n);
  for (auto& w : workers) w.start();
  for (int n = 0; n < 4; ++n) std::cout << results.get() << '\n';
  for (auto& w : workers) w.join();
}
