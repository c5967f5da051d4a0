# The shared-library build (BUILD_SHARED_LIBS=ON), checked end to end:
#  1. mp is configured and built shared in WORK_DIR/mp (same compiler flags as
#     the release build, so ccache serves the objects), with its examples;
#  2. libmp.so and libmp_redis.so carry SONAME lib*.so.MAJOR.MINOR and export
#     mp's API but not its internals (the hidden-visibility default);
#  3. every example with an .expect file runs and prints what it must;
#  4. the shared install tree serves the find_package and pkg-config consumers.
file(REMOVE_RECURSE ${WORK_DIR})
include(${CMAKE_CURRENT_LIST_DIR}/run_step.cmake)

set(build ${WORK_DIR}/mp)
run_step(${CMAKE_COMMAND} -S ${MP_SOURCE_DIR} -B ${build} -G Ninja -DCMAKE_BUILD_TYPE=Release
         -DBUILD_SHARED_LIBS=ON -DMP_WERROR=ON -DMP_BUILD_TESTS=OFF -DMP_BUILD_BENCHMARKS=OFF
         -DMP_BUILD_EXAMPLES=ON "-DCMAKE_CXX_FLAGS=${CONSUMER_CXX_FLAGS}")
run_step(${CMAKE_COMMAND} --build ${build} -j 2)

string(REGEX MATCH "^[0-9]+\\.[0-9]+" major_minor "${MP_VERSION}")
foreach(library mp mp_redis)
  if(NOT EXISTS ${build}/lib${library}.so.${MP_VERSION})
    if(library STREQUAL "mp_redis")
      continue()  # built only with hiredis
    endif()
    message(FATAL_ERROR "no ${build}/lib${library}.so.${MP_VERSION}")
  endif()
  run_step(readelf --dynamic ${build}/lib${library}.so)
  if(NOT out MATCHES "SONAME[^\n]*\\[lib${library}\\.so\\.${major_minor}\\]")
    message(FATAL_ERROR "lib${library}.so has no SONAME lib${library}.so.${major_minor}:\n${out}")
  endif()
  run_step(nm --dynamic --defined-only --demangle ${build}/lib${library}.so)
  set(exports "${out}")
  set(must_export_mp "mp::Process::start()" "mp::Lock::Lock()" "mp::version()" "typeinfo for mp::ValueError")
  set(must_hide_mp "mp::detail::reset_table_in_child" "mp::detail::PoolCore::")
  set(must_export_mp_redis "mp::redis::detail::QueueCore::QueueCore")
  set(must_hide_mp_redis "mp::redis::impl::")
  foreach(symbol ${must_export_${library}})
    string(FIND "${exports}" "${symbol}" at)
    if(at EQUAL -1)
      message(FATAL_ERROR "lib${library}.so does not export ${symbol}")
    endif()
  endforeach()
  foreach(symbol ${must_hide_${library}})
    if("\n${exports}" MATCHES "\n[0-9a-f]+ [A-Za-z] ${symbol}")  # a symbol whose name starts so
      message(FATAL_ERROR "lib${library}.so exports an internal symbol: ${symbol}")
    endif()
  endforeach()
endforeach()

file(GLOB expectations ${MP_SOURCE_DIR}/examples/*.expect)
foreach(expect ${expectations})
  get_filename_component(example ${expect} NAME_WE)
  run_step(${CMAKE_COMMAND} -DPROGRAM=${build}/examples/${example} -DEXPECT=${expect}
           -P ${MP_SOURCE_DIR}/cmake/run_example.cmake)
  message(STATUS "example ${example}: ok")
endforeach()

run_step(${CMAKE_COMMAND} --install ${build} --prefix ${WORK_DIR}/prefix)
foreach(mode find_package pkg_config)
  run_step(${CMAKE_COMMAND} -DMODE=${mode} -DMP_SOURCE_DIR=${MP_SOURCE_DIR} -DWORK_DIR=${WORK_DIR}/${mode}
           -DPREFIX=${WORK_DIR}/prefix "-DCONSUMER_CXX_FLAGS=${CONSUMER_CXX_FLAGS}" -DMP_VERSION=${MP_VERSION}
           -DREDIS=${REDIS} -P ${MP_SOURCE_DIR}/tests/consumer/run.cmake)
  message(STATUS "${mode} consumer against the shared libraries: ok")
endforeach()
