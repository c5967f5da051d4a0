# The Debian package (`make package`), checked end to end:
#  1. cpack builds libmp-dev_VERSION_ARCH.deb from the already-built tree
#     (MP_BUILD_DIR: nothing is compiled again);
#  2. its control fields carry the project version and the Depends;
#  3. `dpkg -x` unpacks it into a scratch root (no root rights, no container);
#  4. the find_package and pkg-config consumers build against that root.
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
include(${CMAKE_CURRENT_LIST_DIR}/run_step.cmake)

run_step(cpack -G DEB -B ${WORK_DIR}/deb --config ${MP_BUILD_DIR}/CPackConfig.cmake)
file(GLOB debs ${WORK_DIR}/deb/libmp-dev_${MP_VERSION}_*.deb)
if(NOT debs)
  message(FATAL_ERROR "cpack made no libmp-dev_${MP_VERSION}_*.deb:\n${out}")
endif()
list(GET debs 0 deb)
message(STATUS "package: ${deb}")

run_step(dpkg-deb --field ${deb} Package Version Depends)
message(STATUS "${out}")
if(NOT out MATCHES "Package: libmp-dev\n" OR NOT out MATCHES "Version: ${MP_VERSION}\n")
  message(FATAL_ERROR "wrong control fields:\n${out}")
endif()
if(REDIS AND NOT out MATCHES "Depends:[^\n]*libhiredis-dev")
  message(FATAL_ERROR "libmp-dev does not depend on libhiredis-dev:\n${out}")
endif()

run_step(dpkg-deb --contents ${deb})
foreach(path include/mp/mp.hpp /libmp.a cmake/mp/mpConfig.cmake pkgconfig/mp.pc)
  string(FIND "${out}" "${path}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "libmp-dev lacks ${path}:\n${out}")
  endif()
endforeach()

run_step(dpkg-deb -x ${deb} ${WORK_DIR}/root)
if(REDIS)
  # The mp-redis command, unpacked, runs (and says how to use it).
  execute_process(COMMAND ${WORK_DIR}/root/usr/bin/mp-redis RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT out MATCHES "usage: mp-redis")
    message(FATAL_ERROR "the packaged mp-redis (exit ${rc}) printed:\n${out}")
  endif()
endif()
foreach(mode find_package pkg_config)
  run_step(${CMAKE_COMMAND} -DMODE=${mode} -DMP_SOURCE_DIR=${MP_SOURCE_DIR} -DWORK_DIR=${WORK_DIR}/${mode}
           -DPREFIX=${WORK_DIR}/root/usr "-DCONSUMER_CXX_FLAGS=${CONSUMER_CXX_FLAGS}" -DMP_VERSION=${MP_VERSION}
           -DREDIS=${REDIS} -P ${MP_SOURCE_DIR}/tests/consumer/run.cmake)
  message(STATUS "${mode} consumer against the unpacked package: ok")
endforeach()
