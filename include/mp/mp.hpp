// mp/mp.hpp — everything in mp but the Redis backend (<mp/redis.hpp>).
//
//   #include <mp/mp.hpp>
//   mp::Queue<int> q;
//   mp::Process p([](mp::Queue<int> q) { q.put(42); }, q);
//   p.start();
//   int answer = q.get();
//   p.join();
#pragma once

#include "mp/errors.hpp"
#if __has_include("mp/codec.hpp")
#include "mp/codec.hpp"
#endif
#if __has_include("mp/process.hpp")
#include "mp/process.hpp"
#endif
#if __has_include("mp/synchronize.hpp")
#include "mp/synchronize.hpp"
#endif
#if __has_include("mp/shared.hpp")
#include "mp/shared.hpp"
#endif
#if __has_include("mp/queue.hpp")
#include "mp/queue.hpp"
#endif
#if __has_include("mp/pipe.hpp")
#include "mp/pipe.hpp"
#endif
#if __has_include("mp/pool.hpp")
#include "mp/pool.hpp"
#endif
