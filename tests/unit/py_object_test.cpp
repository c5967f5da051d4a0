// mp::py::Object: construction, getters, ==, repr(), and pickles: round
// trips through mp's own writer and reader, pickles made by the machine's
// Python (protocols 2 to 5), and everything the reader must refuse.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "mp/errors.hpp"
#include "mp/pipe.hpp"
#include "mp/py.hpp"
#include "unit/python_peer.hpp"

namespace {

namespace py = mp::py;

std::vector<std::byte> from_hex(const std::string& hex) {
  std::vector<std::byte> out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<std::byte>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

std::vector<std::byte> bytes(std::initializer_list<unsigned char> values) {
  std::vector<std::byte> out;
  for (unsigned char v : values) out.push_back(static_cast<std::byte>(v));
  return out;
}

std::string refusal(const std::vector<std::byte>& pickle) {
  try {
    py::Object object = py::unpickle(pickle);
    return "accepted: " + object.repr();
  } catch (const mp::CodecError& error) {
    return error.what();
  }
}

py::Object sample() {
  return py::Dict{{"x", py::List{1, 2.5, "s"}},
                  {"t", py::Tuple{1, py::None, true, false}},
                  {"b", py::Bytes(std::string("\x00\xff", 2))},
                  {"big", INT64_MAX},
                  {"neg", INT64_MIN},
                  {"unicode", "h\u00e9llo \u2603 \U0001f600"},
                  {"nested", py::Dict{{"empty_list", py::List{}},
                                      {"empty_tuple", py::Tuple{}},
                                      {"empty_dict", py::Dict{}},
                                      {7, "int key"}}},
                  {"floats", py::List{0.0, -1.5, 1e300, std::numeric_limits<double>::infinity()}}};
}

TEST(PyObject, KindsGettersAndWrongKindErrors) {
  py::Object none;
  EXPECT_TRUE(none.is_none());
  EXPECT_EQ(py::Object(true).as_bool(), true);
  EXPECT_EQ(py::Object(42).as_int(), 42);
  EXPECT_EQ(py::Object(std::uint8_t{7}).as_int(), 7);
  EXPECT_EQ(py::Object(2.5).as_float(), 2.5);
  EXPECT_EQ(py::Object("s").as_str(), "s");
  EXPECT_EQ(py::Object(std::vector<int>{1, 2}), (py::List{1, 2}));
  EXPECT_EQ(py::Object(std::map<std::string, int>{{"a", 1}}), (py::Dict{{"a", 1}}));
  EXPECT_THROW(py::Object(std::numeric_limits<std::uint64_t>::max()), mp::ValueError);
  try {
    (void)py::Object("text").as_int();
    ADD_FAILURE();
  } catch (const mp::ValueError& error) {
    EXPECT_NE(std::string(error.what()).find("wanted a int, but it holds a str"), std::string::npos)
        << error.what();
  }
  EXPECT_THROW((void)py::Object(1).as_list(), mp::ValueError);
  EXPECT_THROW((void)py::Object(py::List{1})[5], mp::ValueError);
  EXPECT_EQ(py::Object(py::List{1, 2, 3})[-1], 3);
  EXPECT_THROW((void)py::Object(py::Dict{})["missing"], mp::ValueError);
  int kinds = py::Object(py::Tuple{}).visit([](const auto& held) {
    return std::is_same_v<std::decay_t<decltype(held)>, py::Tuple> ? 1 : 0;
  });
  EXPECT_EQ(kinds, 1);
}

TEST(PyObject, EqualityFollowsPython) {
  EXPECT_EQ(py::Object(1), py::Object(1.0));
  EXPECT_EQ(py::Object(true), py::Object(1));
  EXPECT_NE(py::Object(INT64_MAX), py::Object(9223372036854775807.0)) << "2^63 - 1 is not the double 2^63";
  EXPECT_NE(py::Object(std::nan("")), py::Object(std::nan("")));
  EXPECT_NE(py::Object(py::List{1}), py::Object(py::Tuple{1}));
  EXPECT_NE(py::Object("a"), py::Object(py::Bytes("a")));
  EXPECT_EQ(py::Object(py::Dict{{"a", 1}, {"b", 2}}), py::Object(py::Dict{{"b", 2}, {"a", 1}}));
  py::Dict dict{{1, "one"}, {1.0, "float one"}, {true, "true"}};
  EXPECT_EQ(dict.size(), 1U) << "1, 1.0 and True are one key, as in Python";
  EXPECT_EQ(dict.at(1).as_str(), "true");
  EXPECT_THROW(dict.set(py::List{}, 1), mp::ValueError) << "a list is unhashable";
}

TEST(PyObject, ReprPrintsAsPython) {
  EXPECT_EQ(py::Object().repr(), "None");
  EXPECT_EQ(py::Object(py::Tuple{1}).repr(), "(1,)");
  EXPECT_EQ(py::Object(py::Tuple{}).repr(), "()");
  EXPECT_EQ(py::Object(py::List{true, false, py::None}).repr(), "[True, False, None]");
  EXPECT_EQ(py::Object(0.1).repr(), "0.1");
  EXPECT_EQ(py::Object(1.0).repr(), "1.0");
  EXPECT_EQ(py::Object(-0.0).repr(), "-0.0");
  EXPECT_EQ(py::Object(1e16).repr(), "1e+16");
  EXPECT_EQ(py::Object(1e15).repr(), "1000000000000000.0");
  EXPECT_EQ(py::Object(1e-5).repr(), "1e-05");
  EXPECT_EQ(py::Object(0.0001).repr(), "0.0001");
  EXPECT_EQ(py::Object(1.5e-7).repr(), "1.5e-07");
  EXPECT_EQ(py::Object(std::nan("")).repr(), "nan");
  EXPECT_EQ(py::Object("it's").repr(), "\"it's\"");
  EXPECT_EQ(py::Object("a'b\"c\n").repr(), "'a\\'b\"c\\n'");
  EXPECT_EQ(py::Object(py::Bytes(std::string("\x00\xff'a", 4))).repr(), "b\"\\x00\\xff'a\"");
  EXPECT_EQ(py::Object(py::Dict{{"k", py::List{}}}).repr(), "{'k': []}");
  std::ostringstream out;
  out << py::Object(py::Dict{{1, 2}});
  EXPECT_EQ(out.str(), "{1: 2}");
}

TEST(PyObject, PickleRoundTripsEveryKind) {
  py::Object value = sample();
  EXPECT_EQ(py::unpickle(py::pickle(value)), value);
  for (std::int64_t n :
       {std::int64_t{0}, std::int64_t{255}, std::int64_t{256}, std::int64_t{65535}, std::int64_t{65536},
        std::int64_t{-1}, std::int64_t{INT32_MIN}, std::int64_t{INT32_MAX}, std::int64_t{INT32_MAX} + 1,
        std::int64_t{-129}, INT64_MIN, INT64_MAX})
    EXPECT_EQ(py::unpickle(py::pickle(n)).as_int(), n) << n;
  std::string big(300, 'x');
  EXPECT_EQ(py::unpickle(py::pickle(big)).as_str(), big);
  EXPECT_EQ(py::unpickle(py::pickle(py::Bytes(big))).as_bytes().str(), big);
}

TEST(PyObject, PickleRefusesAStrThatIsNotUtf8) {
  EXPECT_THROW((void)py::pickle(std::string("\xff")), mp::CodecError);
  EXPECT_THROW((void)py::pickle(std::string("\xe2\x98")), mp::CodecError);
}

TEST(PyObject, ConnectionOfObjectCarriesPickles) {
  auto [a, b] = mp::Pipe<py::Object>();
  a.send(sample());
  EXPECT_EQ(b.recv(), sample());
}

TEST(PyObject, ReadsPicklesPythonMade) {
  mp::test::PythonPeer python({"dump"});
  std::map<std::string, std::vector<std::byte>> pickles;
  for (std::string line = python.read_line(); !line.empty(); line = python.read_line()) {
    auto space = line.find(' ');
    pickles[line.substr(0, space)] = from_hex(line.substr(space + 1));
  }
  ASSERT_EQ(python.wait(), 0);
  ASSERT_EQ(pickles.size(), 15U);

  py::Object without_bytes = sample();
  (void)without_bytes.as_dict().erase("b");
  EXPECT_EQ(py::unpickle(pickles["sample2"]), without_bytes);
  for (const char* name : {"sample3", "sample4", "sample5"})
    EXPECT_EQ(py::unpickle(pickles[name]), sample()) << name;
  EXPECT_EQ(py::unpickle(pickles["shared"]), (py::List{py::List{1, 2}, py::List{1, 2}, py::Tuple{"k", "k"}}));
  EXPECT_EQ(py::unpickle(pickles["big_dict"]).as_dict().size(), 5000U);
  EXPECT_EQ(py::unpickle(pickles["big_dict"])[4999].as_str(), "4999");

  EXPECT_NE(refusal(pickles["int_2_63"]).find("does not fit in 64 bits"), std::string::npos);
  EXPECT_NE(refusal(pickles["int_minus_2_63_minus_1"]).find("does not fit in 64 bits"), std::string::npos);
  EXPECT_NE(refusal(pickles["int_2_100"]).find("does not fit in 64 bits"), std::string::npos);
  EXPECT_NE(refusal(pickles["recursive"]).find("recursive"), std::string::npos);
  EXPECT_NE(refusal(pickles["set"]).find("EMPTY_SET"), std::string::npos);
  EXPECT_NE(refusal(pickles["bytearray"]).find("BYTEARRAY8"), std::string::npos);
  EXPECT_NE(refusal(pickles["bytes2"]).find("refused opcode GLOBAL"), std::string::npos)
      << refusal(pickles["bytes2"]);
  EXPECT_NE(refusal(pickles["global2"]).find("refused opcode GLOBAL"), std::string::npos);
  EXPECT_NE(refusal(pickles["reduce4"]).find("refused opcode STACK_GLOBAL"), std::string::npos);
}

TEST(PyObject, RefusesEveryOpcodeThatRunsCode) {
  // Each alone after PROTO 4, with whatever operands; the reader must name it before reading further.
  const std::vector<std::pair<unsigned char, const char*>> refused = {
      {'c', "GLOBAL"}, {0x93, "STACK_GLOBAL"}, {'R', "REDUCE"},  {'b', "BUILD"},
      {'i', "INST"},   {'o', "OBJ"},           {0x81, "NEWOBJ"}, {0x92, "NEWOBJ_EX"},
      {0x82, "EXT1"},  {'P', "PERSID"},        {'Q', "PERSID"}};
  for (auto [code, name] : refused) {
    std::string what = refusal(bytes({0x80, 4, 'N', 'N', code, '.'}));
    EXPECT_NE(what.find(std::string("refused opcode ") + name), std::string::npos) << what;
    EXPECT_NE(what.find("offset 4"), std::string::npos) << what;
  }
  // REDUCE after a harmless-looking stack: still refused, by name.
  EXPECT_NE(refusal(bytes({0x80, 2, 'N', ')', 'R', '.'})).find("REDUCE"), std::string::npos);
}

TEST(PyObject, MalformedPicklesAreCodecErrors) {
  EXPECT_THROW((void)py::unpickle({}), mp::CodecError);
  EXPECT_THROW((void)py::unpickle(bytes({0x80, 4})), mp::CodecError);            // no STOP
  EXPECT_THROW((void)py::unpickle(bytes({0x80, 4, '.'})), mp::CodecError);       // empty stack
  EXPECT_THROW((void)py::unpickle(bytes({0x80, 6, 'N', '.'})), mp::CodecError);  // protocol 6
  EXPECT_THROW((void)py::unpickle(bytes({'X', 0xff, 0xff, 0xff, 0x7f})),
               mp::CodecError);                                              // 2 GiB str, no bytes
  EXPECT_THROW((void)py::unpickle(bytes({'h', 3, '.'})), mp::CodecError);    // memo never stored
  EXPECT_THROW((void)py::unpickle(bytes({'N', 'a', '.'})), mp::CodecError);  // APPEND to None
  EXPECT_THROW((void)py::unpickle(bytes({'e', '.'})), mp::CodecError);       // APPENDS without MARK
  EXPECT_THROW((void)py::unpickle(bytes({0xff, '.'})), mp::CodecError);      // unknown opcode
  // A list as a dict key (Python would raise TypeError).
  EXPECT_THROW((void)py::unpickle(bytes({'}', ']', 'N', 's', '.'})), mp::CodecError);
}

TEST(PyObject, DeepNestingAndExponentialSharingAreRefused) {
  std::vector<std::byte> deep;
  for (int i = 0; i < 5000; ++i) deep.push_back(static_cast<std::byte>(']'));
  for (int i = 0; i < 4999; ++i) deep.push_back(static_cast<std::byte>('a'));
  deep.push_back(static_cast<std::byte>('.'));
  EXPECT_NE(refusal(deep).find("nested deeper"), std::string::npos);

  // l0 = [None]; l(n+1) = [ln, ln]: 2^60 elements from a few hundred bytes.
  std::vector<std::byte> bomb = bytes({']', 'N', 'a', 0x94});  // memo 0
  for (int level = 0; level < 60; ++level) {
    auto previous = static_cast<unsigned char>(level);
    for (unsigned char c : {static_cast<unsigned char>(']'), static_cast<unsigned char>('h'), previous,
                            static_cast<unsigned char>('a'), static_cast<unsigned char>('h'), previous,
                            static_cast<unsigned char>('a'), static_cast<unsigned char>(0x94)})
      bomb.push_back(static_cast<std::byte>(c));
  }
  bomb.push_back(static_cast<std::byte>('.'));
  std::string what = refusal(bomb);
  EXPECT_TRUE(what.find("expand beyond") != std::string::npos ||
              what.find("nested deeper") != std::string::npos)
      << what;
}

}  // namespace
