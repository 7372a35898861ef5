#!/usr/bin/env python3
"""clamdcheck.sh of the CI stand-in (the official image ships a script of that name): PING must get PONG."""

import socket
import sys

with socket.create_connection(("127.0.0.1", 3310), timeout=5) as s:
    s.sendall(b"zPING\0")
    sys.exit(0 if s.recv(16).startswith(b"PONG") else 1)
