// src/redis/cancel_watch.cpp — see cancel_watch.hpp.
#include "cancel_watch.hpp"

#include <string_view>

namespace mp::redis::impl {

namespace {

// split_ids(text, out): the newline-separated ids of one cancel message.
void split_ids(std::string_view text, std::vector<std::string>& out) {
  while (!text.empty()) {
    auto end = text.find('\n');
    if (end == std::string_view::npos) end = text.size();
    if (end > 0) out.emplace_back(text.substr(0, end));
    text.remove_prefix(std::min(end + 1, text.size()));
  }
}

}  // namespace

std::vector<std::string> CancelWatch::subscribe() {
  const std::string what = "mp::redis::serve: watching for cancelled tasks";
  auto deadline = Deadline::after(std::chrono::seconds(1));
  subscriber_.send(Command{"SUBSCRIBE", prefix_ + "cancel"}, deadline);
  Reply confirmed = subscriber_.receive(deadline);
  if (!confirmed) throw LinkFailure("no reply to SUBSCRIBE");
  (void)array_size(confirmed.get(), what);
  Reply marked = commands_.run1(Command{"HKEYS", prefix_ + "cancelled"}, deadline);
  std::vector<std::string> ids;
  for (std::size_t i = 0, n = array_size(marked.get(), what); i < n; ++i)
    ids.push_back(text_of(element_of(marked.get(), i, what), what));
  return ids;
}

std::vector<std::string> CancelWatch::poll() {
  const std::string what = "mp::redis::serve: a cancel message";
  std::vector<std::string> ids;
  try {
    if (!subscriber_.connected()) {
      auto now = std::chrono::steady_clock::now();
      if (now < next_try_) return ids;
      next_try_ = now + std::chrono::seconds(1);
      ids = subscribe();
    }
    while (Reply message = subscriber_.receive(Deadline::after(std::chrono::milliseconds(0)))) {
      // ["message", channel, "id\nid..."]
      if (array_size(message.get(), what) != 3 ||
          text_of(element_of(message.get(), 0, what), what) != "message")
        continue;
      split_ids(text_of(element_of(message.get(), 2, what), what), ids);
    }
  } catch (const std::exception&) {  // a lost link, or a reply not understood: subscribe again later
    subscriber_.disconnect();
  }
  return ids;
}

void CancelWatch::stopping(const std::vector<std::string>& ids) {
  if (ids.empty()) return;
  Command mark{"HSET", prefix_ + "cancelled"};
  for (const auto& id : ids) mark.add(id).add("stopping");
  try {
    (void)commands_.run1(mark, Deadline::after(std::chrono::seconds(1)));
  } catch (const std::exception&) {  // NOLINT(bugprone-empty-catch): best effort (see the header)
    commands_.disconnect();
  }
}

void CancelWatch::forget(const std::vector<std::string>& ids) {
  if (ids.empty()) return;
  Command remove{"HDEL", prefix_ + "cancelled"};
  for (const auto& id : ids) remove.add(id);
  try {
    (void)commands_.run1(remove, Deadline::after(std::chrono::seconds(1)));
  } catch (const std::exception&) {  // NOLINT(bugprone-empty-catch): best effort (see the header)
    commands_.disconnect();
  }
}

}  // namespace mp::redis::impl
