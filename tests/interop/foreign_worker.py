#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A line-echo worker that speaks Dovecot 2.3's master protocol by hand.

It uses nothing of libcorral-worker: everything here follows the child
side of the protocol as Dovecot's master defines it (fixed descriptors,
environment, 12-byte status records, signals, the master-dead pipe), so
that the same program can be run under a real Dovecot master and under
corrald and be expected to behave the same.

    foreign_worker.py [--login] [--events FILE]

  --login        act as a login service (type=login): read the login
                 notify state from fd 4 at start and on every SIGUSR1
                 (without it SIGUSR1 keeps its default action, as in
                 Dovecot's non-login children)
  --events FILE  append one line per protocol event to FILE:
                 "<CLOCK_MONOTONIC seconds> <pid> <event> [detail]"

Clients: every complete line a client sends is written back.

Descriptors: 4 login notify (login only), 5 status pipe, 6 master-dead
pipe, 7.. listeners (SOCKET_COUNT of them).
"""
import errno
import os
import select
import signal
import socket
import stat
import struct
import sys
import time

STATUS_FD = 5
DEAD_FD = 6
LOGIN_NOTIFY_FD = 4
FIRST_LISTENER_FD = 7
UNLIMITED = -1

LOG_INFO, LOG_WARNING, LOG_ERROR, LOG_FATAL = 2, 3, 4, 5


class Worker:
    def __init__(self, login, events_path):
        self.login = login
        self.events_path = events_path
        self.pid = os.getpid()
        self.log_service = os.environ.get("LOG_SERVICE") == "1"
        self.name = os.environ.get("SERVICE_NAME", "foreign")

        generation = os.environ.get("GENERATION")
        if generation is None:
            self.fatal("GENERATION missing: must be started by a master process")
        self.generation = int(generation)
        client_limit = int(os.environ.get("CLIENT_LIMIT") or "0")
        if client_limit == 0:
            self.fatal("CLIENT_LIMIT missing")
        service_count = os.environ.get("SERVICE_COUNT")
        self.left = int(service_count) if service_count else UNLIMITED
        self.total = client_limit
        if self.left != UNLIMITED and self.total > self.left:
            self.total = self.left
        self.available = self.total

        if not stat.S_ISFIFO(os.fstat(STATUS_FD).st_mode):
            self.fatal("Must be started by a master process (fd 5 is not a FIFO)")
        socket_count = int(os.environ.get("SOCKET_COUNT") or "1")
        self.listener_fds = []
        for fd in range(FIRST_LISTENER_FD, FIRST_LISTENER_FD + socket_count):
            try:
                os.fstat(fd)
            except OSError:
                self.fatal(f"fd {fd} (listener) is not open")
            self.listener_fds.append(fd)
        self.watching_listeners = False
        self.master_gone = False
        self.dead_watched = True
        self.clients = {}  # fd -> (socket, pending input bytes)

        self.last_sent = 0
        self.last_sent_second = -1
        self.status_enabled = True
        self.status_timer = None  # monotonic deadline of the 1 s timer
        self.retry_important = False

        self.poller = select.poll()
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)
        self.pending_signals = []
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        signal.signal(signal.SIGINT, self.on_signal)
        signal.signal(signal.SIGTERM, self.on_signal)
        signal.signal(signal.SIGQUIT, self.on_sigquit)
        self.login_full = False
        if self.login:
            signal.signal(signal.SIGUSR1, self.on_signal)
            self.login_full = os.lseek(LOGIN_NOTIFY_FD, 0, os.SEEK_CUR) == 1
            self.event("login-state", "full" if self.login_full else "nonfull")
        self.poller.register(self.wake_r, select.POLLIN)
        # Only the error condition is wanted from the dead pipe.
        self.poller.register(DEAD_FD, 0)

    # -- logging and event records -----------------------------------

    def log(self, level, text):
        if self.log_service:
            line = b"\x01" + bytes([level]) + f"{self.pid} {text}\n".encode()
        else:
            names = {LOG_INFO: "Info", LOG_WARNING: "Warning", LOG_ERROR: "Error",
                     LOG_FATAL: "Fatal"}
            line = f"{self.name}: {names[level]}: {text}\n".encode()
        try:
            os.write(2, line)
        except OSError:
            pass

    def fatal(self, text):
        self.log(LOG_FATAL, text)
        sys.exit(89)

    def event(self, what, detail=""):
        if self.events_path is None:
            return
        line = f"{time.monotonic():.6f} {self.pid} {what} {detail}".rstrip() + "\n"
        fd = os.open(self.events_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    # -- status records -----------------------------------------------

    def send_status(self):
        if not self.status_enabled:
            return
        record = struct.pack("=iII", self.pid, self.generation, self.available)
        important = self.available == 0 or self.last_sent == 0
        try:
            written = os.write(STATUS_FD, record)
        except BlockingIOError:
            if important:
                self.retry_important = True
                self.poller.register(STATUS_FD, select.POLLOUT)
            return
        except OSError as e:
            # EPIPE: the master is gone; not worth a log line.
            if e.errno != errno.EPIPE:
                self.log(LOG_ERROR, f"write(status) failed: {e}")
            self.status_enabled = False
            return
        if written != len(record):
            self.status_enabled = False
            return
        self.event("status", str(self.available))
        self.last_sent = self.available
        self.last_sent_second = int(time.time())
        self.status_timer = None

    def update_status(self):
        if self.available == self.last_sent:
            self.status_timer = None
            return
        important = self.available == 0 or self.last_sent == 0
        if important or int(time.time()) != self.last_sent_second:
            self.send_status()
        elif self.status_timer is None:
            self.status_timer = time.monotonic() + 1.0

    # -- listeners and clients ------------------------------------------

    def watch_listeners(self, on):
        if on == self.watching_listeners:
            return
        for fd in self.listener_fds:
            if on:
                self.poller.register(fd, select.POLLIN)
            else:
                self.poller.unregister(fd)
        self.watching_listeners = on

    def close_listeners(self):
        self.watch_listeners(False)
        for fd in self.listener_fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self.listener_fds = []

    def accept_from(self, fd):
        while self.available > 0:
            try:
                conn = self.accept_fd(fd)
            except BlockingIOError:
                return
            except OSError as e:
                if e.errno in (errno.EAGAIN, errno.EINTR, errno.ECONNABORTED):
                    return
                raise
            conn.setblocking(False)
            self.clients[conn.fileno()] = [conn, b""]
            self.poller.register(conn.fileno(), select.POLLIN)
            self.available -= 1
            self.event("accept", str(self.available))
            if self.available == 0:
                # Stop watching before "full" is written, so the master
                # takes over the listeners.
                self.watch_listeners(False)
            self.update_status()

    @staticmethod
    def accept_fd(fd):
        # The listener stays the master's descriptor: wrap it only for
        # the call and hand the number back, leaving its flags alone
        # (O_NONBLOCK is shared with the master and the other workers).
        listener = socket.socket(fileno=fd)
        try:
            return listener.accept()[0]
        finally:
            listener.detach()

    def client_readable(self, fd):
        conn, pending = self.clients[fd]
        try:
            data = conn.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.client_done(fd)
            return
        pending += data
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            try:
                conn.setblocking(True)
                conn.settimeout(5)
                conn.sendall(line + b"\n")
                conn.setblocking(False)
            except OSError:
                self.client_done(fd)
                return
        self.clients[fd][1] = pending

    def client_done(self, fd):
        conn, _ = self.clients.pop(fd)
        self.poller.unregister(fd)
        conn.close()
        if self.left != UNLIMITED and self.left == self.total:
            self.total -= 1
            self.left -= 1
        else:
            if self.left != UNLIMITED:
                self.left -= 1
            self.available += 1
        self.event("close", str(self.available))
        if self.left == 0:
            self.exit(0, "service count used up")
        if self.available == self.total and (self.master_gone or not self.listener_fds):
            self.exit(0, "last client left")
        if self.available > 0 and not self.master_gone:
            self.watch_listeners(True)
        self.update_status()

    # -- signals and the master-dead pipe ---------------------------------

    def on_signal(self, signo, frame):
        self.pending_signals.append(signo)

    def on_sigquit(self, signo, frame):
        # The master is shutting down and wants its ports back: every
        # listener not being watched now points at /dev/null.  Watched
        # ones go through the dead pipe.
        self.event("sigquit")
        if self.watching_listeners:
            return
        null = os.open("/dev/null", os.O_RDONLY)
        for fd in self.listener_fds:
            os.dup2(null, fd)
        os.close(null)
        self.listener_fds = []

    def handle_signals(self):
        while self.pending_signals:
            signo = self.pending_signals.pop(0)
            if signo == signal.SIGINT:
                idle = self.available == self.total
                self.event("sigint", "exit" if idle else "busy")
                if idle:
                    self.exit(0, "idle kill")
                # Busy: ignored, and no status record.
            elif signo == signal.SIGTERM:
                self.log(LOG_WARNING, "Killed with signal 15")
                self.event("sigterm")
                self.exit(0, "SIGTERM")
            elif signo == signal.SIGUSR1 and self.login:
                offset = os.lseek(LOGIN_NOTIFY_FD, 0, os.SEEK_CUR)
                self.login_full = offset == 1
                self.event("sigusr1", f"offset={offset}")

    def master_died(self):
        self.poller.unregister(DEAD_FD)  # level-triggered: watch it once
        self.dead_watched = False
        self.master_gone = True
        self.event("dead-pipe", str(len(self.clients)))
        self.close_listeners()
        self.total = self.left = self.total - self.available
        if self.total == 0:
            self.exit(0, "master gone")
        self.available = 0
        self.update_status()

    def exit(self, code, why):
        self.event("exit", why)
        sys.exit(code)

    # -- the loop ---------------------------------------------------------

    def run(self):
        self.event("start", f"generation={self.generation} client_limit={self.total}")
        self.watch_listeners(True)
        self.send_status()
        while True:
            timeout = None
            if self.status_timer is not None:
                timeout = max(0, int((self.status_timer - time.monotonic()) * 1000) + 1)
            try:
                ready = self.poller.poll(timeout)
            except InterruptedError:
                ready = []
            for fd, revents in ready:
                if fd == self.wake_r:
                    try:
                        os.read(self.wake_r, 512)
                    except BlockingIOError:
                        pass
                elif fd == DEAD_FD:
                    if self.dead_watched and revents & (select.POLLERR | select.POLLHUP |
                                                        select.POLLNVAL):
                        self.master_died()
                elif fd == STATUS_FD:
                    self.poller.unregister(STATUS_FD)
                    if self.retry_important:
                        self.retry_important = False
                        self.send_status()
                elif fd in self.listener_fds:
                    if self.watching_listeners:
                        self.accept_from(fd)
                elif fd in self.clients:
                    self.client_readable(fd)
            self.handle_signals()
            if self.status_timer is not None and time.monotonic() >= self.status_timer:
                self.status_timer = None
                if self.available != self.last_sent:
                    self.send_status()


def main(argv):
    login = False
    events = None
    args = list(argv[1:])
    while args:
        arg = args.pop(0)
        if arg == "--login":
            login = True
        elif arg == "--events" and args:
            events = args.pop(0)
        else:
            sys.stderr.write(__doc__)
            return 2
    Worker(login, events).run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
