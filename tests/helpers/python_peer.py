"""Python's side of mp's Listener/Client tests, with the standard library only.

    python_peer.py client ADDRESS KEY FORM EXCHANGE     connect to an mp Listener
    python_peer.py listener KEY FORM EXCHANGE           listen (prints the address), serve one mp Client
    python_peer.py dump                                  print pickles for mp to read, one "name hex" a line

ADDRESS is written as mp writes it ("host:port", "/path", "@name"). KEY "-" means
no authkey. FORM is "native" (this Python's own challenge) or "modern" (Python
3.12's "{sha256}" challenge, written out below, for a Python that only speaks
the 3.11 one). EXCHANGE is what to do once connected:
    bytes       send b"bytes from python", expect b"bytes from mp"
    data        bytes, then send SAMPLE with send(), expect ECHO back with recv()
    wrongkey    expect the challenge to fail with AuthenticationError
    evil        send a pickle that would run os.system() when loaded, then
                expect b"refused" (mp must refuse it, never run it)
Exit status 0 means every expectation held; anything else prints why.
"""
import hmac
import os
import sys
from multiprocessing import connection

SAMPLE = {
    "x": [1, 2.5, "s"],
    "t": (1, None, True, False),
    "b": b"\x00\xff",
    "big": 2**63 - 1,
    "neg": -(2**63),
    "unicode": "h\u00e9llo \u2603 \U0001f600",
    "nested": {"empty_list": [], "empty_tuple": (), "empty_dict": {}, 7: "int key"},
    "floats": [0.0, -1.5, 1e300, float("inf")],
}
# mp answers with the same dict plus one key.
ECHO = dict(SAMPLE, reply="from mp")


def modern_deliver(conn, authkey):
    """Python 3.12's deliver_challenge: '{sha256}' + 40 random bytes; wants '{sha256}' + HMAC-SHA256."""
    message = b"{sha256}" + os.urandom(40)
    conn.send_bytes(b"#CHALLENGE#" + message)
    answer = conn.recv_bytes(256)
    expected = b"{sha256}" + hmac.new(authkey, message, "sha256").digest()
    if not hmac.compare_digest(answer, expected):
        conn.send_bytes(b"#FAILURE#")
        raise connection.AuthenticationError("digest received was wrong")
    conn.send_bytes(b"#WELCOME#")


def modern_answer(conn, authkey):
    """Python 3.12's answer_challenge: answers a '{digest}' challenge in kind, a bare one with HMAC-MD5."""
    message = conn.recv_bytes(256)
    if not message.startswith(b"#CHALLENGE#"):
        raise connection.AuthenticationError("expected a challenge")
    message = message[len(b"#CHALLENGE#"):]
    if message.startswith(b"{sha256}"):
        answer = b"{sha256}" + hmac.new(authkey, message, "sha256").digest()
    elif len(message) == 20:
        answer = hmac.new(authkey, message, "md5").digest()
    else:
        raise connection.AuthenticationError("unsupported challenge")
    conn.send_bytes(answer)
    if conn.recv_bytes(256) != b"#WELCOME#":
        raise connection.AuthenticationError("digest sent was rejected")


def python_address(text):
    if text.startswith("@"):
        return "\0" + text[1:]
    if "/" in text:
        return text
    host, _, port = text.rpartition(":")
    return (host.strip("[]"), int(port))


def mp_address(address):
    if isinstance(address, tuple):
        return "%s:%d" % (address[0], address[1])
    if address.startswith("\0"):
        return "@" + address[1:]
    return address


def fail(why):
    print("python peer: " + why, file=sys.stderr)
    sys.exit(1)


class Evil:
    def __reduce__(self):
        return (os.system, ("touch " + os.environ["MP_EVIL_MARKER"],))


def exchange(conn, what):
    if what == "evil":
        import pickle

        conn.send_bytes(pickle.dumps(Evil()))
        if conn.recv_bytes() != b"refused":
            fail("mp did not say it refused the pickle")
        return
    conn.send_bytes(b"bytes from python")
    got = conn.recv_bytes()
    if got != b"bytes from mp":
        fail("expected b'bytes from mp', got %r" % got)
    if what == "data":
        conn.send(SAMPLE)
        back = conn.recv()
        if back != ECHO:
            fail("expected %r, got %r" % (ECHO, back))
        # What mp printed as repr() must be what Python prints.
        if conn.recv_bytes() != repr(SAMPLE).encode():
            fail("mp's repr() differs from Python's %r" % (repr(SAMPLE),))


def dump():
    """Pickles of SAMPLE in protocols 2 to 5, and of values mp must refuse."""
    import pickle

    # Protocol 2 has no bytes opcode: Python writes bytes as a call to
    # _codecs.encode (refused by mp), so its sample leaves them out.
    without_bytes = {k: v for k, v in SAMPLE.items() if k != "b"}
    print("sample2 %s" % pickle.dumps(without_bytes, protocol=2).hex())
    print("bytes2 %s" % pickle.dumps(b"\x00", protocol=2).hex())
    for protocol in range(3, 6):
        print("sample%d %s" % (protocol, pickle.dumps(SAMPLE, protocol=protocol).hex()))
    shared = [1, 2]
    print("shared %s" % pickle.dumps([shared, shared, ("k", "k")], protocol=4).hex())
    print("big_dict %s" % pickle.dumps({i: str(i) for i in range(5000)}, protocol=4).hex())
    print("int_2_63 %s" % pickle.dumps(2**63, protocol=4).hex())
    print("int_minus_2_63_minus_1 %s" % pickle.dumps(-(2**63) - 1, protocol=4).hex())
    print("int_2_100 %s" % pickle.dumps(2**100, protocol=4).hex())
    recursive = []
    recursive.append(recursive)
    print("recursive %s" % pickle.dumps(recursive, protocol=4).hex())
    print("set %s" % pickle.dumps({1, 2}, protocol=4).hex())
    print("bytearray %s" % pickle.dumps(bytearray(b"x"), protocol=5).hex())
    print("global2 %s" % pickle.dumps(Evil(), protocol=2).hex())
    print("reduce4 %s" % pickle.dumps(Evil(), protocol=4).hex())


def main():
    role = sys.argv[1]
    if role == "dump":
        os.environ.setdefault("MP_EVIL_MARKER", "/nonexistent/never-created")
        dump()
        return
    if role == "client":
        address, key, form, what = sys.argv[2:6]
    else:
        key, form, what = sys.argv[2:5]
    authkey = None if key == "-" else key.encode()
    if form == "modern":
        connection.deliver_challenge = modern_deliver
        connection.answer_challenge = modern_answer
    try:
        if role == "client":
            conn = connection.Client(python_address(address), authkey=authkey)
        else:
            listener = connection.Listener(("127.0.0.1", 0), authkey=authkey)
            print(mp_address(listener.address), flush=True)
            conn = listener.accept()
    except connection.AuthenticationError as error:
        if what == "wrongkey":
            return
        fail("AuthenticationError: %s" % error)
    if what == "wrongkey":
        fail("the challenge passed with a wrong key")
    exchange(conn, what)
    conn.close()


if __name__ == "__main__":
    main()
