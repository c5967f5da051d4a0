// src/redis/pool_records.hpp — what mp::redis::Pool and serve() send each other (private).
//
// A task record is an item of the JoinableQueue `name` (submitters put, worker hosts get);
// a result record is an item of the submitter's own Queue `reply_to`. Both are codec
// structs, so a queue holding records of another layout is refused by its type signature
// (ValueError) instead of being misread.
//
// Attempts are counted by the task queue itself (its max_deliveries, which the submitter
// sets to PoolOptions::max_attempts): a delivery fails when the host holding the task dies
// (its lease runs out: mp2_reap) or when the host's local worker died or was killed at its
// timeout (QueueCore::task_failed: mp2_fail). At max_attempts the queue keeps the task as a
// dead letter: the original record when a host died, a copy with `failure` set when a host
// saw it fail. A submitter watches the dead letters for the tasks it still waits for.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace mp::redis::detail {

struct TaskRecord {
  std::string id;                    // "<submitter>:<n>", unique across submitters
  std::string function;              // the MP_TASK name
  std::vector<std::byte> arguments;  // items == 0: one encoded argument tuple; else a codec vector
  std::int32_t items = 0;            // of `items` of them (a chunk: its result is a vector of results)
  std::string reply_to;              // the submitter's result queue
  std::int32_t max_attempts = 1;
  std::int64_t task_timeout_ms = 0;  // 0: none
  // In a dead letter kept by a worker host: the TaskState::Status it failed with, and why;
  // 0 in every record a submitter puts (and in a dead letter whose host died).
  std::int32_t failure = 0;
  std::string failure_message;
  template <class Archive>
  void serialize(Archive& archive) {
    archive(id, function, arguments, items, reply_to, max_attempts, task_timeout_ms, failure,
            failure_message);
  }
};

struct ResultRecord {
  std::string id;
  std::int32_t status = 0;  // TaskState::Status
  std::vector<std::byte> payload;
  std::string error_type;  // RemoteError::type_name()
  std::string error_message;
  template <class Archive>
  void serialize(Archive& archive) {
    archive(id, status, payload, error_type, error_message);
  }
};

// One item of a submitter's result queue: every result a host had for that submitter when it
// sent (one queue item, so one put and one get, for many results).
struct ResultBatch {
  std::vector<ResultRecord> results;
  template <class Archive>
  void serialize(Archive& archive) {
    archive(results);
  }
};

// What a host hands its local pool: one local job runs one or several tasks (a group), each
// in its own try/catch, so that an exception stays the task's own (RemoteError); only a
// process death or a timeout fails the whole local job (the host then runs the group's
// members one by one: serve.cpp).
struct GroupMember {
  std::string function;
  std::vector<std::byte> arguments;
  std::int32_t items = 0;
  template <class Archive>
  void serialize(Archive& archive) {
    archive(function, arguments, items);
  }
};

struct MemberOutcome {
  std::int32_t status = 0;  // TaskState::Status: ok or remote_error
  std::vector<std::byte> payload;
  std::string error_type, error_message;
  std::int64_t micros = 0;  // how long it ran, for the host's grouping and window
  template <class Archive>
  void serialize(Archive& archive) {
    archive(status, payload, error_type, error_message, micros);
  }
};

// run_group(members): runs in a local worker process: each member in turn (its registered
// function), each in its own try/catch (an exception: remote_error with its demangled type and
// what(), as the local pool's RemoteError), each timed. group_runner.cpp.
std::vector<MemberOutcome> run_group(const std::vector<GroupMember>& members);

}  // namespace mp::redis::detail
