# Builds tests/consumer against mp, either with add_subdirectory or with
# find_package after installing mp into a private prefix, then runs it.
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
# The consumer is built with the same flags as mp (a sanitizer build of mp
# needs a sanitizer build of the program that links it).
set(configure_args -S ${MP_SOURCE_DIR}/tests/consumer -B ${WORK_DIR}/build -G Ninja -DMODE=${MODE}
                   "-DCMAKE_CXX_FLAGS=${CONSUMER_CXX_FLAGS}")
if(MODE STREQUAL "find_package")
  execute_process(COMMAND ${CMAKE_COMMAND} --install ${MP_BUILD_DIR} --prefix ${WORK_DIR}/prefix
                  RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "cmake --install failed: ${rc}")
  endif()
  list(APPEND configure_args -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix)
else()
  list(APPEND configure_args -DMP_SOURCE_DIR=${MP_SOURCE_DIR})
endif()
foreach(step "${configure_args}" "--build;${WORK_DIR}/build" "${WORK_DIR}/build/consumer")
  if(step STREQUAL "${WORK_DIR}/build/consumer")
    execute_process(COMMAND ${step} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  else()
    execute_process(COMMAND ${CMAKE_COMMAND} ${step} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  endif()
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "step '${step}' failed (${rc}):\n${out}")
  endif()
endforeach()
message(STATUS "consumer output: ${out}")
if(NOT out MATCHES "consumer ok")
  message(FATAL_ERROR "consumer printed:\n${out}")
endif()
