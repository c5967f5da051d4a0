// src/redis/task_registry.cpp — the MP_TASK registry (see mp/redis/task.hpp).
#include <map>
#include <mutex>
#include <string>

#include "mp/errors.hpp"
#include "mp/redis/task.hpp"

namespace mp::redis::detail {

namespace {

struct Entry {
  const void* fn = nullptr;
  TaskInvoker invoker = nullptr;
  bool clash = false;  // two functions under this name: refuse it
};

struct Registry {
  std::mutex mutex;
  std::map<std::string, Entry, std::less<>> by_name;  // guarded by mutex
  std::map<const void*, std::string> by_function;     // guarded by mutex
};

// Built on first use: MP_TASK runs during static initialisation, in any order.
Registry& registry() {
  static auto* r = new Registry();  // never freed: registrations may outlive static destructors
  return *r;
}

}  // namespace

bool register_task(std::string_view name, const void* fn, TaskInvoker invoker) noexcept {
  try {
    auto& r = registry();
    std::lock_guard lock(r.mutex);
    auto [it, inserted] = r.by_name.try_emplace(std::string(name), Entry{fn, invoker, false});
    if (!inserted && it->second.fn != fn) it->second.clash = true;
    r.by_function.try_emplace(fn, std::string(name));
  } catch (...) {  // NOLINT(bugprone-empty-catch): out of memory before main; lookups will say it is missing
  }
  return true;
}

std::string task_name(const void* fn) {
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  auto it = r.by_function.find(fn);
  if (it == r.by_function.end()) {
    throw mp::ValueError(
        "mp::redis::Pool: this function is not a registered task; register it at namespace scope with "
        "MP_TASK(fn) in the submitting program and in every worker program");
  }
  return it->second;
}

TaskInvoker find_task(std::string_view name) {
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  auto it = r.by_name.find(name);
  if (it == r.by_name.end()) {
    throw mp::ValueError("mp::redis: no task named \"" + std::string(name) +
                         "\" is registered in this program; register it with MP_TASK(" + std::string(name) +
                         ") in the worker program too");
  }
  if (it->second.clash) {
    throw mp::ValueError("mp::redis: two different functions are registered as task \"" + std::string(name) +
                         "\"; give them distinct names");
  }
  return it->second.invoker;
}

}  // namespace mp::redis::detail
