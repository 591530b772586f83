#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A socket-activated server as sd_listen_fds(3) describes one: checks
LISTEN_PID against its own pid, takes LISTEN_FDS listeners from fd 3, and
answers each connection with its pid, the listener's name and its
process group.  Exits 3 when the variables are wrong."""
import os
import select
import socket
import sys

if os.environ.get("LISTEN_PID") != str(os.getpid()):
    print(f"LISTEN_PID {os.environ.get('LISTEN_PID')} is not {os.getpid()}", file=sys.stderr)
    sys.exit(3)
count = int(os.environ["LISTEN_FDS"])
names = os.environ["LISTEN_FDNAMES"].split(":")
if len(names) != count:
    sys.exit(3)
listeners = {}
for i in range(count):
    sock = socket.socket(fileno=3 + i)
    sock.setblocking(False)
    listeners[sock] = names[i]
print(f"listening on {count} sockets: {':'.join(names)}", file=sys.stderr, flush=True)
while True:
    readable, _, _ = select.select(list(listeners), [], [])
    for sock in readable:
        try:
            conn, _ = sock.accept()
        except BlockingIOError:
            continue  # another process took it
        with conn:
            conn.setblocking(True)
            conn.sendall(f"{os.getpid()} {listeners[sock]} {os.getpgid(0)}\n".encode())
