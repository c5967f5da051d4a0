// src/pickle_opcodes.hpp — the pickle opcodes mp reads or refuses, with
// Python's names (pickletools documents each). Private to libmp.
#pragma once

namespace mp::detail::pickle_opcode {

// Data opcodes mp reads (and, for a subset, writes).
inline constexpr unsigned char MARK = '(', STOP = '.', POP = '0', POP_MARK = '1', DUP = '2';
inline constexpr unsigned char NONE = 'N', NEWTRUE = 0x88, NEWFALSE = 0x89;
inline constexpr unsigned char BININT = 'J', BININT1 = 'K', BININT2 = 'M', LONG1 = 0x8a, LONG4 = 0x8b;
inline constexpr unsigned char BINFLOAT = 'G';
inline constexpr unsigned char BINUNICODE = 'X', SHORT_BINUNICODE = 0x8c, BINUNICODE8 = 0x8d;
inline constexpr unsigned char BINBYTES = 'B', SHORT_BINBYTES = 'C', BINBYTES8 = 0x8e;
inline constexpr unsigned char EMPTY_LIST = ']', APPEND = 'a', APPENDS = 'e', LIST = 'l';
inline constexpr unsigned char EMPTY_TUPLE = ')', TUPLE = 't', TUPLE1 = 0x85, TUPLE2 = 0x86, TUPLE3 = 0x87;
inline constexpr unsigned char EMPTY_DICT = '}', DICT = 'd', SETITEM = 's', SETITEMS = 'u';
inline constexpr unsigned char PROTO = 0x80, FRAME = 0x95;
inline constexpr unsigned char MEMOIZE = 0x94, BINPUT = 'q', LONG_BINPUT = 'r', BINGET = 'h',
                               LONG_BINGET = 'j';

// Opcodes that name a class or function, or run code: always refused.
inline constexpr unsigned char GLOBAL = 'c', STACK_GLOBAL = 0x93, REDUCE = 'R', BUILD = 'b', INST = 'i',
                               OBJ = 'o', NEWOBJ = 0x81, NEWOBJ_EX = 0x92, EXT1 = 0x82, EXT2 = 0x83,
                               EXT4 = 0x84, PERSID = 'P', BINPERSID = 'Q';
// Kinds py::Object does not hold, and protocol 0/1 text forms: refused.
inline constexpr unsigned char EMPTY_SET = 0x8f, ADDITEMS = 0x90, FROZENSET = 0x91, BYTEARRAY8 = 0x96,
                               NEXT_BUFFER = 0x97, READONLY_BUFFER = 0x98, STRING = 'S', BINSTRING = 'T',
                               SHORT_BINSTRING = 'U', UNICODE = 'V', FLOAT = 'F', INT = 'I', LONG = 'L',
                               PUT = 'p', GET = 'g';

}  // namespace mp::detail::pickle_opcode
