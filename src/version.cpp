// mp::version(): the one version number, CMake's project version, compiled in
// as MP_VERSION_STRING (see the top-level CMakeLists.txt).
#include <string_view>

#include "mp/mp.hpp"

#ifndef MP_VERSION_STRING
#error "MP_VERSION_STRING must be defined by the build (the CMake project version)"
#endif

namespace mp {

std::string_view version() noexcept { return MP_VERSION_STRING; }

}  // namespace mp
