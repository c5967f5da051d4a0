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
#include "mp/context.hpp"
#include "mp/detail/export.hpp"
#include "mp/errors.hpp"
#include "mp/listener.hpp"
#include "mp/pipe.hpp"
#include "mp/pool.hpp"
#include "mp/process.hpp"
#include "mp/py.hpp"
#include "mp/queue.hpp"
#include "mp/shared.hpp"
#include "mp/synchronize.hpp"

#include <string_view>

namespace mp {

// mp::version()
// The version of the mp library this program is linked with, e.g. "0.3.0": the
// CMake project version, the same as the CMake package's, the pkg-config
// files' and the Debian package's. Never throws.
[[nodiscard]] MP_API std::string_view version() noexcept;

}  // namespace mp
