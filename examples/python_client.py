"""Calls examples/python_service (C++, mp::Listener) from Python, standard library only.

    python3 python_client.py HOST:PORT
"""
import sys
from multiprocessing.connection import Client

host, _, port = sys.argv[1].rpartition(":")
with Client((host, int(port)), authkey=b"mp demo key") as conn:
    conn.send({"op": "stats", "values": [3, 1.5, 4, 1, 5.5]})
    print("stats:", conn.recv())
    conn.send({"op": "upper", "text": "hello from python"})
    print("upper:", conn.recv())
    conn.send({"op": "divide"})
    print("unknown op:", conn.recv())

# A client with the wrong key is turned away; the service keeps serving.
try:
    Client((host, int(port)), authkey=b"wrong key")
except Exception as error:  # multiprocessing.AuthenticationError
    print("wrong key:", type(error).__name__)

with Client((host, int(port)), authkey=b"mp demo key") as conn:
    conn.send({"op": "shutdown"})
    print("shutdown:", conn.recv())
