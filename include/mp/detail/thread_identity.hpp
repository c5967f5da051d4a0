// mp/detail/thread_identity.hpp — "which thread of which process am I", cheaply.
//
// mp identifies the holder of a lock by its kernel thread id (gettid). Thread
// ids are unique among the live threads of the whole pid namespace, so one
// number names "this process + this thread": two threads of one process differ,
// and a child made by fork() gets a new id even though it continues the
// parent's thread. The robust futex ABI (kernel Documentation/robust-futex-ABI)
// stores exactly this id in a held mutex's lock word, and the kernel clears it
// when the holder dies, so a stale id can never be mistaken for a live owner.
//
// gettid() is a system call; current_tid() caches the answer per thread. The
// cache would be wrong in a child made by fork() (the child's only thread has a
// new id but inherits the thread_local), so a pthread_atfork child handler,
// registered before any id is cached, forgets it. Children made by fork()
// (mp::Process, Pool, plain fork) are therefore handled; a raw clone() or
// _Fork(), which skip atfork handlers, is not supported.
//
// Safety: every function here may be called from any thread at any time.
#pragma once

#include <pthread.h>
#include <sys/types.h>
#include <unistd.h>

namespace mp::detail {

// The calling thread's id, 0 while not yet looked up.
inline thread_local pid_t cached_thread_id = 0;

// forget_thread_id_after_fork(): the atfork child handler. It runs in the
// child's only thread, the one that called fork(), whose cache is the only one
// that exists there.
inline void forget_thread_id_after_fork() noexcept { cached_thread_id = 0; }

// current_tid(): the kernel id of the calling thread (what a robust mutex
// stores in its lock word while this thread holds it).
inline pid_t current_tid() noexcept {
  pid_t tid = cached_thread_id;
  if (tid == 0) [[unlikely]] {
    // A function-local static: registered exactly once, and before this or any
    // other thread can have cached an id (every thread passes through here
    // first), so no cached id can outlive a fork unnoticed.
    static const bool registered = (::pthread_atfork(nullptr, nullptr, &forget_thread_id_after_fork) == 0);
    (void)registered;
    tid = static_cast<pid_t>(::gettid());
    cached_thread_id = tid;
  }
  return tid;
}

}  // namespace mp::detail
