// pool_word_count: writes a directory of real text files in a temporary
// directory, counts the words of every file with pool.map (one file per
// task), merges the counts, prints the totals and removes the directory.
//   python: counts = pool.map(count_words, paths)
#include <stdlib.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "mp/pool.hpp"

namespace {

namespace fs = std::filesystem;
using Counts = std::map<std::string, std::uint64_t>;

// count_words(path): runs in a worker; reads the file and counts its words.
Counts count_words(const std::string& path) {
  Counts counts;
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  for (std::string word; in >> word;) ++counts[word];
  return counts;
}

const std::vector<std::string> kVocabulary = {"process", "queue", "lock",  "pool",    "pipe",  "fork",
                                              "worker",  "task",  "value", "barrier", "event", "semaphore"};

// write_corpus(dir, files): file i holds (i + 1) * 100 words, word j of it
// being kVocabulary[(i * 7 + j * j) % size]. Returns the counts we expect.
Counts write_corpus(const fs::path& dir, int files) {
  Counts expected;
  for (int i = 0; i < files; ++i) {
    std::ofstream out(dir / ("part-" + std::to_string(i) + ".txt"));
    const int words = (i + 1) * 100;
    for (int j = 0; j < words; ++j) {
      const std::string& word = kVocabulary[static_cast<std::size_t>(i * 7 + j * j) % kVocabulary.size()];
      out << word << ((j % 12 == 11) ? '\n' : ' ');
      ++expected[word];
    }
  }
  return expected;
}

}  // namespace

int main() {
  std::string pattern = (fs::temp_directory_path() / "mp-word-count-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    std::perror("mkdtemp");
    return 1;
  }
  const fs::path dir = pattern;
  constexpr int kFiles = 40;
  const Counts expected = write_corpus(dir, kFiles);

  std::vector<std::string> paths;
  for (const auto& entry : fs::directory_iterator(dir)) paths.push_back(entry.path().string());
  std::sort(paths.begin(), paths.end());

  Counts total;
  {
    mp::Pool pool(4);
    for (const Counts& counts : pool.map(count_words, paths)) {
      for (const auto& [word, n] : counts) total[word] += n;
    }
  }  // ~Pool: close() + join()
  fs::remove_all(dir);

  std::uint64_t words = 0;
  for (const auto& [word, n] : total) words += n;
  std::vector<std::pair<std::uint64_t, std::string>> ranked;
  for (const auto& [word, n] : total) ranked.emplace_back(n, word);
  std::sort(ranked.rbegin(), ranked.rend());
  std::printf("files: %zu\n", paths.size());
  std::printf("total words: %llu\n", static_cast<unsigned long long>(words));
  std::printf("distinct words: %zu\n", total.size());
  for (std::size_t i = 0; i < 3 && i < ranked.size(); ++i) {
    std::printf("  %-10s %llu\n", ranked[i].second.c_str(), static_cast<unsigned long long>(ranked[i].first));
  }
  const bool ok = total == expected && !fs::exists(dir);
  std::printf("counts %s, temporary directory removed: %s\n", total == expected ? "match" : "DO NOT match",
              fs::exists(dir) ? "no" : "yes");
  return ok ? 0 : 1;
}
