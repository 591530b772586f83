# SPDX-License-Identifier: MIT
"""Real servers from Debian's packages as worker_protocol = systemd pools:
uvicorn and gunicorn, scaled by a policy on the connections corrald
measures, under a bounded load of slow requests."""
import os
import shutil
import subprocess
import threading
import unittest

from harness import (SLOW, CorraldTestCase, connect, free_port, group_members,
                     port_is_listening, wait_until)
from test_protocols import process_exists, read_all

HERE = os.path.dirname(os.path.abspath(__file__))
SYSTEM_PYTHON = "/usr/bin/python3"
SERVERS = os.path.join(HERE, "servers")


def has_module(name):
    return subprocess.run([SYSTEM_PYTHON, "-c", f"import {name}"],
                          capture_output=True).returncode == 0


def http_get(port, path, timeout):
    """One HTTP/1.0 request; the body, or None when it failed."""
    try:
        with connect(port, timeout) as s:
            s.sendall(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
            reply = read_all(s)
    except OSError:
        return None
    head, _, body = reply.partition(b"\r\n\r\n")
    return body.decode() if head.startswith(b"HTTP/1.1 200") or \
        head.startswith(b"HTTP/1.0 200") else None


class SlowLoad:
    """`clients` threads that each send slow requests back to back until
    stopped or `total` requests were sent: a bounded load."""

    def __init__(self, port, clients, ms, total):
        self.port, self.ms, self.left = port, ms, total
        self.lock = threading.Lock()
        self.served, self.failed = [], 0
        self.stopping = False
        self.threads = [threading.Thread(target=self.run) for _ in range(clients)]

    def run(self):
        while True:
            with self.lock:
                if self.stopping or self.left == 0:
                    return
                self.left -= 1
            body = http_get(self.port, f"/slow?ms={self.ms}", 30 * SLOW)
            with self.lock:
                if body is None:
                    self.failed += 1
                else:
                    self.served.append(body.split()[0])

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        with self.lock:
            self.stopping = True
        for t in self.threads:
            t.join(60 * SLOW)


class RealPools(CorraldTestCase):
    """Real servers as systemd pools, scaled by a policy on the measured
    connections under a bounded load of slow requests."""

    def scale_under_load(self, d, port, clients, peak_wanted):
        peak = 0
        with SlowLoad(port, clients=clients, ms=1500, total=clients * 8) as load:
            def grown():
                nonlocal peak
                peak = max(peak, len(d.children()))
                return peak >= peak_wanted
            wait_until(grown, 40, f"the pool to grow to {peak_wanted} processes")
            self.status_under_load = d.status("status", "web")
            self.processes_under_load = d.status("processes", "web")
        self.assertEqual(load.failed, 0)
        # The load was spread over several processes.
        self.assertGreaterEqual(len(set(load.served)), 2)
        return peak

    def assert_nothing_left(self, d, port, pids):
        self.assertEqual(d.stop(), 0)
        for pid in pids:
            self.assertEqual(group_members(pid), [], f"process group {pid} outlived corrald")
        self.assertFalse(port_is_listening(port))

    @unittest.skipUnless(has_module("uvicorn"), "python3-uvicorn is not installed")
    def test_uvicorn_pool_grows_with_load_and_shrinks_when_idle(self):
        port = free_port()
        d = self.corrald(
            f"[service web]\nexecutable = {SYSTEM_PYTHON} -m uvicorn --fd 3 --app-dir {SERVERS} "
            "--no-access-log slow_app:app\nworker_protocol = systemd\n"
            f"inet_listener = 127.0.0.1:{port}\npolicy = dynamic\nclient_limit = 2\n"
            "process_limit = 6\nmin_spare = 1\nmax_spare = 1\nstart_servers = 1\n"
            "tick = 200ms\n").start()
        d.wait_children(1)
        wait_until(lambda: http_get(port, "/", 5 * SLOW), 30, "uvicorn to answer")
        self.scale_under_load(d, port, clients=8, peak_wanted=3)
        # Idle again: dynamic asks the idle ones to leave (SIGINT), down to
        # max_spare available processes.
        wait_until(lambda: len(d.children()) <= 2, 40, "the pool to shrink")
        d.wait_log(r"Info: web: INFO:\s+Finished server process", 10)
        self.assertEqual(d.log_count(r"Error: service\(web\)"), 0)
        self.assert_nothing_left(d, port, d.children())

    @unittest.skipUnless(shutil.which("gunicorn"), "gunicorn is not installed")
    def test_gunicorn_pool_scales_and_leaves_no_orphaned_workers(self):
        port = free_port()
        gunicorn = shutil.which("gunicorn")
        d = self.corrald(
            f"[service web]\nexecutable = {gunicorn} --workers 2 --chdir {SERVERS} "
            "--graceful-timeout 5 slow_wsgi:app\nworker_protocol = systemd\n"
            f"inet_listener = 127.0.0.1:{port}\npolicy = ondemand\nclient_limit = 2\n"
            "process_limit = 4\nprocess_idle_timeout = 2s\n").start()
        # ondemand starts the first master for the first client.
        wait_until(lambda: http_get(port, "/", 5 * SLOW), 40, "gunicorn to answer")
        masters = d.wait_children(1)
        wait_until(lambda: len(group_members(masters[0])) == 3, 20,
                   "gunicorn's two workers, in its process group")
        self.scale_under_load(d, port, clients=6, peak_wanted=2)
        everyone = [pid for master in d.children() for pid in group_members(master)]
        # Idle kill from the measured count: the extra masters leave, and
        # their workers with them.
        wait_until(lambda: len(d.children()) <= 1, 40, "the idle gunicorns to leave")
        self.assert_nothing_left(d, port, d.children() + masters)
        for pid in everyone:
            self.assertFalse(process_exists(pid), f"gunicorn process {pid} was orphaned")


if __name__ == "__main__":
    unittest.main()
