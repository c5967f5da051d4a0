// tests/unit/python_peer.hpp — runs tests/helpers/python_peer.py with the
// machine's Python, isolated with -I so nothing in the tree shadows the
// standard library, as a SpawnedProgram (support/program.hpp).
#pragma once

#include <string>
#include <vector>

#include "support/program.hpp"

namespace mp::test {

// python_peer.py run with arguments.
class PythonPeer : public SpawnedProgram {
 public:
  explicit PythonPeer(const std::vector<std::string>& arguments) : SpawnedProgram(argv(arguments)) {}

 private:
  static std::vector<std::string> argv(const std::vector<std::string>& arguments) {
    std::vector<std::string> all{"/usr/bin/python3", "-I", MP_SOURCE_DIR "/tests/helpers/python_peer.py"};
    all.insert(all.end(), arguments.begin(), arguments.end());
    return all;
  }
};

}  // namespace mp::test
