# `make package` (cpack -G DEB in the build tree): libmp-dev, a Debian package
# holding what `cmake --install` installs: the headers, the libraries (static
# by default; shared with BUILD_SHARED_LIBS=ON), the CMake package, the
# pkg-config files and the mp-redis command when it is built. Its version is
# the project version.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME libmp-dev)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION} (development files)")
set(CPACK_PACKAGE_DESCRIPTION
    "mp brings Python's multiprocessing to C++20 on Linux: Process, Pool, Queue, Pipe,\n\
Lock and the other synchronisation primitives, shared values, and a Redis\n\
backend for Queue and Lock across machines. This package holds the headers,\n\
the libraries, the CMake package (find_package(mp)) and the pkg-config files\n\
(mp, mp-redis).")
set(CPACK_PACKAGE_CONTACT "mp maintainers <mp-maintainers@localhost>")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # libmp-dev_VERSION_ARCH.deb
set(CPACK_DEBIAN_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)

# Depends: what a program built against the package needs. A static libmp.a
# needs the -dev packages of what it links (their .so links and .pc files); the
# CMake package finds hiredis through pkg-config. A shared build adds the
# runtime libraries' packages, computed by dpkg-shlibdeps.
set(mp_depends "libstdc++-12-dev | libstdc++-dev")
if(MP_FIND_OPENSSL)
  list(APPEND mp_depends libssl-dev)
endif()
if(MP_HAVE_REDIS)
  list(APPEND mp_depends libhiredis-dev "pkgconf | pkg-config")
endif()
list(JOIN mp_depends ", " CPACK_DEBIAN_PACKAGE_DEPENDS)
if(BUILD_SHARED_LIBS)
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
endif()
include(CPack)
