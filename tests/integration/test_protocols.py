# SPDX-License-Identifier: MIT
"""worker_protocol = systemd and inetd: servers that do not speak
Dovecot's protocol, supervised with the same policies and limits."""
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import unittest

from harness import (CORRALD, SANITIZED, SLOW, WRAPPER, CorraldTestCase, connect, free_port,
                     port_is_listening, wait_until)

HERE = os.path.dirname(os.path.abspath(__file__))
SD_ECHO = os.path.join(HERE, "servers", "sd_echo.py")


def process_exists(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def read_all(sock, limit=1 << 20):
    data = b""
    while len(data) < limit:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def ask(port, timeout=10):
    with connect(port, timeout * SLOW) as s:
        return read_all(s).decode()


class Refusals(CorraldTestCase):
    def refused(self, body):
        d = self.corrald("[service p]\nallow_root = yes\n" + body)
        code, log = d.run_to_exit()
        self.assertEqual(code, 1, log)
        return log

    def test_inetd_with_client_limit_above_one(self):
        log = self.refused("executable = /bin/cat\nworker_protocol = inetd\n"
                           "inet_listener = 127.0.0.1:1\nclient_limit = 5\n")
        self.assertRegex(log, r"50-test\.conf:6: \[service p\] client_limit: worker_protocol = "
                              r"inetd serves one connection per process; client_limit must be 1")

    def test_inetd_with_process_min_avail(self):
        log = self.refused("executable = /bin/cat\nworker_protocol = inetd\n"
                           "inet_listener = 127.0.0.1:1\nprocess_min_avail = 2\n")
        self.assertRegex(log, r"50-test\.conf:6: \[service p\] process_min_avail: ")

    def test_inetd_with_a_preforking_policy(self):
        log = self.refused("executable = /bin/cat\nworker_protocol = inetd\n"
                           "inet_listener = 127.0.0.1:1\npolicy = dynamic\n")
        self.assertRegex(log, r"50-test\.conf:6: \[service p\] policy: policy dynamic keeps "
                              r"idle processes ready")

    def test_systemd_with_service_count(self):
        log = self.refused(f"executable = {SD_ECHO}\nworker_protocol = systemd\n"
                           "inet_listener = 127.0.0.1:1\nservice_count = 1\n")
        self.assertRegex(log, r"50-test\.conf:6: \[service p\] service_count: worker_protocol = "
                              r"systemd")

    def test_systemd_with_first_status_timeout(self):
        log = self.refused(f"executable = {SD_ECHO}\nfirst_status_timeout = 5s\n"
                           "worker_protocol = systemd\ninet_listener = 127.0.0.1:1\n")
        self.assertRegex(log, r"50-test\.conf:4: \[service p\] first_status_timeout: ")

    def test_inetd_keys_on_a_dovecot_service(self):
        log = self.refused("executable = /bin/cat\nper_source = 3\n")
        self.assertRegex(log, r"50-test\.conf:4: \[service p\] per_source: only for "
                              r"worker_protocol = inetd")

    def test_unknown_protocol_and_bad_cps(self):
        log = self.refused("executable = /bin/cat\nworker_protocol = fastcgi\n")
        self.assertRegex(log, r"50-test\.conf:4: \[service p\] worker_protocol: 'fastcgi' is not")
        log = self.refused("executable = /bin/cat\nworker_protocol = inetd\ncps = 10\n"
                           "inet_listener = 127.0.0.1:1\n")
        self.assertRegex(log, r"50-test\.conf:5: \[service p\] cps: ")

    def test_no_listener(self):
        log = self.refused("executable = /bin/cat\nworker_protocol = inetd\n")
        self.assertRegex(log, r"50-test\.conf:4: \[service p\] worker_protocol: .*needs an "
                              r"inet_listener")


class Dumps(CorraldTestCase):
    def test_protocol_and_exec_keys_read_back_unchanged(self):
        d = self.corrald(
            f"[service sd]\nexecutable = {SD_ECHO}\nworker_protocol = systemd\n"
            f"inet_listener = 127.0.0.1:{free_port()}\n"
            "environment = A='two words' B=\"it's\" C= PATH\nstderr_level = warning\n"
            "working_directory = /tmp\n"
            f"[service cat]\nexecutable = /bin/cat\nworker_protocol = inetd\n"
            f"inet_listener = 127.0.0.1:{free_port()}\nper_source = 3\ncps = 50 10\n"
            "inetd_stderr = log\n")
        dumps = {}
        for flag in ("-a", "-n"):
            out = subprocess.run([CORRALD, flag, "-c", d.conf], capture_output=True, text=True)
            self.assertEqual(out.returncode, 0, out.stderr)
            dumps[flag] = out.stdout
        every = dumps["-a"]
        self.assertIn("\nworker_protocol = systemd\n", every)
        self.assertIn(r"""
environment = A='two words' B='it'\\''s' C='' PATH
""", every)
        self.assertIn("\nstderr_level = warning\n", every)
        self.assertIn("\nworking_directory = /tmp\n", every)
        self.assertIn("\ncps = 50 10\n", every)
        self.assertIn("\nper_source = 3\n", every)
        self.assertIn("\ninetd_stderr = log\n", every)
        # The status pipe's keys are not written for the other protocols,
        # which refuse them.
        self.assertEqual(every.count("first_status_timeout"), 0)
        self.assertNotIn("stderr_level", dumps["-n"].split("[service cat]")[1])
        for flag, text in dumps.items():
            again = tempfile.mkdtemp(prefix="corral-dump-")
            self.addCleanup(shutil.rmtree, again, True)
            saved = os.path.join(again, "corral.conf")
            with open(saved, "w") as f:
                f.write(text)
            for check in ("-a", "-n"):
                out = subprocess.run([CORRALD, check, "-c", saved], capture_output=True,
                                     text=True)
                self.assertEqual(out.returncode, 0, out.stderr)
                self.assertEqual(out.stdout, dumps[check], f"{flag} read back by {check}")


class Systemd(CorraldTestCase):
    def test_listeners_from_fd_3_with_listen_pid_of_the_child_itself(self):
        port, port2 = free_port(), free_port()
        d = self.corrald(f"[service sd]\nexecutable = {SD_ECHO}\nworker_protocol = systemd\n"
                         f"inet_listener = 127.0.0.1:{port};127.0.0.1:{port2}\n"
                         "process_min_avail = 2\n").start()
        pids = d.wait_children(2)
        d.wait_log(r"Info: sd: listening on 2 sockets: sd:sd", 10, count=2)
        pid, name, pgid = ask(port).split()
        self.assertIn(int(pid), pids)
        self.assertEqual(name, "sd")
        self.assertEqual(pgid, pid)
        self.assertIn(int(ask(port2).split()[0]), pids)
        # Counted as started and available at spawn: no status expected.
        service = d.status("status")["services"][0]
        self.assertEqual(service["worker_protocol"], "systemd")
        self.assertEqual(service["process_count"], 2)
        self.assertEqual(service["process_avail"], 2)
        self.assertEqual(d.log_count(r"Initial status notification"), 0)
        self.assertEqual(d.log_count(r"LISTEN_PID"), 0)
        self.assertEqual(d.stop(), 0)
        for p in pids:
            self.assertFalse(process_exists(p))
        self.assertFalse(port_is_listening(port))


class Inetd(CorraldTestCase):
    def test_cat_echoes_a_bounded_burst_within_process_limit(self):
        port = free_port()
        # ondemand lets clients wait in the backlog at the limit, as xinetd's
        # instances limit does; the dovecot policy would drop them.
        d = self.corrald(f"[service echo]\nexecutable = /bin/cat\nworker_protocol = inetd\n"
                         f"inet_listener = 127.0.0.1:{port}\nprocess_limit = 8\n"
                         "policy = ondemand\nlisten_backlog = 64\n").start()
        results, errors = {}, []
        peak = [0]

        def client(i):
            try:
                with connect(port, 20 * SLOW) as s:
                    payload = f"client {i} ".encode() * 200
                    s.sendall(payload)
                    s.shutdown(socket.SHUT_WR)
                    results[i] = read_all(s) == payload
            except OSError as e:
                errors.append(e)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(40)]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            peak[0] = max(peak[0], len(d.children()))
            threads[0].join(0.01)
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        self.assertEqual(len(results), 40)
        self.assertTrue(all(results.values()))
        self.assertLessEqual(peak[0], 8)
        wait_until(lambda: d.children() == [], 10, "every cat to exit")
        self.assertEqual(d.stop(), 0)
        self.assertFalse(port_is_listening(port))

    def test_dovecot_policy_drops_clients_at_the_limit(self):
        port = free_port()
        d = self.corrald(f"[service echo]\nexecutable = /bin/cat\nworker_protocol = inetd\n"
                         f"inet_listener = 127.0.0.1:{port}\nprocess_limit = 2\n").start()
        held = [connect(port) for _ in range(2)]
        try:
            for s in held:
                s.sendall(b"x")
                self.assertEqual(s.recv(1), b"x")
            # Dovecot's master stops listening at the limit for a while,
            # then closes waiting clients one by one, oldest first (M6).
            waiting = [connect(port) for _ in range(3)]
            d.wait_log(r"process_limit \(2\) reached", 10)

            def closed(s):
                s.setblocking(False)
                try:
                    return s.recv(1) == b""
                except BlockingIOError:
                    return False
                except ConnectionResetError:
                    return True
            dropped = wait_until(lambda: sum(closed(s) for s in waiting), 15,
                                 "a waiting client to be closed")
            self.assertGreaterEqual(dropped, 1)
            self.assertEqual(len(d.children()), 2)
            for s in waiting:
                s.close()
        finally:
            for s in held:
                s.close()

    @unittest.skipIf(WRAPPER, "under valgrind the spawn is a plain fork and cannot fail")
    def test_failing_spawn_pauses_accepting(self):
        port = free_port()
        d = self.corrald(f"[service echo]\nexecutable = /bin/cat\nworker_protocol = inetd\n"
                         f"inet_listener = 127.0.0.1:{port}\n"
                         "working_directory = /nonexistent/corral-wd\n").start()
        clients = [connect(port) for _ in range(5)]
        # The first client's spawn fails and is closed; the others wait in
        # the backlog while accepting pauses, one failure a second.
        clients[0].settimeout(10 * SLOW)
        answer = read_all(clients[0])  # returns once the connection is closed
        # ASan's runtime warns on fd 2, the connection, in a child that
        # fails before exec.
        if not SANITIZED:
            self.assertEqual(answer, b"")
        # The process exists and exits 89, as a Dovecot child whose set-up
        # fails; its reason is its own fatal line.
        d.wait_log(r"echo\(\d+\): chdir\(\) failed: No such file", 10)
        self.assertLessEqual(d.log_count(r"chdir\(\) failed"), 2)
        for s in clients:
            s.close()
        self.assertIsNone(d.proc.poll())

    def test_connection_environment(self):
        port = free_port()
        d = self.corrald(f"[service env]\nexecutable = /usr/bin/env\nworker_protocol = inetd\n"
                         f"inet_listener = 127.0.0.1:{port}\nenvironment = EXTRA=1\n").start()
        with connect(port) as s:
            local_port = s.getsockname()[1]
            env = dict(line.split("=", 1) for line in read_all(s).decode().splitlines())
        self.assertEqual(env["REMOTE_ADDR"], "127.0.0.1")
        self.assertEqual(env["REMOTE_PORT"], str(local_port))
        self.assertEqual(env["TCPREMOTEIP"], "127.0.0.1")
        self.assertEqual(env["TCPREMOTEPORT"], str(local_port))
        self.assertEqual(env["TCPLOCALIP"], "127.0.0.1")
        self.assertEqual(env["TCPLOCALPORT"], str(port))
        self.assertEqual(env["PROTO"], "TCP")
        self.assertEqual(env["EXTRA"], "1")
        self.assertNotIn("SOCKET_COUNT", env)
        d.stop()

    def test_stderr_goes_to_the_socket_or_the_log(self):
        port, port2 = free_port(), free_port()
        d = self.corrald(
            f"[service s]\nexecutable = /bin/ls /nonexistent-corral\nworker_protocol = inetd\n"
            f"inet_listener = 127.0.0.1:{port}\n"
            f"[service l]\nexecutable = /bin/ls /nonexistent-corral\nworker_protocol = inetd\n"
            f"inet_listener = 127.0.0.1:{port2}\ninetd_stderr = log\n").start()
        self.assertIn("nonexistent-corral", ask(port))
        self.assertEqual(ask(port2), "")
        d.wait_log(r"Info: l: .*nonexistent-corral", 10)

    def test_per_source_limit(self):
        port = free_port()
        d = self.corrald(f"[service echo]\nexecutable = /bin/cat\nworker_protocol = inetd\n"
                         f"inet_listener = 127.0.0.1:{port}\nper_source = 2\n").start()
        held = [connect(port) for _ in range(2)]
        try:
            for s in held:
                s.sendall(b"x")
                self.assertEqual(s.recv(1), b"x")
            with connect(port) as third:
                third.settimeout(10 * SLOW)
                self.assertEqual(third.recv(1), b"")  # closed at once
            d.wait_log(r"connection from 127\.0\.0\.1 refused: per_source limit reached", 10)
            self.assertEqual(len(d.children()), 2)
            service = d.status("status")["services"][0]
            self.assertEqual(service["worker_protocol"], "inetd")
            self.assertEqual(service["connections_dropped"], 1)
        finally:
            for s in held:
                s.close()
        wait_until(lambda: d.children() == [], 10, "the held cats to exit")
        # The count went down with the exits: a new client is served.
        with connect(port) as s:
            s.sendall(b"again")
            s.shutdown(socket.SHUT_WR)
            self.assertEqual(read_all(s), b"again")

    def test_cps_pauses_accepting(self):
        port = free_port()
        d = self.corrald(f"[service echo]\nexecutable = /bin/true\nworker_protocol = inetd\n"
                         f"inet_listener = 127.0.0.1:{port}\ncps = 3 2\n").start()
        # More than 3 within one second: the 4th (at least) is refused.
        socks = [connect(port) for _ in range(6)]
        for s in socks:
            s.settimeout(10 * SLOW)
            read_all(s)
            s.close()
        d.wait_log(r"more than 3 connections per second \(cps\): not accepting for 2 seconds",
                   10)


@unittest.skipUnless(shutil.which("git"), "git is not installed")
class GitDaemon(CorraldTestCase):
    def test_git_clone_through_git_daemon_inetd(self):
        port = free_port()
        base = tempfile.mkdtemp(prefix="corral-git-")
        repo = os.path.join(base, "repo.git")
        work = os.path.join(base, "work")
        env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.org",
                   GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.org",
                   HOME=base)
        subprocess.run(["git", "init", "-q", "-b", "main", work], check=True, env=env)
        with open(os.path.join(work, "hello.txt"), "w") as f:
            f.write("served by git daemon under corrald\n")
        subprocess.run(["git", "-C", work, "add", "hello.txt"], check=True, env=env)
        subprocess.run(["git", "-C", work, "commit", "-q", "-m", "first"], check=True, env=env)
        subprocess.run(["git", "clone", "-q", "--bare", work, repo], check=True, env=env)
        git_daemon = shutil.which("git")
        d = self.corrald(
            f"[service git]\nexecutable = {git_daemon} daemon --inetd --export-all "
            f"--base-path={base} {base}\nworker_protocol = inetd\n"
            f"inet_listener = 127.0.0.1:{port}\nprocess_limit = 4\ninetd_stderr = log\n"
            f"environment = HOME={base}\n").start()
        clone = os.path.join(base, "clone")
        subprocess.run(["git", "clone", "-q", f"git://127.0.0.1:{port}/repo.git", clone],
                       check=True, env=env, timeout=60 * SLOW)
        with open(os.path.join(clone, "hello.txt")) as f:
            self.assertEqual(f.read(), "served by git daemon under corrald\n")
        wait_until(lambda: d.children() == [], 10, "git daemon processes to exit")
        self.assertEqual(d.stop(), 0)
        self.assertFalse(port_is_listening(port))


if __name__ == "__main__":
    unittest.main()
