// mp/pool.hpp — Python's multiprocessing.Pool, without its hangs.
//
// A fixed set of worker processes runs tasks: map, starmap, imap,
// imap_unordered, apply, apply_async, map_async, with CPython's chunksize
// rules. Arguments and results travel by mp's codec (mp/codec.hpp).
//
//   int square(int x) { return x * x; }
//   mp::Pool pool(4);                                       // 0 (default): cpu_count()
//   std::vector<int> squares = pool.map(square, std::vector{1, 2, 3});   // {1, 4, 9}
//   mp::AsyncResult<int> r = pool.apply_async(square, 12);
//   int v = r.get(std::chrono::seconds(5));                 // 144, or TimeoutError
//
// The callable F is a function pointer, a capture-less lambda, or a function
// object whose state is trivially copyable (a lambda capturing ints) or
// codec-serialisable; anything else fails to compile with a message saying
// why. Beware: a lambda capturing by reference, or a function object holding a
// raw pointer, IS trivially copyable; the address it carries means nothing in
// the worker (it sees the program's memory as it was when the Pool was made).
//
// Errors: a task that throws fails only itself: its result raises
// mp::RemoteError (type_name() = the exception's demangled type, what() = its
// message). A worker that dies (signal, exit) while holding a task fails only
// that task with mp::WorkerLost naming the signal or exit code; map/imap send
// items in chunks, and a lost chunk fails every item of that chunk (a map
// raises it). The worker is replaced, the pool keeps serving; nothing hangs.
// Beyond Python: PoolOptions::task_timeout fails a task (one apply, or one
// chunk of a map) still running after it with mp::TaskTimeout, and
// AsyncResult::cancel() stops a task (mp::Cancelled); in both cases the
// worker running it is killed and replaced and every other task completes.
// Inside a worker, current_process() is "ForkPoolWorker-N" (N numbered with
// the owner's other children, as Python does) and mp::exit(n) ends the worker
// without running the owner's atexit handlers. Workers use SIGRTMAX - 1 (the
// cancel signal): a task must not take it over.
// Misuse: Pool(-1) -> ValueError; any submission after close()/terminate()
// -> ValueError; join() before close()/terminate() -> ValueError; imap
// chunksize 0 -> ValueError; a negative task_timeout -> ValueError.
//
// Safety: a Pool may be used from several threads at once (submissions,
// close, terminate, join are internally locked); results may be waited on
// from any thread. The callable runs in worker processes only.
// Visibility: a task sees its arguments (copied by value when submitted) and
// the program's memory as it was when the Pool was constructed, never later
// writes of the parent (workers are forks made at construction time, see the
// design notes); under forkserver or spawn (PoolOptions::start_method) as it
// was when the fork server started, or as a fresh run of the program has it.
// Its effects reach the caller only through its result (or, under fork,
// through shared objects made before the Pool: Value, Array, Queue, ...; a
// forkserver or spawn worker inherits none of them).
// Lifetime: workers are daemon descendants of the pool's process: they die
// with it, even when it is SIGKILLed. ~Pool() = close() + join() (waits for
// every submitted task), unless terminate() was called. A result handle
// outlives its Pool. terminate() kills the workers at once (SIGKILL) and fails
// every unfinished result with WorkerLost("Pool.terminate() ...").
//
// ---- Design notes --------------------------------------------------------
// Processes. The pool's supervisor thread forks one small single-threaded
// helper, the zygote, when the pool starts; the zygote forks every worker
// (the first ones and all replacements) on request. Why: forking from a
// multithreaded program copies only the forking thread, so a child could
// inherit a mutex some other thread held at that instant (a user mutex in a
// busy loop, an allocator lock in a library that has no fork handlers) and
// deadlock on it. The zygote is forked once, runs nothing but system calls on
// memory prepared before the fork (no malloc, no locks, no stdio), and is
// single-threaded, so each worker it forks starts from a quiet, consistent
// copy of the program as it was at Pool construction, however busy the
// parent's other threads are later: a lock that a task takes is copied in the
// state it had when the Pool was made (a moment the program chooses), never
// in whatever state a busy thread left it when a replacement was needed.
// (The zygote's own fork happens in a possibly busy program: that is safe
// because the zygote touches only prepared memory and glibc's fork() resets
// its allocator and stdio locks in the child; an allocator without fork
// handlers, like some sanitizer runtimes, could still leave one of its locks
// held in the zygote's copy.) Workers are therefore the zygote's children:
//   pool process ── supervisor thread ──fork──> zygote ──fork──> worker 0..N-1
// Under the forkserver and spawn start methods the zygote is started instead
// as a Process child is: forked by mp's fork server (its parent; the zygote
// dies with the server, the server with the pool's process), or a fresh run
// of the program (exec of /proc/self/exe, dying with the pool's process).
// It receives the control socket, the slot table and the rings as fds and
// maps them again; the workers it forks inherit those mappings. In another
// run of the binary code addresses differ (ASLR): a task frame's trampoline
// address and a function pointer callable are relocated in the worker by
// loaded object and offset, as a Process target is.
// Dying together: the zygote has PR_SET_PDEATHSIG(SIGKILL) tied to the
// supervisor thread (which lives exactly as long as the pool), each worker has
// it tied to the zygote, each checks getppid() after arming it (the race).
// So SIGKILL of the pool's process kills the zygote, which kills the workers.
// Watching: the zygote holds a pidfd per worker, reaps it (waitid(P_PIDFD))
// and relays its exit status (exit code, or signal) over its control socket;
// it also hands the parent a pidfd of each worker (for SIGKILL at terminate()
// without pid-reuse races). The supervisor watches the zygote's own pidfd: if
// the zygote dies, every unfinished task fails with WorkerLost and the pool
// refuses new work (its workers died with the zygote).
// Tasks travel through shared memory (mp's ring, made before the zygote's
// fork so every worker inherits it): each worker has its own task ring, and
// all of them put results into the pool's one result ring. A task frame is
// the address of the trampoline instantiated for F and the item type, the
// item count and the payload; the chunks sent to one worker at once travel
// as one ring record. The parent assigns chunks to workers (fewest in flight
// first) and keeps a small window of chunks queued per worker, sized from the
// worker's measured task time (about 200 us of work, 1..64 chunks), so short
// tasks are batched while long tasks are never queued behind each other. A
// thread waiting in get()/wait() reads the result ring itself (one waiter at
// a time, handing other threads their results; the pool's collector thread
// reads it when nobody waits), so a round trip is two hand-offs; an idle
// worker and the waiter spin briefly before sleeping (mp's one event count
// and spin policy), so on an idle machine neither wakes a halted CPU.
// Before running a task a worker stores its id in a shared-memory slot; a
// result is put in the result ring as soon as the task returns. When a worker
// dies, the supervisor puts a "died" record into the result ring behind
// everything the worker committed, so the collector has all its results
// first; then the in-flight chunk whose id is in the slot is the one that
// died with it (WorkerLost); the worker's ring is emptied and the chunks it
// had not started go back to the front of the queue. Thus a task runs at most
// once, and only the task that was running is failed. A worker killed in the
// middle of a get or a put leaves the ring to its crash rules (robust locks,
// one-store commits): the next user repairs it.
// A task that throws fails only itself (the worker catches, reports the type
// and message, and goes on). The initializer runs in every worker, the
// replacements included; if it throws, every unfinished and later task fails
// with RemoteError naming it (Python would respawn forever); if workers keep
// dying before their initializer finished (3 in a row), the pool fails the
// same way with WorkerLost instead of respawning forever.
// maxtasksperchild: the parent sends a worker at most N chunks; the worker
// exits after the N-th and is replaced (by the zygote, as always).
// task_timeout: a worker arms a POSIX timer whose signal is SIGKILL around
// each chunk; a death by SIGKILL inside a chunk past its deadline (recorded
// in the slot) is that chunk's TaskTimeout. cancel(): chunks still in the
// pool's queue are dropped; chunks already sent to a worker are marked in
// its slot and the worker skips them; a running chunk gets the cancel signal,
// whose handler kills the worker only if the chunk it runs is still a
// cancelled one (so a cancel never kills the task after it).
#pragma once

#include <sys/types.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <limits>
#include <memory>
#include <optional>
#include <ranges>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "mp/async_result.hpp"
#include "mp/codec.hpp"
#include "mp/context.hpp"
#include "mp/detail/export.hpp"
#include "mp/detail/pool_job.hpp"
#include "mp/detail/pool_task.hpp"
#include "mp/errors.hpp"

namespace mp {

struct PoolOptions {
  void (*initializer)() = nullptr;   // runs first in every worker (replacements too)
  std::size_t maxtasksperchild = 0;  // 0: workers live as long as the pool
  // task_timeout: 0: none. A task (one apply, or one chunk of a map: give
  // chunksize 1 for a timeout per item) still running after it: its worker
  // is killed (SIGKILL) and replaced, and the task fails with mp::TaskTimeout;
  // every other task completes.
  std::chrono::milliseconds task_timeout{0};
  // start_method: unset: get_start_method(). Workers are always forked by the
  // pool's zygote, a single-threaded fork server of the pool's own. How the
  // zygote starts: fork: forked from this process when the Pool is made (the
  // fork-with-threads warning applies: make such pools before starting
  // threads); forkserver: forked by mp's fork server, spawn: a fresh run of the
  // program (needs mp::init; ProcessError otherwise), either way safe from a
  // busy threaded program, and the workers see the program as the server or
  // the fresh run has it, not this process's memory (as a forkserver/spawn
  // Process does). Under forkserver a pool has at most 248 workers
  // (ProcessError). Addresses in a callable's trivially copyable state, other
  // than a function pointer callable itself, are not relocated in such workers.
  std::optional<StartMethod> start_method{};
};

namespace detail {

class PoolCore;

// One chunk ready to go: the trampoline, how many items, the encoded payload.
struct ChunkSpec {
  ChunkRunner runner;
  std::uint32_t item_count;
  std::vector<std::byte> payload;
};

// default_chunksize(items, processes): CPython's Pool._map_async rule:
// chunksize, extra = divmod(len, processes * 4); if extra: chunksize += 1.
// (0 for an empty input, which submits nothing.)
[[nodiscard]] constexpr std::size_t default_chunksize(std::size_t items, int processes) noexcept {
  const std::size_t per = static_cast<std::size_t>(processes) * 4;
  std::size_t chunksize = items / per;
  if (items % per != 0) ++chunksize;
  return chunksize;
}

// pool_cpu_count(): what Pool(0) uses; os.cpu_count() (online CPUs), at least 1.
[[nodiscard]] MP_API int pool_cpu_count() noexcept;

template <class Range>
using range_item_t = std::remove_cvref_t<std::ranges::range_value_t<const Range>>;

template <class R>
R assemble_single(const JobState& job) {
  if constexpr (!std::is_void_v<R>) {
    std::vector<R> one;
    one.reserve(1);
    take_results(job.chunk_bytes(0), 1, one);
    return std::move(one.front());
  }
}

template <class R>
std::vector<R> assemble_vector(const JobState& job) {
  std::vector<R> all;
  std::size_t total = 0;
  for (std::size_t c = 0; c < job.chunk_count(); ++c) total += job.item_count(c);
  all.reserve(total);
  for (std::size_t c = 0; c < job.chunk_count(); ++c)
    take_results(job.chunk_bytes(c), job.item_count(c), all);
  return all;
}

inline void assemble_nothing(const JobState&) {}

}  // namespace detail

class MP_API Pool {
 public:
  // Pool(processes, options): starts the zygote and `processes` workers
  // (0: cpu_count()). ValueError for processes < 0; mp::Error if the system
  // refuses (fork, memfd, ...).
  explicit Pool(int processes = 0, PoolOptions options = {});
  Pool(Pool&& other) noexcept;
  Pool& operator=(Pool&&) = delete;
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;
  // ~Pool(): close() + join() (every submitted task finishes first), unless
  // terminate() was called. Never throws.
  ~Pool();

  // Pool::map(f, items, chunksize = 0): f applied to every item, results in
  // input order (std::vector<R>; nothing when f returns void). Blocks until
  // all are done; chunksize 0: CPython's default (see default_chunksize).
  // Throws the first failed chunk's RemoteError / WorkerLost; ValueError if closed.
  template <class F, class Range>
  auto map(F f, const Range& items, std::size_t chunksize = 0) {
    return map_async(std::move(f), items, chunksize).get();
  }

  // Pool::starmap(f, tuples, chunksize = 0): as map, with f(a, b, ...) for
  // each tuple/pair/array (a, b, ...).
  template <class F, class Range>
  auto starmap(F f, const Range& tuples, std::size_t chunksize = 0) {
    return starmap_async(std::move(f), tuples, chunksize).get();
  }

  // Pool::map_async(f, items, chunksize = 0): as map, without blocking:
  // AsyncResult<std::vector<R>> (AsyncResult<void> when f returns void).
  template <class F, class Range>
  auto map_async(F f, const Range& items, std::size_t chunksize = 0) {
    return submit_map<detail::CallStyle::single>("Pool::map()", std::move(f), items, chunksize);
  }

  // Pool::starmap_async(f, tuples, chunksize = 0): starmap without blocking.
  template <class F, class Range>
  auto starmap_async(F f, const Range& tuples, std::size_t chunksize = 0) {
    return submit_map<detail::CallStyle::spread>("Pool::starmap()", std::move(f), tuples, chunksize);
  }

  // Pool::imap(f, items, chunksize = 1): IMapIterator<R> yielding results in
  // input order, each as soon as it (and those before it) are done.
  // ValueError for chunksize 0 or a closed pool.
  template <class F, class Range>
  auto imap(F f, const Range& items, std::size_t chunksize = 1) {
    return submit_imap("Pool::imap()", std::move(f), items, chunksize, true);
  }

  // Pool::imap_unordered(f, items, chunksize = 1): as imap, in completion order.
  template <class F, class Range>
  auto imap_unordered(F f, const Range& items, std::size_t chunksize = 1) {
    return submit_imap("Pool::imap_unordered()", std::move(f), items, chunksize, false);
  }

  // Pool::apply(f, args...): f(args...) run in a worker; blocks for the result
  // (R, or void). Throws RemoteError / WorkerLost from the task; ValueError if closed.
  template <class F, class... A>
  auto apply(F f, A&&... args) {
    return apply_async(std::move(f), std::forward<A>(args)...).get();
  }

  // Pool::apply_async(f, args...): AsyncResult<R> of f(args...); args are
  // encoded (copied) now.
  template <class F, class... A>
  auto apply_async(F f, A&&... args) {
    using Item = std::tuple<std::remove_cvref_t<A>...>;
    constexpr auto style = detail::CallStyle::spread;
    constexpr bool valid = detail::check_task<F, Item, style>();
    if constexpr (valid) {
      using R = detail::call_result_t<F, Item, style>;
      check_running("Pool::apply_async()");
      std::vector<detail::ChunkSpec> chunks(1);
      chunks[0].runner = &detail::run_chunk<F, Item, style>;
      chunks[0].item_count = 1;
      Writer writer(chunks[0].payload);
      detail::put_callable(writer, f);
      writer.value(Item(std::forward<A>(args)...));
      auto job = submit("Pool::apply_async()", std::move(chunks));
      if constexpr (std::is_void_v<R>) {
        return AsyncResult<void>(std::move(job), &detail::assemble_nothing);
      } else {
        return AsyncResult<R>(std::move(job), &detail::assemble_single<R>);
      }
    }
  }

  // Pool::close(): no more submissions; workers exit once all tasks are done.
  void close();
  // Pool::terminate(): kills the workers now (SIGKILL) and fails every
  // unfinished result with WorkerLost; returns once they are gone.
  void terminate();
  // Pool::join(): waits for the workers to exit. ValueError unless close() or
  // terminate() was called first.
  void join();

  // Pool::processes(): the number of workers.
  [[nodiscard]] int processes() const noexcept;

 private:
  void check_running(const char* method) const;
  std::shared_ptr<detail::JobState> submit(const char* method, std::vector<detail::ChunkSpec> chunks);

  // encode_chunks<Style>(f, items, chunksize): the chunks of a map-like call.
  template <detail::CallStyle Style, class F, class Range>
  std::vector<detail::ChunkSpec> encode_chunks(const F& f, const Range& items, std::size_t chunksize) {
    using Item = detail::range_item_t<Range>;
    std::vector<detail::ChunkSpec> chunks;
    auto it = std::ranges::begin(items);
    auto last = std::ranges::end(items);
    const std::size_t cap = std::numeric_limits<std::uint32_t>::max();
    chunksize = std::min(chunksize, cap);
    while (it != last) {
      detail::ChunkSpec& spec = chunks.emplace_back();
      spec.runner = &detail::run_chunk<F, Item, Style>;
      Writer writer(spec.payload);
      detail::put_callable(writer, f);
      std::uint32_t n = 0;
      for (; n < chunksize && it != last; ++n, ++it) {
        if constexpr (std::is_same_v<std::remove_cvref_t<decltype(*it)>, Item>) {
          writer.value(*it);
        } else {
          const Item item = *it;
          writer.value(item);
        }
      }
      spec.item_count = n;
    }
    return chunks;
  }

  template <class Range>
  static std::size_t count_items(const Range& items) {
    return static_cast<std::size_t>(std::ranges::distance(items));
  }

  template <detail::CallStyle Style, class F, class Range>
  auto submit_map(const char* method, F f, const Range& items, std::size_t chunksize) {
    static_assert(std::ranges::input_range<const Range>, "mp::Pool: items must be a range (begin/end)");
    if constexpr (!std::ranges::forward_range<const Range>) {
      // Single-pass input: materialise it first, as Python does (list(iterable)).
      std::vector<detail::range_item_t<Range>> copy;
      for (auto&& item : items) copy.emplace_back(item);
      return submit_map<Style>(method, std::move(f), copy, chunksize);
    } else {
      using Item = detail::range_item_t<Range>;
      constexpr bool valid = detail::check_task<F, Item, Style>();
      if constexpr (valid) {
        using R = detail::call_result_t<F, Item, Style>;
        check_running(method);
        const std::size_t count = count_items(items);
        if (chunksize == 0) chunksize = detail::default_chunksize(count, processes());
        auto job = submit(method, encode_chunks<Style>(f, items, chunksize));
        if constexpr (std::is_void_v<R>) {
          return AsyncResult<void>(std::move(job), &detail::assemble_nothing);
        } else {
          return AsyncResult<std::vector<R>>(std::move(job), &detail::assemble_vector<R>);
        }
      }
    }
  }

  template <class F, class Range>
  auto submit_imap(const char* method, F f, const Range& items, std::size_t chunksize, bool ordered) {
    static_assert(std::ranges::input_range<const Range>, "mp::Pool: items must be a range (begin/end)");
    if constexpr (!std::ranges::forward_range<const Range>) {
      std::vector<detail::range_item_t<Range>> copy;
      for (auto&& item : items) copy.emplace_back(item);
      return submit_imap(method, std::move(f), copy, chunksize, ordered);
    } else {
      using Item = detail::range_item_t<Range>;
      constexpr auto style = detail::CallStyle::single;
      constexpr bool valid = detail::check_task<F, Item, style>();
      if constexpr (valid) {
        using R = detail::call_result_t<F, Item, style>;
        static_assert(!std::is_void_v<R>,
                      "mp::Pool::imap: the callable returns void, so there is nothing to iterate; use map() "
                      "or map_async() for side effects");
        if constexpr (!std::is_void_v<R>) {
          check_running(method);
          if (chunksize == 0) throw ValueError(std::string(method) + ": chunksize must be 1 or more, not 0");
          auto job = submit(method, encode_chunks<style>(f, items, chunksize));
          return IMapIterator<R>(std::move(job), ordered);
        }
      }
    }
  }

  std::unique_ptr<detail::PoolCore> core_;
};

}  // namespace mp
