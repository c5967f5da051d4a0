# mp.pc and mp-redis.pc, installed beside the CMake package (LIBDIR/pkgconfig).
#
# What a program linking mp needs besides -lmp depends on the kind of library:
# a static libmp.a brings none of its own dependencies, so they are public
# (Requires/Libs: `pkg-config --libs mp` is enough); a shared libmp.so records
# them itself, so they are private (Requires.private/Libs.private, used only
# by `pkg-config --static`).
set(MP_PC_PKGCONFIG_DIR ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
file(RELATIVE_PATH MP_PC_PREFIX_FROM_PCDIR /prefix/${MP_PC_PKGCONFIG_DIR} /prefix)
string(REGEX REPLACE "/$" "" MP_PC_PREFIX_FROM_PCDIR "${MP_PC_PREFIX_FROM_PCDIR}")

if(BUILD_SHARED_LIBS)
  set(mp_pc_requires "Requires.private")
  set(mp_pc_libs "Libs.private")
else()
  set(mp_pc_requires "Requires")
  set(mp_pc_libs "Libs")
endif()

# libmp: pthread always; libcrypto (HMAC for Listener/Client) when libmp links it.
set(mp_modules "")
get_target_property(mp_links mp LINK_LIBRARIES)
if("OpenSSL::Crypto" IN_LIST mp_links)
  list(APPEND mp_modules libcrypto)
endif()
list(JOIN mp_modules ", " mp_modules)
set(MP_PC_LINES "")
if(mp_modules)
  string(APPEND MP_PC_LINES "${mp_pc_requires}: ${mp_modules}\n")
endif()
if(BUILD_SHARED_LIBS)
  string(APPEND MP_PC_LINES "Libs: -L\${libdir} -lmp\nLibs.private: -pthread")
else()
  string(APPEND MP_PC_LINES "Libs: -L\${libdir} -lmp -pthread")
endif()
configure_file(${CMAKE_CURRENT_LIST_DIR}/mp.pc.in ${PROJECT_BINARY_DIR}/mp.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/mp.pc DESTINATION ${MP_PC_PKGCONFIG_DIR})

# libmp_redis: mp itself (always public: its headers include mp's) and hiredis.
if(MP_HAVE_REDIS)
  if(BUILD_SHARED_LIBS)
    set(MP_REDIS_PC_LINES "Requires: mp = ${PROJECT_VERSION}\nRequires.private: hiredis\n")
  else()
    set(MP_REDIS_PC_LINES "Requires: mp = ${PROJECT_VERSION}, hiredis\n")
  endif()
  string(APPEND MP_REDIS_PC_LINES "Libs: -L\${libdir} -lmp_redis")
  configure_file(${CMAKE_CURRENT_LIST_DIR}/mp-redis.pc.in ${PROJECT_BINARY_DIR}/mp-redis.pc @ONLY)
  install(FILES ${PROJECT_BINARY_DIR}/mp-redis.pc DESTINATION ${MP_PC_PKGCONFIG_DIR})
endif()
