# `make docs` (the `docs` target): the API reference with Doxygen (Debian's
# doxygen package) into BUILD/docs/html, from the public headers' contract
# blocks, with README.md as the main page and docs/*.md as further pages.
# A warning on a public header (include/mp) fails the build.
find_package(Doxygen)
find_package(Python3 COMPONENTS Interpreter)
if(NOT DOXYGEN_FOUND OR NOT Python3_FOUND)
  message(STATUS "mp: doxygen or python3 missing, no `docs` target (make docs installs them)")
  return()
endif()
set(MP_DOCS_OUTPUT ${PROJECT_BINARY_DIR}/docs)
file(GLOB MP_DOCS_PAGE_LIST ${PROJECT_SOURCE_DIR}/docs/*.md)
list(JOIN MP_DOCS_PAGE_LIST " " MP_DOCS_PAGES)
configure_file(${PROJECT_SOURCE_DIR}/docs/Doxyfile.in ${MP_DOCS_OUTPUT}/Doxyfile @ONLY)
add_custom_target(docs
  COMMAND ${CMAKE_COMMAND} -E rm -rf ${MP_DOCS_OUTPUT}/html ${MP_DOCS_OUTPUT}/warnings.log
  COMMAND ${DOXYGEN_EXECUTABLE} ${MP_DOCS_OUTPUT}/Doxyfile
  COMMAND ${CMAKE_COMMAND} -DLOG=${MP_DOCS_OUTPUT}/warnings.log -DPUBLIC=${PROJECT_SOURCE_DIR}/include/mp
          -P ${PROJECT_SOURCE_DIR}/cmake/docs_check.cmake
  WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
  COMMENT "API reference: ${MP_DOCS_OUTPUT}/html/index.html"
  VERBATIM)
