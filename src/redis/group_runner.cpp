// src/redis/group_runner.cpp — run_group(): what a worker host's local worker process runs
// (see pool_records.hpp). Runs in the local pool's worker processes, forks of the host.
#include <cxxabi.h>

#include <chrono>
#include <cstdlib>
#include <exception>
#include <typeinfo>

#include "mp/redis/pool.hpp"
#include "mp/redis/task.hpp"
#include "pool_records.hpp"

namespace mp::redis::detail {

namespace {

using Status = TaskState::Status;

// run_task(function, arguments, items): one call, or a chunk of `items` calls (the first
// exception fails the chunk).
std::vector<std::byte> run_task(const std::string& function, const std::vector<std::byte>& arguments,
                                std::int32_t items) {
  TaskInvoker invoke = find_task(function);
  if (items == 0) return invoke(arguments);
  std::vector<std::vector<std::byte>> results;
  for (const auto& call : mp::decode<std::vector<std::vector<std::byte>>>(arguments))
    results.push_back(invoke(call));
  return mp::encode(results);
}

// describe_current_exception(outcome): the exception being handled, as the local pool's
// RemoteError describes it: the demangled dynamic type, and what().
void describe_current_exception(MemberOutcome& outcome) {
  const std::type_info* type = abi::__cxa_current_exception_type();
  outcome.error_message = "(not derived from std::exception)";
  try {
    throw;
  } catch (const std::exception& error) {
    type = &typeid(error);
    outcome.error_message = error.what();
  } catch (...) {  // NOLINT(bugprone-empty-catch): described by its type alone
  }
  int status = -1;
  char* demangled = type != nullptr ? abi::__cxa_demangle(type->name(), nullptr, nullptr, &status) : nullptr;
  outcome.error_type = status == 0 && demangled != nullptr
                           ? demangled
                           : (type != nullptr ? type->name() : "unknown exception");
  std::free(demangled);  // NOLINT(cppcoreguidelines-no-malloc): __cxa_demangle's buffer
}

}  // namespace

std::vector<MemberOutcome> run_group(const std::vector<GroupMember>& members) {
  std::vector<MemberOutcome> outcomes(members.size());
  for (std::size_t i = 0; i < members.size(); ++i) {
    auto started = std::chrono::steady_clock::now();
    try {
      outcomes[i].payload = run_task(members[i].function, members[i].arguments, members[i].items);
      outcomes[i].status = static_cast<std::int32_t>(Status::ok);
    } catch (...) {
      outcomes[i].status = static_cast<std::int32_t>(Status::remote_error);
      describe_current_exception(outcomes[i]);
    }
    outcomes[i].micros =
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started)
            .count();
  }
  return outcomes;
}

}  // namespace mp::redis::detail
