// python_service: a C++ service that Python programs call with nothing but
// the standard library (examples/python_client.py is one).
//
// It listens on 127.0.0.1 (port given, or 0 for a free one), prints
// "listening on HOST:PORT", and serves clients one after another. Each request
// is a dict pickled by Python's Connection.send():
//   {"op": "stats", "values": [numbers]}  -> {"count": n, "mean": m, "min": a, "max": b}
//   {"op": "upper", "text": "..."}        -> "..." in upper case (ASCII)
//   {"op": "shutdown"}                    -> "bye", and the service ends
// Anything else gets {"error": "..."}; a client that fails the authkey
// challenge is turned away and the service goes on.
//
//   ./python_service 0 &
//   python3 python_client.py 127.0.0.1:PORT
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <string>

#include "mp/errors.hpp"
#include "mp/listener.hpp"
#include "mp/py.hpp"

namespace py = mp::py;

py::Object handle(const py::Object& request, bool& shutdown) {
  if (request.kind() != py::Object::Kind::dict || !request.as_dict().contains("op"))
    return py::Dict{{"error", "a request is a dict with an 'op'"}};
  const std::string& op = request["op"].as_str();
  if (op == "stats") {
    const py::List& values = request["values"].as_list();
    if (values.empty()) return py::Dict{{"error", "no values"}};
    double sum = 0, low = 0, high = 0;
    bool first = true;
    for (const py::Object& value : values) {
      double x =
          value.kind() == py::Object::Kind::integer ? static_cast<double>(value.as_int()) : value.as_float();
      sum += x;
      low = first ? x : std::min(low, x);
      high = first ? x : std::max(high, x);
      first = false;
    }
    return py::Dict{{"count", static_cast<std::int64_t>(values.size())},
                    {"mean", sum / static_cast<double>(values.size())},
                    {"min", low},
                    {"max", high}};
  }
  if (op == "upper") {
    std::string text = request["text"].as_str();
    std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::toupper(c); });
    return text;
  }
  if (op == "shutdown") {
    shutdown = true;
    return "bye";
  }
  return py::Dict{{"error", "unknown op " + py::Object(op).repr()}};
}

int main(int argc, char** argv) {
  std::string port = argc > 1 ? argv[1] : "0";
  mp::Listener listener("127.0.0.1:" + port, 4, std::string("mp demo key"));
  std::printf("listening on %s\n", listener.address().c_str());
  std::fflush(stdout);
  bool shutdown = false;
  while (!shutdown) {
    try {
      auto conn = listener.accept<py::Object>();
      std::printf("client from %s\n", listener.last_accepted().value_or("?").c_str());
      for (;;) {
        py::Object request;
        try {
          request = conn.recv();
        } catch (const mp::EOFError&) {
          break;  // the client is done
        }
        std::printf("request %s\n", request.repr().c_str());
        try {
          conn.send(handle(request, shutdown));
        } catch (const mp::ValueError& error) {  // a field of the wrong kind
          conn.send(py::Dict{{"error", error.what()}});
        }
        if (shutdown) break;
      }
    } catch (const mp::AuthenticationError& error) {
      std::printf("turned away a client: %s\n", error.what());
    } catch (const mp::CodecError& error) {
      std::printf("refused a message: %s\n", error.what());
    }
    std::fflush(stdout);
  }
  std::printf("service stopped\n");
  return 0;
}
