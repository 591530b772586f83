# SPDX-License-Identifier: MIT
"""Reload and master loss: corrald keeps serving through both."""
import os
import shutil
import signal
import socket
import threading
import time
import unittest

from harness import (ECHO_WORKER, FIXTURE_POLICY_DIR, SANITIZED, CorraldTestCase,
                     allow_root_where_unset, connect, echo_once, free_port, port_is_listening,
                     wait_until)


def echo_service(name, port, **keys):
    settings = {"executable": ECHO_WORKER, "inet_listener": f"127.0.0.1:{port}",
                "process_min_avail": 2, "process_limit": 10, "client_limit": 1}
    if SANITIZED:
        settings["vsz_limit"] = 0
    settings.update(keys)
    return f"[service {name}]\n" + "".join(f"{k} = {v}\n" for k, v in settings.items())


def rewrite(daemon, body):
    path = os.path.join(daemon.dir, "conf.d", "50-test.conf")
    with open(path, "w") as f:
        f.write(allow_root_where_unset(body))


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def reload(daemon, expect="Configuration reloaded", count=None):
    before = daemon.log_count(expect)
    daemon.proc.send_signal(signal.SIGHUP)
    daemon.wait_log(expect, 10, count=(count or before + 1))


class Reload(CorraldTestCase):
    def test_reload_keeps_held_connection_and_replaces_idle_workers(self):
        port = free_port()
        d = self.corrald(echo_service("echo", port)).start()
        old = d.wait_children(2)
        held = connect(port)
        held.sendall(b"before\n")
        self.assertEqual(held.recv(64), b"before\n")
        reload(d)
        self.assertIn("Warning: SIGHUP received - reloading configuration", d.log())
        # Idle old workers leave at once; the busy one serves on.
        busy = wait_until(lambda: [p for p in old if alive(p)] if
                          len([p for p in old if alive(p)]) == 1 else None, 10,
                          "idle old workers to exit")
        held.sendall(b"after\n")
        self.assertEqual(held.recv(64), b"after\n")
        self.assertEqual(echo_once(port, b"new\n"), b"new\n")
        held.close()
        wait_until(lambda: not alive(busy[0]), 10, "the busy old worker to leave")

    def test_bad_reload_keeps_the_running_configuration(self):
        port = free_port()
        d = self.corrald(echo_service("echo", port)).start()
        before = d.wait_children(2)
        rewrite(d, echo_service("echo", port) + "process_limitt = 4\n")
        reload(d, expect=r"Config reload failed: .*50-test\.conf.*\[service echo\].*process_limitt")
        self.assertEqual(echo_once(port, b"still\n"), b"still\n")
        # The running workers were left alone (prefork may add one more).
        self.assertTrue(set(before) <= set(d.children()))
        self.assertEqual(d.log_count("Configuration reloaded"), 0)
        # A later good reload still works.
        rewrite(d, echo_service("echo", port))
        reload(d)
        self.assertEqual(echo_once(port, b"good\n"), b"good\n")

    def test_reload_adds_removes_and_changes_services_by_name(self):
        port_a, port_b = free_port(), free_port()
        d = self.corrald(echo_service("alpha", port_a)).start()
        alpha = d.wait_children(2)
        rewrite(d, echo_service("beta", port_b, process_min_avail=3))
        reload(d)
        wait_until(lambda: not any(alive(p) for p in alpha), 10, "alpha's workers to leave")
        self.assertFalse(port_is_listening(port_a))
        d.wait_children(3)
        self.assertEqual(echo_once(port_b, b"beta\n"), b"beta\n")

    def test_reload_recreates_unix_listener(self):
        d = self.corrald(f"[service ux]\nexecutable = {ECHO_WORKER}\nunix_listener = ux.sock\n"
                         "process_min_avail = 1\n" + ("vsz_limit = 0\n" if SANITIZED else ""))
        d.start()
        path = os.path.join(d.dir, "run", "ux.sock")

        def unix_echo(text):
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(5)
                s.connect(path)
                s.sendall(text)
                return s.recv(64)
        wait_until(lambda: os.path.exists(path), 10, "the unix socket")
        inode = os.stat(path).st_ino
        self.assertEqual(unix_echo(b"one\n"), b"one\n")
        reload(d)
        self.assertNotEqual(os.stat(path).st_ino, inode)
        self.assertEqual(unix_echo(b"two\n"), b"two\n")
        self.assertFalse(os.path.exists(path + ".reload"))

    def test_stragglers_get_sigterm_after_reload_kill_timeout(self):
        port = free_port()
        d = self.corrald(echo_service("echo", port, process_min_avail=1),
                         corral_extra="reload_kill_timeout = 1s")
        d.start()
        d.wait_children(1)
        held = connect(port)
        held.sendall(b"x\n")
        self.assertEqual(held.recv(8), b"x\n")
        reload(d)
        d.wait_log(r"Warning: Sent SIGTERM to 1 echo processes", 10)
        d.wait_log(r"Warning: Processes aren't dying after reload, sent SIGTERM to 1 processes\.",
                   10)
        self.assertEqual(held.recv(8), b"")  # the worker left on SIGTERM
        held.close()

    def test_changed_policy_plugin_is_loaded_fresh(self):
        policy_dir = os.path.join(self.corrald("").dir, "policies")
        os.makedirs(policy_dir)
        installed = os.path.join(policy_dir, "policy_fixture_version.so")

        def install(build):
            staging = installed + ".new"
            shutil.copy(os.path.join(FIXTURE_POLICY_DIR, f"policy_fixture_version_{build}.so"),
                        staging)
            os.rename(staging, installed)
        install("a")
        port = free_port()
        d = self.corrald(echo_service("echo", port, policy="policy_fixture_version"),
                         corral_extra=f"policy_dir = {policy_dir}")
        d.start()
        d.wait_log(r"service\(echo\): fixture policy build A", 10)
        reload(d)
        d.wait_log(r"service\(echo\): fixture policy build A", 10, count=2)
        install("b")
        reload(d)
        d.wait_log(r"service\(echo\): fixture policy build B", 10)

    def test_no_connection_fails_across_reloads(self):
        port = free_port()
        d = self.corrald(echo_service("echo", port, process_min_avail=4, process_limit=40)).start()
        d.wait_children(4)
        failures, done = [], [0]
        stop = threading.Event()

        def client():
            while not stop.is_set():
                try:
                    if echo_once(port, b"ping\n") != b"ping\n":
                        failures.append("bad echo")
                except OSError as e:
                    failures.append(repr(e))
                done[0] += 1
        threads = [threading.Thread(target=client) for _ in range(8)]
        for t in threads:
            t.start()
        try:
            for i in range(5):
                wait_until(lambda: done[0] >= 100 * (i + 1), 30, "traffic between reloads")
                reload(d)
            wait_until(lambda: done[0] >= 600, 30, "traffic after the last reload")
        finally:
            stop.set()
            for t in threads:
                t.join(10)
        self.assertEqual(failures, [])
        self.assertGreaterEqual(done[0], 600)


class MasterLoss(CorraldTestCase):
    def test_sigkill_of_master_workers_drain_and_new_master_binds_at_once(self):
        port = free_port()
        config = echo_service("echo", port, process_min_avail=3)
        d = self.corrald(config).start()
        workers = d.wait_children(3)
        held = connect(port)
        held.sendall(b"held\n")
        self.assertEqual(held.recv(16), b"held\n")
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait(10)
        # Idle workers see the dead pipe and leave; the busy one gives up
        # its listener and serves on.
        wait_until(lambda: sum(alive(p) for p in workers) == 1, 10, "idle workers to exit")
        wait_until(lambda: not port_is_listening(port), 10, "the port to be released")
        successor = self.corrald(config).start()
        successor.wait_children(3)
        self.assertEqual(echo_once(port, b"new master\n"), b"new master\n")
        held.sendall(b"still\n")
        self.assertEqual(held.recv(16), b"still\n")
        held.close()


if __name__ == "__main__":
    unittest.main()
