// mp/redis.hpp — mp over Redis, when one machine is not enough (link mp::redis).
//
// mp::redis::Queue<T>, mp::redis::JoinableQueue<T> (mp/redis/queue.hpp) and
// mp::redis::Lock (mp/redis/lock.hpp): the same members and errors as their
// shared-memory twins, over one Redis 7 server, so code moves between one
// machine and many by changing one type. Processes meet by url and name.
//
// The url is redis://[[user]:password@]host:port[/db]: a Redis 6+ ACL user, or
// only a password for requirepass (percent-encode @ : / % in it). The login is
// sent on every connection and reconnection; a server that refuses it raises
// mp::AuthenticationError at once (never retried as an outage), one that
// refuses the database mp::ValueError at once; no error message shows the
// password (urls appear as redis://user:***@host:port).
//
// Timeouts: a call with a timeout ends within it plus 0.5 s, even against a
// frozen server; a call without one gives up Options::server_timeout (10 s)
// after the server fell silent, with mp::ConnectionError. Dropping a handle
// never waits more than about a second for the server.
//
//   mp::redis::JoinableQueue<int> q("redis://127.0.0.1:6379", "jobs");
//   q.put(42);
//   int job = q.get();
//   q.task_done();
//   q.join();
//
// Safety: handles may be copied and used from any thread and any process
// (forked or separate programs). Visibility: the server orders every operation.
// Lifetime: state lives in the server; handles hold only connections, which a
// forked child re-opens on first use. Design notes: REDIS.md.
#pragma once

#include "mp/redis/core.hpp"
#include "mp/redis/lock.hpp"
#include "mp/redis/queue.hpp"
