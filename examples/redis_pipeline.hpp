// examples/redis_pipeline.hpp — what redis_producer and redis_worker pass
// each other through Redis: jobs one way, results the other.
#pragma once

#include <cstdint>
#include <string>

struct Job {
  std::int32_t id = 0;
  std::string text;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(id, text);
  }
};

struct Result {
  std::int32_t id = 0;
  std::int64_t letters = 0;
  std::int32_t worker_pid = 0;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(id, letters, worker_pid);
  }
};
