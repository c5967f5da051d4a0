// src/redis/queue_get.cpp — QueueCore::get and get_many, in named steps.
//
// get_many(most) is get() taking up to `most` items in the same round trip: `most` LMOVEs
// pipelined (behind the BLMOVE when it waits), each moving one item into my in-flight list, so
// each is leased, acknowledged, reaped and counted on its own exactly as one got by get().
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

// Items handed to this process (oldest first), and the consumer id they were taken under.
struct Taken {
  std::string cid;
  std::vector<std::vector<std::byte>> items;
};

class Getter {
 public:
  Getter(QueueCore::Impl& queue, Deadline deadline, std::size_t most = 1)
      : most_(std::max<std::size_t>(most, 1)),
        queue_(queue),
        state_(queue.local()),
        deadline_(deadline),
        retry_(queue.retry(deadline, "get()")),
        link_(state_.pool.take()),
        what_(queue.context("get()")) {}

  std::vector<std::vector<std::byte>> run() {
    bool wait_first = !deadline_.expired() && state_.last_get_waited.load(std::memory_order_relaxed);
    for (;;) {
      if (!wait_first) {
        if (auto taken = retry_([&] { return take_ready(); })) return deliver(std::move(*taken), false);
        if (deadline_.expired()) return {};
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

  // take_joinable(cid): most_ LMOVEs (each a native command: every item is taken into my
  // in-flight list on its own), HGET shutdown (and LLEN), one round trip.
  std::optional<Taken> take_joinable(const std::string& cid) {
    const auto& keys = queue_.keys;
    const bool bounded = queue_.maxsize > 0;
    std::vector<Command> pipeline;
    for (std::size_t i = 0; i < most_; ++i)
      pipeline.push_back(Command{"LMOVE", keys.items, keys.inflight(cid), "RIGHT", "LEFT"});
    pipeline.push_back(Command{"HGET", keys.meta, "shutdown"});
    if (bounded) pipeline.push_back(Command{"LLEN", keys.items});
    auto replies = link_->run(pipeline, retry_.reply_deadline());
    for (auto& r : replies) throw_if_error(r, what_);
    Taken taken{cid, {}};
    collect(std::span(replies).first(most_), taken);
    if (!taken.items.empty()) {
      if (bounded)
        queue_.hint_if_was_full(*link_, integer_of(replies[most_ + 1].get(), what_), taken.items.size(),
                                retry_);
      return taken;
    }
    if (!is_nil(replies[most_].get())) shut_down();
    return std::nullopt;
  }

  // collect(replies, taken): the items among LMOVE / BLMOVE replies (nil: none was there).
  void collect(std::span<Reply> replies, Taken& taken) {
    for (auto& r : replies) {
      if (is_nil(r.get())) continue;
      if (!is_string(r.get())) unexpected_reply(what_, "an item or nil", r.get());
      taken.items.push_back(bytes_of(r.get(), what_));
    }
  }

  // take_plain(cid): most_ mp2_get 'take' calls, pipelined (each removes one item, as get()).
  std::optional<Taken> take_plain(const std::string& cid) {
    const auto& keys = queue_.keys;
    const std::vector<Command> pipeline(
        most_, Command{"FCALL", "mp2_get", "5", keys.items, keys.inflight(cid), keys.meta, keys.notfull,
                       keys.unfinished, "take", keys.joined});
    auto replies = link_->run(pipeline, retry_.reply_deadline());
    Taken taken{cid, {}};
    bool shut = false;
    for (auto& reply : replies) {
      long long status = integer_of(element_of(reply.get(), 0, what_), what_);
      if (status == 1) {
        const redisReply* payload = element_of(reply.get(), 1, what_);
        if (!is_string(payload)) unexpected_reply(what_, "an item", payload);
        taken.items.push_back(bytes_of(payload, what_));
      } else if (status == -2) {
        shut = true;
      } else if (status != 0) {
        unexpected_reply(what_, "1 (item), 0 (empty) or -2 (shut down)", reply.get());
      }
    }
    if (!taken.items.empty()) return taken;
    if (shut) shut_down();
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
    // A JoinableQueue's get_many: the LMOVEs queued behind the BLMOVE run once it returns.
    const std::size_t extra = queue_.joinable ? most_ - 1 : 0;
    for (std::size_t i = 0; i < extra; ++i)
      pipeline.push_back(Command{"LMOVE", keys.items, keys.inflight(cid), "RIGHT", "LEFT"});
    if (!queue_.joinable) {
      pipeline.push_back(Command{"FCALL", "mp2_after_blocking_get", "5", keys.inflight(cid), keys.meta,
                                 keys.notfull, keys.unfinished, keys.items, "take", keys.joined, "0"});
    } else if (bounded) {
      pipeline.push_back(Command{"LLEN", keys.items});
    }
    auto replies = link_->run(pipeline, retry_.reply_deadline(block));
    for (auto& r : replies) throw_if_error(r, what_);
    Taken taken{cid, {}};
    collect(std::span(replies).first(1 + extra), taken);
    if (taken.items.empty()) return std::nullopt;
    if (queue_.joinable && bounded)
      queue_.hint_if_was_full(*link_, integer_of(replies[1 + extra].get(), what_), taken.items.size(),
                              retry_);
    return taken;
  }

  // recover_lost_reply(cid): more items in my in-flight list than I hold means the newest
  // (left) ones were moved for me by a pipeline whose replies were lost: they are mine
  // (at most most_, the pipeline's size), delivered oldest first.
  std::optional<Taken> recover_lost_reply(const std::string& cid) {
    if (!queue_.joinable || retry_.failures() == 0) return std::nullopt;
    const auto& keys = queue_.keys;
    Reply length = link_->run1(Command{"LLEN", keys.inflight(cid)}, retry_.reply_deadline());
    long long surplus = integer_of(length.get(), what_) - held_under(cid);
    if (surplus <= 0) return std::nullopt;
    surplus = std::min<long long>(surplus, static_cast<long long>(most_));
    Command range{"LRANGE", keys.inflight(cid), "0"};
    range.add(surplus - 1);
    Reply newest = link_->run1(range, retry_.reply_deadline());
    Taken taken{cid, {}};
    for (std::size_t i = array_size(newest.get(), what_); i-- > 0;)
      taken.items.push_back(bytes_of(element_of(newest.get(), i, what_), what_));
    if (taken.items.empty()) return std::nullopt;
    return taken;
  }

  std::vector<std::vector<std::byte>> deliver(Taken taken, bool waited) {
    state_.last_get_waited.store(waited, std::memory_order_relaxed);
    if (queue_.joinable) {
      std::lock_guard lock(state_.mutex);
      state_.held.insert(state_.held.end(), taken.items.size(), taken.cid);
    }
    return std::move(taken.items);
  }

  long long held_under(const std::string& cid) {
    std::lock_guard lock(state_.mutex);
    return static_cast<long long>(std::count(state_.held.begin(), state_.held.end(), cid));
  }

  [[noreturn]] void shut_down() {
    throw mp::ShutDown("mp::redis queue \"" + queue_.name + "\" was shut down and is empty");
  }

  std::size_t most_;
  QueueCore::Impl& queue_;
  ProcessQueueState& state_;
  Deadline deadline_;
  Retry retry_;
  LinkPool::Lease link_;
  std::string what_;
};

}  // namespace

std::optional<std::vector<std::byte>> QueueCore::get(Deadline deadline) {
  auto items = Getter(*impl_, deadline).run();
  if (items.empty()) return std::nullopt;
  return std::move(items.front());  // most = 1: one at most
}

std::vector<std::vector<std::byte>> QueueCore::get_many(std::size_t most, Deadline deadline) {
  return Getter(*impl_, deadline, most).run();
}

}  // namespace mp::redis::detail
