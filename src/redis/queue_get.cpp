// src/redis/queue_get.cpp — QueueCore::get, in named steps.
//
//   run()              the loop: take what is ready; if nothing, wait one chunk; repeat until the
//                      deadline. A process whose last get had to wait starts with the wait.
//   take_ready()       one try (retried across lost links) to take what is there now:
//     JoinableQueue    LMOVE items -> my in-flight list (FIFO: right end), pipelined with HGET
//                      shutdown (and LLEN for the not-full hint of a bounded queue): native
//                      commands only, one round trip.
//     Queue            one function call removes and acknowledges at once (mp2_get 'take').
//   wait_for_item()    BLMOVE the same way for <= 500 ms (then look again: shutdown, reaping),
//                      pipelined with the acknowledgement (Queue) or the hint (bounded).
//   recover_lost_reply() after a lost link (JoinableQueue): more items in my in-flight list than I
//                      know I hold means the newest (left) one was moved for me and its reply lost.
//   deliver()          records what this process now holds (for task_done) and decodes nothing:
//                      the bytes go to the typed handle.
#include "mp/errors.hpp"
#include "queue_impl.hpp"

namespace mp::redis::detail {

using namespace mp::redis::impl;  // NOLINT(google-build-using-namespace): this file implements impl's users

namespace {

constexpr auto kBlockChunk = std::chrono::milliseconds(500);

// An item handed to this process: the reply that carries it and where in it the bytes are.
struct Taken {
  std::string cid;
  Reply reply;
  const redisReply* payload = nullptr;
};

class Getter {
 public:
  Getter(QueueCore::Impl& queue, Deadline deadline)
      : queue_(queue),
        state_(queue.local()),
        deadline_(deadline),
        retry_(queue.retry(deadline, "get()")),
        link_(state_.pool.take()),
        what_(queue.context("get()")) {}

  std::optional<std::vector<std::byte>> run() {
    bool wait_first = !deadline_.expired() && state_.last_get_waited.load(std::memory_order_relaxed);
    for (;;) {
      if (!wait_first) {
        if (auto taken = retry_([&] { return take_ready(); })) return deliver(std::move(*taken), false);
        if (deadline_.expired()) return std::nullopt;
      }
      wait_first = false;
      if (auto taken = retry_([&] { return wait_for_item(); })) return deliver(std::move(*taken), true);
      state_.last_get_waited.store(false, std::memory_order_relaxed);
    }
  }

 private:
  std::optional<Taken> take_ready() {
    std::string cid = queue_.current_cid(state_, *link_, retry_);
    if (auto lost = recover_lost_reply(cid)) return lost;
    return queue_.joinable ? take_joinable(cid) : take_plain(cid);
  }

  std::optional<Taken> take_joinable(const std::string& cid) {
    const auto& keys = queue_.keys;
    const bool bounded = queue_.maxsize > 0;
    std::vector<Command> pipeline{Command{"LMOVE", keys.items, keys.inflight(cid), "RIGHT", "LEFT"},
                                  Command{"HGET", keys.meta, "shutdown"}};
    if (bounded) pipeline.push_back(Command{"LLEN", keys.items});
    auto replies = link_->run(pipeline, retry_.reply_deadline());
    for (auto& r : replies) throw_if_error(r, what_);
    if (is_string(replies[0].get())) {
      if (bounded) queue_.hint_if_was_full(*link_, integer_of(replies[2].get(), what_), retry_);
      const redisReply* payload = replies[0].get();
      return Taken{cid, std::move(replies[0]), payload};
    }
    if (!is_nil(replies[0].get())) unexpected_reply(what_, "an item or nil", replies[0].get());
    if (!is_nil(replies[1].get())) shut_down();
    return std::nullopt;
  }

  std::optional<Taken> take_plain(const std::string& cid) {
    const auto& keys = queue_.keys;
    Reply reply = link_->run1(Command{"FCALL", "mp2_get", "5", keys.items, keys.inflight(cid), keys.meta,
                                      keys.notfull, keys.unfinished, "take", keys.joined},
                              retry_.reply_deadline());
    long long status = integer_of(element_of(reply.get(), 0, what_), what_);
    if (status == 1) {
      const redisReply* payload = element_of(reply.get(), 1, what_);
      if (!is_string(payload)) unexpected_reply(what_, "an item", payload);
      return Taken{cid, std::move(reply), payload};
    }
    if (status == -2) shut_down();
    if (status != 0) unexpected_reply(what_, "1 (item), 0 (empty) or -2 (shut down)", reply.get());
    return std::nullopt;
  }

  std::optional<Taken> wait_for_item() {
    const auto& keys = queue_.keys;
    std::string cid = queue_.current_cid(state_, *link_, retry_);
    if (auto lost = recover_lost_reply(cid)) return lost;
    queue_.maybe_reap(state_, *link_, retry_);
    auto block = std::min<Clock::duration>(kBlockChunk, deadline_.remaining());
    std::vector<Command> pipeline{
        Command{"BLMOVE", keys.items, keys.inflight(cid), "RIGHT", "LEFT", seconds_arg(block)}};
    const bool bounded = queue_.maxsize > 0;
    if (!queue_.joinable) {
      pipeline.push_back(Command{"FCALL", "mp2_after_blocking_get", "5", keys.inflight(cid), keys.meta,
                                 keys.notfull, keys.unfinished, keys.items, "take", keys.joined, "0"});
    } else if (bounded) {
      pipeline.push_back(Command{"LLEN", keys.items});
    }
    auto replies = link_->run(pipeline, retry_.reply_deadline(block));
    for (auto& r : replies) throw_if_error(r, what_);
    if (is_nil(replies[0].get())) return std::nullopt;
    if (!is_string(replies[0].get())) unexpected_reply(what_, "an item or nil", replies[0].get());
    if (queue_.joinable && bounded)
      queue_.hint_if_was_full(*link_, integer_of(replies[1].get(), what_), retry_);
    const redisReply* payload = replies[0].get();
    return Taken{cid, std::move(replies[0]), payload};
  }

  std::optional<Taken> recover_lost_reply(const std::string& cid) {
    if (!queue_.joinable || retry_.failures() == 0) return std::nullopt;
    const auto& keys = queue_.keys;
    auto replies = link_->run(
        std::vector<Command>{Command{"LLEN", keys.inflight(cid)}, Command{"LINDEX", keys.inflight(cid), "0"}},
        retry_.reply_deadline());
    if (integer_of(replies[0].get(), what_) <= held_under(cid) || !is_string(replies[1].get()))
      return std::nullopt;
    const redisReply* payload = replies[1].get();
    return Taken{cid, std::move(replies[1]), payload};
  }

  std::vector<std::byte> deliver(Taken taken, bool waited) {
    state_.last_get_waited.store(waited, std::memory_order_relaxed);
    if (queue_.joinable) {
      std::lock_guard lock(state_.mutex);
      state_.held.push_back(taken.cid);
    }
    return bytes_of(taken.payload, what_);
  }

  long long held_under(const std::string& cid) {
    std::lock_guard lock(state_.mutex);
    return static_cast<long long>(std::count(state_.held.begin(), state_.held.end(), cid));
  }

  [[noreturn]] void shut_down() {
    throw mp::ShutDown("mp::redis queue \"" + queue_.name + "\" was shut down and is empty");
  }

  QueueCore::Impl& queue_;
  ProcessQueueState& state_;
  Deadline deadline_;
  Retry retry_;
  LinkPool::Lease link_;
  std::string what_;
};

}  // namespace

std::optional<std::vector<std::byte>> QueueCore::get(Deadline deadline) {
  return Getter(*impl_, deadline).run();
}

}  // namespace mp::redis::detail
