#!/usr/bin/python3
# The daemon behind hello-daemon.socket (Accept=no): started on the first connection, it takes the
# listening socket from triggerd through the LISTEN_FDS protocol with Debian's python3-systemd
# (systemd.daemon.listen_fds(), as it would under systemd) and then answers every connection
# itself, one greeting line each, until it is stopped. Run by /usr/bin/python3 explicitly: a
# python3 elsewhere on the PATH (pyenv, venv) may not have the systemd module.
import os
import socket
import sys

from systemd import daemon

fds = daemon.listen_fds()  # checks LISTEN_PID against our pid, then unsets LISTEN_*
if not fds:
    sys.exit("hello-daemon: no sockets passed (LISTEN_FDS); start hello-daemon.socket instead")

listener = socket.socket(fileno=fds[0])
listener.setblocking(True)  # the manager may pass it non-blocking
print(f"activated by the first connection: listening fd {fds[0]} on {listener.getsockname()}", flush=True)

served = 0
while True:
    conn, peer = listener.accept()
    served += 1
    with conn:
        conn.sendall(f"hello {peer[0]}:{peer[1]} from pid {os.getpid()}, connection {served}\n".encode())
    print(f"answered {peer[0]}:{peer[1]} (connection {served})", flush=True)
