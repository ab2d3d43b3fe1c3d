#!/usr/bin/env python3
"""Resolve each argument with python's socket module and print the results,
errors included, in a stable form: the oracle compares this output with and
without the shim."""
import socket, sys

for name in sys.argv[1:]:
    for label, fn in (
        ("gethostbyname", lambda n: socket.gethostbyname(n)),
        ("gethostbyname_ex", lambda n: socket.gethostbyname_ex(n)),
        ("getaddrinfo", lambda n: [(f, a[0]) for f, _, _, c, a in socket.getaddrinfo(n, 80, 0, socket.SOCK_STREAM)]),
        ("getaddrinfo_canon", lambda n: socket.getaddrinfo(n, None, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_CANONNAME)[0][3]),
    ):
        try:
            print(name, label, fn(name))
        except OSError as e:
            print(name, label, "error", e.errno, e.strerror)
