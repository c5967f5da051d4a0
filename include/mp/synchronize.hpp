// mp/synchronize.hpp — Python's multiprocessing.synchronize: every
// synchronisation primitive, shared by processes (and threads).
//
//   #include <mp/synchronize.hpp>
//   mp::Lock lock;                       // mp/lock.hpp
//   mp::Semaphore slots(4);              // mp/semaphore.hpp
//   std::scoped_lock hold(lock, slots);  // all Lockable
//   mp::Barrier meet(2);                 // mp/barrier.hpp
//
// One concept per header; this one gathers them under the name API.md gives:
// Lock (lock.hpp), RLock (rlock.hpp), Semaphore and BoundedSemaphore
// (semaphore.hpp), Event (event.hpp), Condition (condition.hpp), Barrier
// (barrier.hpp).
//
// Safety, Visibility, Lifetime: see each header. In short: every primitive is
// a cheap copyable handle onto one object in an anonymous MAP_SHARED region,
// usable from any thread of any process that has a handle (children forked
// after it was made inherit it), freed by the kernel with the last handle.
#pragma once

#include "mp/barrier.hpp"
#include "mp/condition.hpp"
#include "mp/event.hpp"
#include "mp/lock.hpp"
#include "mp/rlock.hpp"
#include "mp/semaphore.hpp"
