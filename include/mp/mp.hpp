// mp/mp.hpp — everything in mp but the Redis backend (<mp/redis.hpp>).
//
//   #include <mp/mp.hpp>
//   mp::Queue<int> q;
//   mp::Process p([](mp::Queue<int> q) { q.put(42); }, q);
//   p.start();
//   int answer = q.get();
//   p.join();
#pragma once

#include "mp/codec.hpp"
#include "mp/errors.hpp"
#include "mp/listener.hpp"
#include "mp/pipe.hpp"
#include "mp/pool.hpp"
#include "mp/process.hpp"
#include "mp/py.hpp"
#include "mp/queue.hpp"
#include "mp/shared.hpp"
#include "mp/synchronize.hpp"
