// mp/detail/export.hpp — MP_API, the mark on what libmp.so and libmp_redis.so
// export.
//
// mp's libraries are compiled with hidden visibility (-fvisibility=hidden,
// the CMake target property CXX_VISIBILITY_PRESET), static or shared alike, so
// a shared libmp.so exports only what is marked MP_API: the public classes and
// functions that are defined in src/, and the mp::detail functions and classes
// that the headers' templates and inline functions call.
//
//   class MP_API Lock { ... };                           // every member exported
//   [[nodiscard]] MP_API std::string_view version() noexcept;
//
// Templates defined entirely in headers need no mark: they are instantiated
// in the program that uses them. The mark is the same when building mp and
// when using it (ELF needs no dllimport), so static and shared builds compile
// mp's sources with the same flags. Safety, Visibility, Lifetime: n/a.
#pragma once

#if defined(__GNUC__) || defined(__clang__)
#define MP_API __attribute__((visibility("default")))
#else
#define MP_API
#endif
