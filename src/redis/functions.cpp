// src/redis/functions.cpp — the Lua library mp runs inside Redis (Redis 7 Functions).
//
// Functions, unlike EVALSHA scripts, are persisted in the AOF/RDB and
// replicated, so they survive a server restart (REDIS.md §2.3). Each Link
// loads the library on connect (FUNCTION LOAD, "already exists" is fine), so a
// server that lost it (restart without persistence, FUNCTION FLUSH) gets it
// back with the next reconnect. The version is part of the library name: a
// changed library gets a new name and never fights an older client.
//
// Keys of one queue share the hash tag {name} (one cluster slot):
//   mpq:{N}:items        LIST   ready items; put LPUSHes at the left, get takes from the right (FIFO)
//   mpq:{N}:meta         HASH   signature (codec_signature<T>), maxsize, max_deliveries, shutdown
//   mpq:{N}:unfinished   STRING items put and not yet acknowledged (task_done, or a plain get)
//   mpq:{N}:inflight:C   LIST   items handed to consumer C of a JoinableQueue, newest at the left
//   mpq:{N}:hb:C         STRING consumer C's lease (PX); its value: when it was last renewed
//                               (unix ms, the consumer's clock), for mp-redis stats
//   mpq:{N}:consumers    SET    consumers that may hold items (the reaper's registry)
//   mpq:{N}:notfull      LIST   wake-up hints for producers blocked on a full queue (<= 64)
//   mpq:{N}:producers    HASH   producer -> sequence of its last applied put (expires 10 min after
//                               the last refresh; every client process refreshes it at least once a
//                               minute while it puts): a retried put is applied once
//   mpq:{N}:acks         HASH   acker -> sequence of its last applied task_done (same, for task_done)
//   mpq:{N}:stats        HASH   done (items acknowledged), failed (deliveries lost with a dead
//                               consumer, or failed with mp2_fail), dead (items moved to the dead letters)
//   mpq:{N}:deliveries   HASH   sha1(item) -> failed deliveries so far (only with max_deliveries)
//   mpq:{N}:dead         LIST   dead letters: items whose consumers died max_deliveries times
//                               (newest at the left); mp-redis retry puts them back
//   channel mpq:{N}:joined      published when unfinished reaches 0
// A lock N:
//   mpl:{N}:lock         STRING the holder's random token, PX lease
//   mpl:{N}:fence        STRING fencing counter (INCR per acquire)
//   mpl:{N}:wake         LIST   one token per release, for a blocked acquirer
//
// What is sent is the text below without its comment lines, blank lines and indentation
// (minified at compile time): Redis refuses a bulk string over 16 KiB from a connection that has
// not logged in ("Protocol error: unauthenticated bulk length"), and FUNCTION LOAD goes out in
// the same pipeline as AUTH, so a server wanting a password would answer that instead of NOAUTH.
// A static_assert keeps the sent library under that limit. (Comments here: whole lines starting
// with "--"; no Lua long strings or block comments.)
#include <algorithm>
#include <array>
#include <cstddef>
#include <string_view>

#include "link.hpp"  // kFunctionLibrary, kLibraryName

namespace mp::redis::impl {

const char* const kLibraryName = "mp2";

namespace {

constexpr std::string_view kLibrarySource = R"lua(#!lua name=mp2

-- open: KEYS meta; ARGV signature, maxsize, max_deliveries -> {signature, maxsize}
-- Creates the queue's meta hash once; later openers read what the first wrote.
redis.register_function('mp2_open', function(keys, args)
  if redis.call('EXISTS', keys[1]) == 0 then
    redis.call('HSET', keys[1], 'signature', args[1], 'maxsize', args[2], 'version', '2',
               'max_deliveries', args[3] or '0')
  end
  return redis.call('HMGET', keys[1], 'signature', 'maxsize')
end)

-- put: KEYS items, meta, unfinished, producers, notfull; ARGV payload, producer, sequence, waited,
--      check, refresh
-- waited = '1' when this producer had found the queue full: if room is left after its
-- put, it passes the wake-up on to the next blocked producer.
-- -> 1 put (or already put by an earlier try of the same call), -1 full, -2 shut down
-- producers[producer] = the sequence number of that producer's last applied put: a retry after
-- a lost reply finds its own number there and is not applied twice.
-- check = '0' when the client knows no earlier try of this put can have been applied (its first
-- send): the lookup is skipped. refresh = '1' renews the hash's 10-minute expiry; each client
-- process asks for that at least once a minute while it puts (so a record lives >= 8 minutes
-- after it was written), not on every put. Either absent (an older client): done every time.
redis.register_function('mp2_put', function(keys, args)
  if args[5] ~= '0' and redis.call('HGET', keys[4], args[2]) == args[3] then return 1 end
  local st = redis.call('HMGET', keys[2], 'maxsize', 'shutdown')
  if st[2] then return -2 end
  local maxsize = tonumber(st[1] or '0') or 0
  if maxsize > 0 and redis.call('LLEN', keys[1]) >= maxsize then return -1 end
  local length = redis.call('LPUSH', keys[1], args[1])
  redis.call('INCR', keys[3])
  if args[4] == '1' and length < maxsize then
    redis.call('LPUSH', keys[5], '1')
    redis.call('LTRIM', keys[5], 0, 63)
  end
  redis.call('HSET', keys[4], args[2], args[3])
  if args[6] ~= '0' then redis.call('PEXPIRE', keys[4], 600000) end
  return 1
end)

-- put_many: KEYS items, meta, unfinished, producers, notfull;
--           ARGV producer, sequence, check, refresh, waited, item...
-- -> how many of the items were put (all; or, on a bounded queue, as many as there was room
-- for, in order: the caller waits and sends the rest as a new call), -2 shut down.
-- One call for the whole batch, so one record: producers[producer] = 'sequence:count'; a retry
-- of the same call (check ~= '0') finds it and gets that count, applying nothing again.
redis.register_function('mp2_put_many', function(keys, args)
  if args[3] ~= '0' then
    local applied = redis.call('HGET', keys[4], args[1])
    if applied and string.sub(applied, 1, #args[2] + 1) == args[2] .. ':' then
      return tonumber(string.sub(applied, #args[2] + 2))
    end
  end
  local st = redis.call('HMGET', keys[2], 'maxsize', 'shutdown')
  if st[2] then return -2 end
  local maxsize = tonumber(st[1] or '0') or 0
  local count = #args - 5
  if maxsize > 0 then
    count = math.min(count, maxsize - redis.call('LLEN', keys[1]))
    if count <= 0 then return 0 end
  end
  local length = redis.call('LPUSH', keys[1], unpack(args, 6, 5 + count))
  -- GET + SET rather than INCRBY: the README's ACL for mp users allows these (and INCR), not INCRBY.
  local unfinished = tonumber(redis.call('GET', keys[3]) or '0') or 0
  redis.call('SET', keys[3], string.format('%.0f', unfinished + count))
  if args[5] == '1' and length < maxsize then
    redis.call('LPUSH', keys[5], '1')
    redis.call('LTRIM', keys[5], 0, 63)
  end
  redis.call('HSET', keys[4], args[1], args[2] .. ':' .. count)
  if args[4] ~= '0' then redis.call('PEXPIRE', keys[4], 600000) end
  return count
end)

-- A get that made room in a full queue wakes one blocked producer (a token on
-- notfull, which producers BLPOP). Tokens are only made when the queue was full,
-- so they do not pile up while nobody waits.
local function hint_not_full(meta, notfull, items)
  local maxsize = tonumber(redis.call('HGET', meta, 'maxsize') or '0') or 0
  if maxsize > 0 and redis.call('LLEN', items) + 1 >= maxsize then
    redis.call('LPUSH', notfull, '1')
    redis.call('LTRIM', notfull, 0, 63)
  end
end

-- The queue's other keys from one of its keys: 'mpq:{N}:unfinished' -> 'mpq:{N}:' .. name.
local function sibling(key, own, name)
  return string.sub(key, 1, #key - #own) .. name
end

local function acknowledge(unfinished, channel)
  local left = redis.call('DECR', unfinished)
  if left <= 0 then redis.call('PUBLISH', channel, left) end
  redis.call('HINCRBY', sibling(unfinished, 'unfinished', 'stats'), 'done', 1)
  return left
end

-- get: KEYS items, inflight, meta, notfull, unfinished; ARGV mode ('hold'|'take'), channel
-- -> {1, item} | {0} empty | {-2} empty and shut down
-- 'hold' (JoinableQueue) moves the item into the consumer's in-flight list;
-- 'take' (Queue) removes it and acknowledges it at once.
redis.register_function('mp2_get', function(keys, args)
  local item = redis.call('RPOP', keys[1])
  if not item then
    if redis.call('HGET', keys[3], 'shutdown') then return {-2} end
    return {0}
  end
  if args[1] == 'hold' then
    redis.call('LPUSH', keys[2], item)
  else
    acknowledge(keys[5], args[2])
  end
  hint_not_full(keys[3], keys[4], keys[1])
  return {1, item}
end)

-- after_blocking_get: KEYS inflight, meta, notfull, unfinished, items; ARGV mode, channel, held
-- Runs right after a BLMOVE items -> inflight in the same pipeline. held is the
-- number of items the client knew it held before the BLMOVE: if the list is
-- longer, the BLMOVE delivered. 'take' then acknowledges (removes) it.
-- -> 1 delivered, 0 not
redis.register_function('mp2_after_blocking_get', function(keys, args)
  if redis.call('LLEN', keys[1]) <= tonumber(args[3]) then return 0 end
  if args[1] == 'take' then
    redis.call('LPOP', keys[1])
    acknowledge(keys[4], args[2])
  end
  hint_not_full(keys[2], keys[3], keys[5])
  return 1
end)

-- task_done: KEYS inflight, unfinished, acks; ARGV channel, acker, sequence, check, refresh
-- -> items still unfinished. acks[acker] = the acker's last applied sequence number (a retry
-- after a lost reply is not applied twice). check and refresh as for put: check = '0' for the
-- first send of an acknowledgement that is never sent again (not deferred).
redis.register_function('mp2_task_done', function(keys, args)
  if args[4] ~= '0' and redis.call('HGET', keys[3], args[2]) == args[3] then
    return tonumber(redis.call('GET', keys[2]) or '0')
  end
  local item = redis.call('RPOP', keys[1])
  if not item then
    return redis.error_reply('NOLEASE no item in flight for this consumer')
  end
  local deliveries = sibling(keys[2], 'unfinished', 'deliveries')
  if redis.call('EXISTS', deliveries) == 1 then redis.call('HDEL', deliveries, redis.sha1hex(item)) end
  redis.call('HSET', keys[3], args[2], args[3])
  if args[5] ~= '0' then redis.call('PEXPIRE', keys[3], 600000) end
  return acknowledge(keys[2], args[1])
end)

-- task_done_many: KEYS inflight, unfinished, acks; ARGV channel, acker, sequence, check, refresh, n
-- -> items still unfinished. The consumer's n oldest items at once (one call for a batch of
-- acknowledgements): all or none (NOLEASE if it holds fewer: its lease ran out and they were
-- handed out again). Record and check as task_done. Unfinished is lowered by GET + SET, as the
-- README's ACL for mp users has no DECRBY.
redis.register_function('mp2_task_done_many', function(keys, args)
  if args[4] ~= '0' and redis.call('HGET', keys[3], args[2]) == args[3] then
    return tonumber(redis.call('GET', keys[2]) or '0')
  end
  local n = tonumber(args[6])
  if redis.call('LLEN', keys[1]) < n then
    return redis.error_reply('NOLEASE no item in flight for this consumer')
  end
  local items = redis.call('RPOP', keys[1], n)
  local deliveries = sibling(keys[2], 'unfinished', 'deliveries')
  if redis.call('EXISTS', deliveries) == 1 then
    for _, item in ipairs(items) do redis.call('HDEL', deliveries, redis.sha1hex(item)) end
  end
  redis.call('HSET', keys[3], args[2], args[3])
  if args[5] ~= '0' then redis.call('PEXPIRE', keys[3], 600000) end
  local left = (tonumber(redis.call('GET', keys[2]) or '0') or 0) - n
  redis.call('SET', keys[2], string.format('%.0f', left))
  if left <= 0 then redis.call('PUBLISH', args[1], left) end
  redis.call('HINCRBY', sibling(keys[2], 'unfinished', 'stats'), 'done', n)
  return left
end)

local function requeue(inflight, items)
  local n = 0
  while redis.call('LMOVE', inflight, items, 'LEFT', 'RIGHT') do n = n + 1 end
  return n
end

-- A delivery failed (its consumer died): count it; past max_deliveries the item becomes a
-- dead letter (no longer unfinished, so join() does not wait for it); else it goes back.
local function requeue_failed(prefix, inflight, items, max_deliveries)
  if max_deliveries <= 0 then return requeue(inflight, items) end
  local n = 0
  while true do
    local item = redis.call('LPOP', inflight)
    if not item then break end
    local id = redis.sha1hex(item)
    if redis.call('HINCRBY', prefix .. 'deliveries', id, 1) >= max_deliveries then
      redis.call('HDEL', prefix .. 'deliveries', id)
      redis.call('LPUSH', prefix .. 'dead', item)
      redis.call('HINCRBY', prefix .. 'stats', 'dead', 1)
      local left = redis.call('DECR', prefix .. 'unfinished')
      if left <= 0 then redis.call('PUBLISH', prefix .. 'joined', left) end
    else
      redis.call('RPUSH', items, item)
    end
    n = n + 1
  end
  return n
end

-- fail: KEYS inflight, items, acks; ARGV prefix, dead_letter, acker, sequence
-- -> 1 a dead letter now (dead_letter is kept in the item's place), 0 handed out again (next)
-- The consumer's oldest item failed while the consumer lives on (the process running it died):
-- counted as a failed delivery exactly as reap counts a dead consumer's, so max_deliveries
-- bounds both together. acks[acker] = 'sequence:result': a retry is not applied twice.
redis.register_function('mp2_fail', function(keys, args)
  local applied = redis.call('HGET', keys[3], args[3])
  if applied and string.sub(applied, 1, #args[4] + 1) == args[4] .. ':' then
    return tonumber(string.sub(applied, #args[4] + 2))
  end
  local item = redis.call('RPOP', keys[1])
  if not item then return redis.error_reply('NOLEASE no item in flight for this consumer') end
  local max_deliveries = tonumber(redis.call('HGET', args[1] .. 'meta', 'max_deliveries') or '0') or 0
  local id = redis.sha1hex(item)
  local dead = 0
  if max_deliveries > 0 and redis.call('HINCRBY', args[1] .. 'deliveries', id, 1) >= max_deliveries then
    redis.call('HDEL', args[1] .. 'deliveries', id)
    redis.call('LPUSH', args[1] .. 'dead', args[2])
    redis.call('HINCRBY', args[1] .. 'stats', 'dead', 1)
    local left = redis.call('DECR', args[1] .. 'unfinished')
    if left <= 0 then redis.call('PUBLISH', args[1] .. 'joined', left) end
    dead = 1
  else
    redis.call('RPUSH', keys[2], item)
  end
  redis.call('HINCRBY', args[1] .. 'stats', 'failed', 1)
  redis.call('HSET', keys[3], args[3], args[4] .. ':' .. dead)
  redis.call('PEXPIRE', keys[3], 600000)
  return dead
end)

-- reap: KEYS consumers, items; ARGV prefix ('mpq:{N}:') -> deliveries that failed
-- Every consumer whose lease ran out gives its in-flight items back, oldest
-- next in line; unfinished is unchanged, so join() still waits for them (unless
-- an item ran out of deliveries: a dead letter).
redis.register_function('mp2_reap', function(keys, args)
  local n = 0
  local max_deliveries = tonumber(redis.call('HGET', args[1] .. 'meta', 'max_deliveries') or '0') or 0
  for _, cid in ipairs(redis.call('SMEMBERS', keys[1])) do
    if redis.call('EXISTS', args[1] .. 'hb:' .. cid) == 0 then
      n = n + requeue_failed(args[1], args[1] .. 'inflight:' .. cid, keys[2], max_deliveries)
      redis.call('SREM', keys[1], cid)
    end
  end
  if n > 0 then redis.call('HINCRBY', args[1] .. 'stats', 'failed', n) end
  return n
end)

-- retry_dead: KEYS items, dead, unfinished -> items put back
-- Dead letters go back to the queue (behind what waits now), unfinished again.
redis.register_function('mp2_retry_dead', function(keys, args)
  local n = 0
  while true do
    local item = redis.call('RPOP', keys[2])
    if not item then break end
    redis.call('LPUSH', keys[1], item)
    redis.call('INCR', keys[3])
    n = n + 1
  end
  return n
end)

-- purge: KEYS items, dead, unfinished; ARGV channel -> items removed
-- Removes the waiting items and the dead letters (not what consumers hold now);
-- waiting items count as finished, so join() is not left waiting for them.
redis.register_function('mp2_purge', function(keys, args)
  local waiting = redis.call('LLEN', keys[1])
  local dead = redis.call('LLEN', keys[2])
  redis.call('DEL', keys[1], keys[2])
  if waiting > 0 then
    local left = redis.call('DECRBY', keys[3], waiting)
    if left <= 0 then redis.call('PUBLISH', args[1], left) end
  end
  return waiting + dead
end)

-- leave: KEYS consumers, items, inflight, hb; ARGV cid -> items handed back
-- A consumer that goes away cleanly gives back what it still holds at once.
redis.register_function('mp2_leave', function(keys, args)
  local n = requeue(keys[3], keys[2])
  redis.call('DEL', keys[4])
  redis.call('SREM', keys[1], args[1])
  return n
end)

-- shutdown: KEYS meta, notfull -> 1
redis.register_function('mp2_shutdown', function(keys, args)
  redis.call('HSET', keys[1], 'shutdown', '1')
  for i = 1, 64 do redis.call('LPUSH', keys[2], '1') end
  redis.call('LTRIM', keys[2], 0, 63)
  return 1
end)

-- lock_acquire: KEYS lock, fence; ARGV token, lease_ms -> {1, fence} | {0, pttl}
redis.register_function('mp2_lock_acquire', function(keys, args)
  if redis.call('SET', keys[1], args[1], 'NX', 'PX', args[2]) then
    return {1, redis.call('INCR', keys[2])}
  end
  return {0, redis.call('PTTL', keys[1])}
end)

-- lock_release: KEYS lock, wake; ARGV token -> 1 released, 0 not the holder (lease lost)
redis.register_function('mp2_lock_release', function(keys, args)
  if redis.call('GET', keys[1]) == args[1] then
    redis.call('DEL', keys[1], keys[2])
    redis.call('LPUSH', keys[2], '1')
    redis.call('PEXPIRE', keys[2], 60000)
    return 1
  end
  return 0
end)

-- lock_extend: KEYS lock; ARGV token, lease_ms -> 1 renewed, 0 lost
redis.register_function('mp2_lock_extend', function(keys, args)
  if redis.call('GET', keys[1]) == args[1] then
    redis.call('PEXPIRE', keys[1], args[2])
    return 1
  end
  return 0
end)

-- ==== mp::redis::Pool (owned by the pool's side: pool.cpp, serve.cpp) ====================
-- Keys of a pool N beside its task queue's: mpq:{N}:cancelled HASH task id -> 1 (marked
-- cancelled while a host held it; lives a day past the last cancel), channel mpq:{N}:cancel
-- (the ids of each mp2p_cancel call that marked some, newline-separated), stats.cancelled.

-- pool_cancel: KEYS items, cancelled; ARGV prefix, id... -> {removed, marked}
-- A task record's first field is its id (a codec string: 8-byte little-endian length, bytes).
-- A task still waiting in items is removed (it never runs; no longer unfinished); every other
-- id (held by a worker host, or finished) is marked and published, so the host holding it drops
-- or stops it and a host taking it later (handed out again) drops it.
redis.register_function('mp2p_cancel', function(keys, args)
  local prefix = args[1]
  local wanted = {}
  for i = 2, #args do wanted[args[i]] = true end
  local removed, kept = {}, {}
  for _, item in ipairs(redis.call('LRANGE', keys[1], 0, -1)) do
    local id = nil
    if #item >= 8 then
      local b1, b2, b3, b4, b5, b6, b7, b8 = string.byte(item, 1, 8)
      if b5 == 0 and b6 == 0 and b7 == 0 and b8 == 0 then
        id = string.sub(item, 9, 8 + b1 + b2 * 256 + b3 * 65536 + b4 * 16777216)
      end
    end
    if id and wanted[id] then
      wanted[id] = false
      removed[#removed + 1] = item
    else
      kept[#kept + 1] = item
    end
  end
  if #removed > 0 then
    if #removed <= 8 then
      for _, item in ipairs(removed) do redis.call('LREM', keys[1], 1, item) end
    else  -- many: the list is rebuilt in its order, once
      redis.call('DEL', keys[1])
      for i = 1, #kept, 1000 do
        redis.call('RPUSH', keys[1], unpack(kept, i, math.min(i + 999, #kept)))
      end
    end
    if redis.call('EXISTS', prefix .. 'deliveries') == 1 then
      for _, item in ipairs(removed) do redis.call('HDEL', prefix .. 'deliveries', redis.sha1hex(item)) end
    end
    local left = redis.call('DECRBY', prefix .. 'unfinished', #removed)
    if left <= 0 then redis.call('PUBLISH', prefix .. 'joined', left) end
  end
  local marked = {}
  for id, still in pairs(wanted) do
    if still then
      marked[#marked + 1] = id
      redis.call('HSET', keys[2], id, '1')
    end
  end
  if #marked > 0 then
    redis.call('PEXPIRE', keys[2], 86400000)
    redis.call('PUBLISH', prefix .. 'cancel', table.concat(marked, '\n'))
  end
  if #removed + #marked > 0 then
    redis.call('HINCRBY', prefix .. 'stats', 'cancelled', #removed + #marked)
  end
  return {#removed, #marked}
end)
)lua";

// for_each_kept_line(source, f): f(line) for each line of source that is kept: its indentation
// removed; blank lines and comment lines ("--" first) dropped.
template <class F>
constexpr void for_each_kept_line(std::string_view source, F f) {
  while (!source.empty()) {
    const std::size_t end = std::min(source.find('\n'), source.size());
    std::string_view line = source.substr(0, end);
    source.remove_prefix(std::min(end + 1, source.size()));
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    if (line.empty() || line.starts_with("--")) continue;
    f(line);
  }
}

constexpr std::size_t minified_size(std::string_view source) {
  std::size_t size = 0;
  for_each_kept_line(source, [&](std::string_view line) { size += line.size() + 1; });
  return size;
}

constexpr std::size_t kMinifiedSize = minified_size(kLibrarySource);
static_assert(kMinifiedSize < 16 * 1024,
              "mp's Lua library must stay under 16 KiB as sent (Redis's limit for a bulk string "
              "from a connection that has not logged in yet)");

constexpr std::array<char, kMinifiedSize + 1> minify(std::string_view source) {
  std::array<char, kMinifiedSize + 1> out{};
  std::size_t at = 0;
  for_each_kept_line(source, [&](std::string_view line) {
    for (char c : line) out[at++] = c;
    out[at++] = '\n';
  });
  out[at] = '\0';
  return out;
}

constexpr std::array<char, kMinifiedSize + 1> kMinified = minify(kLibrarySource);

}  // namespace

const char* const kFunctionLibrary = kMinified.data();

}  // namespace mp::redis::impl
