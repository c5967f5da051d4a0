// src/queue.cpp — the non-template parts of mp::Queue (mp/queue.hpp).
#include <string>

#include "mp/errors.hpp"
#include "mp/queue.hpp"

namespace mp::detail {

// throw_ring_failure(status, call): the ring reported something that is not a
// queue state (full, empty, shut down) but a fault: say what and what to do.
void throw_ring_failure(RingStatus status, const char* call) {
  switch (status) {
    case RingStatus::lock_error:
      throw Error(std::string("Queue.") + call +
                  "(): the queue's process-shared mutex failed (not recoverable); the queue cannot be used");
    case RingStatus::corrupted:
      throw Error(std::string("Queue.") + call +
                  "(): the queue's shared memory holds a record that cannot be; something overwrote it");
    default: throw Error(std::string("Queue.") + call + "(): unexpected ring status");
  }
}

}  // namespace mp::detail
