# Builds tests/consumer against mp one way and runs it:
#   MODE=add_subdirectory  mp's source tree embedded in the consumer's build
#   MODE=find_package      CMake package from an install tree
#   MODE=pkg_config        a plain Makefile and `pkg-config --cflags --libs mp`
# The install tree is PREFIX when given (a shared build's, a `dpkg -x` root's),
# else `cmake --install MP_BUILD_DIR` into WORK_DIR/prefix. REDIS=ON also
# builds and runs the mp-redis consumer (pkg_config mode). The consumer must
# print "consumer ok" and "mp MP_VERSION".
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})

include(${CMAKE_CURRENT_LIST_DIR}/run_step.cmake)

function(check_output program)
  run_step(${CMAKE_COMMAND} -E env "LD_LIBRARY_PATH=${library_dir}" ${program})
  message(STATUS "${program}: ${out}")
  if(NOT out MATCHES "consumer ok")
    message(FATAL_ERROR "${program} printed:\n${out}")
  endif()
  set(out "${out}" PARENT_SCOPE)
endfunction()

if(NOT MODE STREQUAL "add_subdirectory")
  if(NOT PREFIX)
    set(PREFIX ${WORK_DIR}/prefix)
    run_step(${CMAKE_COMMAND} --install ${MP_BUILD_DIR} --prefix ${PREFIX})
  endif()
  file(GLOB_RECURSE pc_files ${PREFIX}/*/mp.pc)
  list(GET pc_files 0 pc_file)
  get_filename_component(pc_dir ${pc_file} DIRECTORY)
  get_filename_component(library_dir ${pc_dir} DIRECTORY)  # for a shared libmp.so
endif()

# The consumer is built with the same flags as mp (a sanitizer build of mp
# needs a sanitizer build of the program that links it).
if(MODE STREQUAL "pkg_config")
  file(COPY ${MP_SOURCE_DIR}/tests/consumer/Makefile ${MP_SOURCE_DIR}/tests/consumer/main.cpp
            ${MP_SOURCE_DIR}/tests/consumer/redis_main.cpp DESTINATION ${WORK_DIR}/build)
  set(ENV{PKG_CONFIG_PATH} ${pc_dir})
  run_step(pkg-config --modversion mp)
  if(NOT out STREQUAL "${MP_VERSION}\n")
    message(FATAL_ERROR "pkg-config --modversion mp says '${out}', not ${MP_VERSION}")
  endif()
  set(make_args -C ${WORK_DIR}/build "CXXFLAGS=-O1 ${CONSUMER_CXX_FLAGS}")
  if(REDIS)
    list(APPEND make_args REDIS=1)
  endif()
  run_step(make ${make_args})
  if(REDIS)
    check_output(${WORK_DIR}/build/redis_consumer)
  endif()
else()
  set(configure_args -S ${MP_SOURCE_DIR}/tests/consumer -B ${WORK_DIR}/build -G Ninja -DMODE=${MODE}
                     "-DCMAKE_CXX_FLAGS=${CONSUMER_CXX_FLAGS}")
  if(MODE STREQUAL "find_package")
    list(APPEND configure_args -DCMAKE_PREFIX_PATH=${PREFIX})
  else()
    list(APPEND configure_args -DMP_SOURCE_DIR=${MP_SOURCE_DIR})
  endif()
  run_step(${CMAKE_COMMAND} ${configure_args})
  run_step(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
endif()
check_output(${WORK_DIR}/build/consumer)
if(NOT out MATCHES "mp ${MP_VERSION}\n")
  message(FATAL_ERROR "the consumer does not print mp's version ${MP_VERSION}:\n${out}")
endif()
