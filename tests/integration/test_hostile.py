# SPDX-License-Identifier: MIT
"""Hostile workers and local users: each test performs one attack on a real
corrald and checks that it fails.  Attacks that need another user run as a
test user the test creates."""
import os
import pwd
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
import unittest

from harness import (BUILD, CORRALCTL, ECHO_WORKER, SANITIZED, SLOW, CorraldTestCase,
                     echo_once, free_port, wait_until)

HOSTILE_WORKER = os.path.join(BUILD, "tests", "fixtures", "hostile-worker")

TEST_USER = "corral-test"
AS_ROOT = os.geteuid() == 0


def ensure_test_user():
    try:
        return pwd.getpwnam(TEST_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                        "/usr/sbin/nologin", TEST_USER], check=True)
        return pwd.getpwnam(TEST_USER)


def as_user(user, argv):
    return ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups",
            *argv]


def vsz():
    return "vsz_limit = 0\n" if SANITIZED else ""


def ctl(daemon, *args, timeout=30):
    return subprocess.run([CORRALCTL, "-c", daemon.conf, *args], capture_output=True,
                          text=True, timeout=timeout)


def scrape(port, source="127.0.0.1", timeout=5):
    """One GET /metrics; True when a 200 answer arrived."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                      source_address=(source, 0)) as s:
            s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
            reply = b""
            while chunk := s.recv(65536):
                reply += chunk
            return reply.startswith(b"HTTP/1.1 200 ")
    except OSError:
        return False


class IdleFlood:
    """Holds `count` idle connections from each source address and, with
    `reconnect`, opens a new one whenever the server closes one."""

    def __init__(self, port, sources, count, reconnect):
        import threading
        self.port, self.sources, self.count, self.reconnect = port, sources, count, reconnect
        self.socks = []
        self.opened = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def open_one(self, source):
        try:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=2,
                                         source_address=(source, 0))
            s.setblocking(False)
            self.socks.append((source, s))
            self.opened += 1
        except OSError:
            pass

    def run(self):
        import select
        for source in self.sources:
            for _ in range(self.count):
                self.open_one(source)
        while not self.stopping.is_set():
            if not self.reconnect or not self.socks:
                self.stopping.wait(0.05)
                continue
            readable, _, _ = select.select([s for _, s in self.socks], [], [], 0.05)
            for s in readable:
                try:
                    closed = s.recv(1) == b""
                except OSError:
                    closed = True
                if closed:
                    source = next(src for src, sock in self.socks if sock is s)
                    self.socks = [(src, sock) for src, sock in self.socks if sock is not s]
                    s.close()
                    self.open_one(source)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join(10)
        for _, s in self.socks:
            s.close()


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


# Swaps symlinks to `victim` in for PATH and PATH.reload as fast as it can,
# until `stop` exists.
SYMLINK_SWAPPER = textwrap.dedent("""
    import os, sys
    victim, path, stop = sys.argv[1:4]
    folder = os.path.dirname(path)
    tmp = os.path.join(folder, ".swap-%d" % os.getpid())
    n = 0
    while not os.path.exists(stop):
        for target in (path + ".reload", path):
            try:
                os.symlink(victim, tmp)
            except FileExistsError:
                pass
            try:
                os.rename(tmp, target)
            except OSError:
                pass
        n += 1
""")


@unittest.skipUnless(AS_ROOT, "the attacks need root and a second user")
class HostileLocalUser(CorraldTestCase):
    @classmethod
    def setUpClass(cls):
        cls.user = ensure_test_user()

    def test_row01_no_chown_through_a_symlink_swapped_in_during_reload(self):
        """The listener's folder belongs to the service user, who swaps
        symlinks to a root-owned file in for the socket's path while
        corrald reloads: the file must keep its owner."""
        probe = self.corrald("")
        os.chmod(probe.dir, 0o755)
        folder = os.path.join(probe.dir, "public")
        os.makedirs(folder)
        victim = os.path.join(probe.dir, "victim")
        with open(victim, "w") as f:
            f.write("root's\n")
        os.chmod(victim, 0o600)
        path = os.path.join(folder, "ux.sock")
        d = self.corrald(f"[service ux]\nexecutable = {ECHO_WORKER}\nunix_listener = {path}\n"
                         f"unix_listener_user = {TEST_USER}\nunix_listener_mode = 0660\n"
                         "process_min_avail = 1\n" + vsz(),
                         corral_extra=f"base_dir = {probe.dir}/run")
        d.start()
        wait_until(lambda: os.path.exists(path), 10, "the unix socket")
        # The folder is handed to the service user after start, as a
        # postfix-style folder would be.
        os.chown(folder, self.user.pw_uid, self.user.pw_gid)
        stop = os.path.join(probe.dir, "stop")
        attacker = subprocess.Popen(as_user(self.user, [sys.executable, "-c", SYMLINK_SWAPPER,
                                                        victim, path, stop]))
        try:
            for _ in range(30):
                ctl(d, "reload")
                if os.stat(victim).st_uid != 0:
                    break
        finally:
            with open(stop, "w"):
                pass
            attacker.wait(30)
        self.assertEqual(os.stat(victim).st_uid, 0, "root's file was chowned through a symlink")
        self.assertEqual(os.stat(victim).st_mode & 0o777, 0o600)
        self.assertIsNone(d.proc.poll())

    def sticky_public_dir(self, probe):
        """A folder like /tmp: everyone may create entries, only their
        owner may replace them."""
        os.chmod(probe.dir, 0o755)
        public = os.path.join(probe.dir, "public")
        os.makedirs(public)
        os.chmod(public, 0o1777)
        return public

    def expect_refusal(self, d):
        """Starts corrald and expects it to refuse its configuration."""
        try:
            return d.run_to_exit()
        except subprocess.TimeoutExpired:
            self.fail(f"corrald accepted the configuration and ran\n--- log ---\n{d.log()}")

    def run_as_attacker(self, code, *args):
        subprocess.run(as_user(self.user, [sys.executable, "-c", code, *args]), check=True)

    def test_row02_a_base_dir_made_by_another_user_is_refused(self):
        probe = self.corrald("")
        public = self.sticky_public_dir(probe)
        base = os.path.join(public, "corral")
        self.run_as_attacker("import os, sys; os.mkdir(sys.argv[1], 0o755)", base)
        d = self.corrald(f"[service echo]\nexecutable = {ECHO_WORKER}\n"
                         f"inet_listener = 127.0.0.1:{free_port()}\n" + vsz(),
                         corral_extra=f"base_dir = {base}")
        code, log = self.expect_refusal(d)
        self.assertEqual(code, 1, log)
        self.assertIn(f"[corral] base_dir: {base} belongs to uid {self.user.pw_uid}, not to "
                      "root or to corrald's uid 0", log)
        self.assertFalse(os.path.exists(os.path.join(base, "corral.sock")))

    def test_row02_a_listener_folder_writable_by_others_is_refused(self):
        probe = self.corrald("")
        os.chmod(probe.dir, 0o755)
        shared = os.path.join(probe.dir, "shared")
        os.makedirs(shared)
        os.chmod(shared, 0o777)  # no sticky bit: anyone may replace the socket
        path = os.path.join(shared, "ux.sock")
        d = self.corrald(f"[service ux]\nexecutable = {ECHO_WORKER}\nunix_listener = {path}\n"
                         + vsz(), corral_extra=f"base_dir = {probe.dir}/run")
        code, log = self.expect_refusal(d)
        self.assertEqual(code, 1, log)
        self.assertIn(f"listener {path}: {shared} is writable by everyone (mode 0777) without "
                      "the sticky bit", log)

    def test_row03_log_path_never_follows_a_symlink(self):
        probe = self.corrald("")
        public = self.sticky_public_dir(probe)
        victim = os.path.join(probe.dir, "victim")
        with open(victim, "w") as f:
            f.write("root's\n")
        log_path = os.path.join(public, "corral.log")
        self.run_as_attacker("import os, sys; os.symlink(sys.argv[1], sys.argv[2])", victim,
                             log_path)
        d = self.corrald("", corral_extra=f"log_path = {log_path}\n"
                                          f"base_dir = {probe.dir}/run")
        try:
            code, log = d.run_to_exit()
        except subprocess.TimeoutExpired:
            code, log = None, d.log()
        with open(victim) as f:
            self.assertEqual(f.read(), "root's\n", "corrald logged into the symlink's target")
        self.assertEqual(code, 1, log)
        # In a sticky folder the kernel refuses O_CREAT on another user's
        # symlink itself (EACCES); elsewhere O_NOFOLLOW does (ELOOP).
        self.assertRegex(log, r"cannot open the log file \S+: (Permission denied|.*it is a "
                              r"symlink; corrald does not follow one)")

    def test_row03_log_path_made_first_by_another_user_is_refused(self):
        probe = self.corrald("")
        public = self.sticky_public_dir(probe)
        log_path = os.path.join(public, "corral.log")
        self.run_as_attacker("import sys; open(sys.argv[1], 'w').close()", log_path)
        d = self.corrald("", corral_extra=f"log_path = {log_path}\n"
                                          f"base_dir = {probe.dir}/run")
        code, log = self.expect_refusal(d)
        self.assertEqual(code, 1, log)
        self.assertIn(f"refusing the log file {log_path}: it belongs to another user", log)
        self.assertEqual(os.path.getsize(log_path), 0)

    def test_row10_an_existing_file_at_a_listener_path_is_not_replaced(self):
        probe = self.corrald("")
        main_conf = os.path.join(probe.dir, "precious.conf")
        with open(main_conf, "w") as f:
            f.write("keep me\n")
        d = self.corrald(f"[service ux]\nexecutable = {ECHO_WORKER}\n"
                         f"unix_listener = {main_conf}\n" + vsz(),
                         corral_extra=f"base_dir = {probe.dir}/run")
        code, log = d.run_to_exit()
        with open(main_conf) as f:
            self.assertEqual(f.read(), "keep me\n")
        self.assertEqual(code, 1)
        self.assertIn(f"listener {main_conf}: the path exists and is not a socket", log)

    def test_row10_a_file_swapped_in_for_a_listener_is_not_deleted_at_exit(self):
        probe = self.corrald("")
        path = os.path.join(probe.dir, "ux.sock")
        d = self.corrald(f"[service ux]\nexecutable = {ECHO_WORKER}\nunix_listener = {path}\n"
                         + vsz(), corral_extra=f"base_dir = {probe.dir}/run")
        d.start()
        wait_until(lambda: os.path.exists(path), 10, "the unix socket")
        os.unlink(path)
        with open(path, "w") as f:
            f.write("someone else's\n")
        self.assertEqual(d.stop(), 0)
        with open(path) as f:
            self.assertEqual(f.read(), "someone else's\n")


class HostileClients(CorraldTestCase):
    def metrics_corrald(self, **kwargs):
        port = free_port()
        d = self.corrald(f"[service echo]\nexecutable = {ECHO_WORKER}\n"
                         f"inet_listener = 127.0.0.1:{free_port()}\n" + vsz(),
                         corral_extra=f"metrics_listener = 127.0.0.1:{port}", **kwargs)
        return d, port

    def test_row12_a_doveadm_client_that_never_reads_cannot_grow_corrald(self):
        d = self.corrald(f"[service echo]\nexecutable = {ECHO_WORKER}\n"
                         f"inet_listener = 127.0.0.1:{free_port()}\nprocess_min_avail = 4\n"
                         + vsz())
        d.start()
        d.wait_children(4)
        master = os.path.join(d.dir, "run", "master")
        before = rss_bytes(d.proc.pid)
        requests = b"PROCESS-STATUS\n" * 256
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(master)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.sendall(b"VERSION\tmaster-client\t1\t0\n")
            s.setblocking(False)
            deadline = time.monotonic() + 4
            while time.monotonic() < deadline:  # never reads an answer
                try:
                    s.send(requests)
                except BlockingIOError:
                    time.sleep(0.001)
                except OSError:
                    break
            grown = rss_bytes(d.proc.pid) - before
        self.assertLess(grown, 24 << 20, f"corrald grew by {grown >> 20} MiB")
        self.assertTrue(ctl(d, "status").returncode == 0)

    def test_row04_scrapes_get_through_while_another_host_hoards_connections(self):
        d, port = self.metrics_corrald()
        d.start()
        wait_until(lambda: scrape(port), 10, "a first scrape")
        with IdleFlood(port, ["127.0.0.2"], 64, reconnect=True) as flood:
            wait_until(lambda: flood.opened >= 64, 20, "64 idle connections")
            answered = sum(scrape(port) for _ in range(40))
        self.assertEqual(answered, 40)

    def test_row04_idle_connections_from_the_scraper_host_make_room(self):
        d, port = self.metrics_corrald()
        d.start()
        wait_until(lambda: scrape(port), 10, "a first scrape")
        with IdleFlood(port, ["127.0.0.1"], 64, reconnect=False) as flood:
            wait_until(lambda: flood.opened >= 64, 20, "64 idle connections")
            started = time.monotonic()
            wait_until(lambda: scrape(port), 10, "a scrape past the idle connections")
            # Before the 5 s request timeout that let idle clients hold
            # every slot.
            took = time.monotonic() - started
            answered = sum(scrape(port) for _ in range(40))
        self.assertLess(took, 4, f"the first scrape took {took:.1f} s")
        self.assertEqual(answered, 40, f"{40 - answered} of 40 scrapes failed")


@unittest.skipUnless(AS_ROOT, "needs a second user, to run corrald below a hard RLIMIT_NOFILE")
class OutOfDescriptors(CorraldTestCase):
    @classmethod
    def setUpClass(cls):
        cls.user = ensure_test_user()

    def test_row05_emfile_on_accept_backs_off_and_logs_once(self):
        probe = self.corrald("")
        os.chmod(probe.dir, 0o755)
        base = os.path.join(probe.dir, "run")
        os.makedirs(base)
        os.chown(base, self.user.pw_uid, self.user.pw_gid)
        port = free_port()
        d = self.corrald(f"[service echo]\nexecutable = {ECHO_WORKER}\n"
                         f"inet_listener = 127.0.0.1:{free_port()}\n" + vsz(),
                         corral_extra=f"base_dir = {base}\nmetrics_listener = 127.0.0.1:{port}")
        for root, dirs, files in os.walk(d.dir):
            os.chmod(root, 0o755)
            for name in files:
                os.chmod(os.path.join(root, name), 0o644)
        d.prefix = as_user(self.user, ["prlimit", "--nofile=48:48"])
        d.start()
        wait_until(lambda: scrape(port), 10, "a first scrape")
        sources = [f"127.0.0.{i}" for i in range(2, 12)]
        with IdleFlood(port, sources, 8, reconnect=True):
            d.wait_log(r"metrics_listener: accept\(\) failed: Too many open files", 20)
            before = cpu_seconds(d.proc.pid)
            lines_before = d.log().count("\n")
            time.sleep(2)  # the window measured: corrald must stay idle in it
            cpu = cpu_seconds(d.proc.pid) - before
            lines = d.log().count("\n") - lines_before
        self.assertLess(cpu, 0.5 * SLOW, f"corrald used {cpu:.2f} s of CPU in 2 s")
        self.assertLess(lines, 20, f"{lines} log lines in 2 s")
        self.assertEqual(d.log_count(r"accept\(\) failed"), 1)
        wait_until(lambda: scrape(port), 10, "a scrape once the flood is gone")
        # valgrind keeps some of the 48 for itself.
        self.assertRegex(d.log(), r"RLIMIT_NOFILE is \d+, below the \d+ descriptors corrald "
                                  r"itself may need")


def unix_echo(path, text=b"hi\n"):
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(path)
        s.sendall(text)
        return s.recv(64)


class HostileWorkers(CorraldTestCase):
    def shutdown_listener_attack(self, unix):
        probe = self.corrald("")
        marker = os.path.join(probe.dir, "shut-down")
        port = free_port()
        path = os.path.join(probe.dir, "ux.sock")
        listener = f"unix_listener = {path}\n" if unix else f"inet_listener = 127.0.0.1:{port}\n"
        d = self.corrald(f"[service victim]\nexecutable = {HOSTILE_WORKER} shutdown-listener "
                         f"{marker}\n{listener}process_min_avail = 1\n" + vsz(),
                         corral_extra=f"base_dir = {probe.dir}/run\n"
                                      f"metrics_listener = 127.0.0.1:{free_port()}")
        d.start()
        wait_until(lambda: os.path.exists(marker), 10, "the worker's shutdown()")
        label = path if unix else f"127.0.0.1:{port}"

        def served():
            try:
                return (unix_echo(path) if unix else echo_once(port)) == b"hi\n"
            except OSError:
                return False
        wait_until(served, 10, "the service to serve again")
        before = cpu_seconds(d.proc.pid)
        time.sleep(1)  # the window measured: corrald must not spin on the dead socket
        self.assertLess(cpu_seconds(d.proc.pid) - before, 0.3 * SLOW)
        self.assertEqual(d.log_count(r"service\(victim\): listener " + label.replace(".", r"\.")
                                     + r" stopped accepting \(shut down by a process\?\): "
                                     "made it anew"), 1)
        status = ctl(d, "--json", "status")
        self.assertIn('"listeners_recreated":1', status.stdout.replace(" ", ""))
        metrics = ctl(d, "metrics").stdout
        self.assertIn('corral_service_listeners_recreated_total{service="victim"} 1', metrics)

    def test_row09_a_login_worker_cannot_write_to_the_notify_file(self):
        probe = self.corrald("")
        out = os.path.join(probe.dir, "fd4.txt")
        d = self.corrald(f"[service login]\ntype = login\nexecutable = {HOSTILE_WORKER} "
                         f"write-login-notify {out}\ninet_listener = 127.0.0.1:{free_port()}\n"
                         "process_min_avail = 1\n" + vsz(),
                         corral_extra=f"base_dir = {probe.dir}/run")
        d.start()
        wait_until(lambda: os.path.exists(out) and os.path.getsize(out) > 0, 10, "fd 4's outcome")
        with open(out) as f:
            outcome = f.read().strip()
        self.assertEqual(outcome, "written=-1 errno=9", "fd 4 took the write")  # EBADF

    def test_row07_forged_records_for_siblings_are_not_logged_without_bound(self):
        """A worker that claims its siblings are busy: the records it gets
        wrong are logged within a budget, not 18 MB of them."""
        d = self.corrald(f"[service fx]\nexecutable = {HOSTILE_WORKER} forge-siblings\n"
                         f"inet_listener = 127.0.0.1:{free_port()}\nprocess_min_avail = 3\n"
                         "process_limit = 6\n" + vsz())
        d.start()
        d.wait_log(r"Ignoring invalid update from child", 10)
        time.sleep(3)  # the window measured: the forger keeps writing in it
        invalid = d.log_count(r"Ignoring invalid update from child")
        self.assertLessEqual(invalid, 20, f"{invalid} lines about invalid updates in 3 s")
        self.assertLessEqual(len(d.children()), 6)

    def test_row08_a_partial_record_flood_is_logged_within_a_budget(self):
        d = self.corrald(f"[service fx]\nexecutable = {HOSTILE_WORKER} partial-flood 3\n"
                         f"inet_listener = 127.0.0.1:{free_port()}\nprocess_min_avail = 1\n"
                         + vsz())
        d.start()
        d.wait_log(r"service sent partial status update", 10)
        time.sleep(3)  # the flood lasts 3 s
        partial = d.log_count(r"service sent partial status update")
        self.assertLessEqual(partial, 20, f"{partial} lines about partial records in 3 s")
        d.wait_log(r"\d+ more such messages suppressed", 10)

    def test_row08_a_stderr_flood_is_cut_marked_escaped_and_budgeted(self):
        d = self.corrald(f"[service fx]\nexecutable = {HOSTILE_WORKER} stderr-flood 3\n"
                         f"inet_listener = 127.0.0.1:{free_port()}\nprocess_min_avail = 1\n"
                         + vsz())
        d.start()
        d.wait_log(r"flood line", 10)
        time.sleep(4)  # the flood lasts 3 s
        log = d.log()
        size = os.path.getsize(d.log_path)
        self.assertLess(size, 2 << 20, f"{size} bytes of log for a 3 s stderr flood")
        self.assertRegex(log, r"fx: L{100,}\S* \[line cut\]")
        self.assertNotIn("\033", log)
        self.assertNotIn("\007", log)
        self.assertIn(r"evil \x1b[2J\x1b[31mred\x07 bell", log)
        self.assertRegex(log, r"lines \(\d+ bytes\) of worker output suppressed")

    def test_row13_an_impossible_available_count_is_refused(self):
        d = self.corrald(f"[service fx]\nexecutable = {HOSTILE_WORKER} huge-count\n"
                         f"inet_listener = 127.0.0.1:{free_port()}\nprocess_min_avail = 1\n"
                         "client_limit = 4\n" + vsz())
        d.start()
        d.wait_children(1)
        wait_until(lambda: "4294967295" in ctl(d, "--json", "processes").stdout
                   or d.log_count("above client_limit") > 0, 10, "the record to be judged")
        self.assertNotIn("4294967295", ctl(d, "--json", "processes").stdout)
        self.assertRegex(d.log(), r"service\(fx\): Ignoring status update from child \d+: "
                                  r"available_count 4294967295 is above client_limit 4")

    def test_row13_a_worker_that_survives_shutdown_is_named(self):
        port = free_port()
        d = self.corrald(f"[service fx]\nexecutable = {HOSTILE_WORKER} survive-shutdown\n"
                         f"inet_listener = 127.0.0.1:{port}\nprocess_min_avail = 1\n" + vsz())
        d.start()
        (pid,) = d.wait_children(1)
        wait_until(lambda: '"initialized" : true' in ctl(d, "--json", "processes").stdout, 10,
                   "the first status")
        self.assertEqual(d.stop(30), 0)
        self.assertTrue(os.path.exists(f"/proc/{pid}"))
        self.assertRegex(d.log(), rf"Warning: service\(fx\): process {pid} is still running "
                                  rf"after shutdown .* still holds listener 127\.0\.0\.1:{port}: "
                                  rf"the address stays bound until it exits \(kill {pid}\)")
        os.kill(pid, signal.SIGKILL)

    def test_row06_a_tcp_listener_shut_down_by_a_worker_is_made_anew(self):
        self.shutdown_listener_attack(unix=False)

    def test_row06_a_unix_listener_shut_down_by_a_worker_is_made_anew(self):
        self.shutdown_listener_attack(unix=True)


class ReloadSafety(CorraldTestCase):
    def test_row11_an_empty_configuration_is_not_applied_without_force(self):
        port = free_port()
        d = self.corrald(f"[service echo]\nexecutable = {ECHO_WORKER}\n"
                         f"inet_listener = 127.0.0.1:{port}\nprocess_min_avail = 1\n" + vsz())
        d.start()
        d.wait_children(1)
        # Half-written: the main file truncated, the service file emptied.
        open(d.conf, "w").close()
        open(os.path.join(d.dir, "conf.d", "50-test.conf"), "w").close()
        out = ctl(d, "reload")
        self.assertNotEqual(out.returncode, 0, out.stdout)
        self.assertIn("the new configuration defines no service, and 1 is running", out.stderr)
        os.kill(d.proc.pid, signal.SIGHUP)
        d.wait_log(r"Config reload failed: .*defines no service", 10, count=2)
        self.assertEqual(echo_once(port, b"still\n"), b"still\n")
        out = ctl(d, "reload", "--force")
        self.assertEqual(out.returncode, 0, out.stderr)
        d.wait_log(r"Configuration reloaded: 0 services", 10)

    def test_row11_corrald_t_checks_a_configuration_before_it_is_used(self):
        d = self.corrald(f"[service echo]\nexecutable = {ECHO_WORKER}\n"
                         f"inet_listener = 127.0.0.1:{free_port()}\n" + vsz())
        corrald = os.path.join(BUILD, "core", "corrald")
        check = subprocess.run([corrald, "-t", "-c", d.conf], capture_output=True, text=True,
                               timeout=30)
        self.assertEqual((check.returncode, check.stdout),
                         (0, f"corrald: configuration {d.conf} is ok (1 service)\n"))
        with open(os.path.join(d.dir, "conf.d", "50-test.conf"), "a") as f:
            f.write("process_limit = lots\n")
        check = subprocess.run([corrald, "-t", "-c", d.conf], capture_output=True, text=True,
                               timeout=30)
        self.assertEqual(check.returncode, 1)
        self.assertRegex(check.stderr, r"50-test\.conf:\d+: \[service echo\] process_limit: ")
        self.assertFalse(os.path.exists(os.path.join(d.dir, "run")))

    def test_row11_a_service_that_would_lose_every_listener_is_kept(self):
        port = free_port()
        d = self.corrald(f"[service echo]\nexecutable = {ECHO_WORKER}\n"
                         f"inet_listener = 127.0.0.1:{port}\nprocess_min_avail = 1\n" + vsz())
        d.start()
        d.wait_children(1)
        with open(os.path.join(d.dir, "conf.d", "50-test.conf"), "w") as f:
            f.write(f"[service echo]\nexecutable = {ECHO_WORKER}\nallow_root = yes\n" + vsz())
        out = ctl(d, "reload")
        self.assertNotEqual(out.returncode, 0, out.stdout)
        self.assertIn("[service echo] would lose all 1 of its listeners", out.stderr)
        self.assertEqual(echo_once(port, b"still\n"), b"still\n")


class LateConfigurationErrors(CorraldTestCase):
    """Errors found only when the configuration is used still name the
    file and line of the key."""

    def refused(self, services, **kwargs):
        d = self.corrald(services, **kwargs)
        try:
            code, log = d.run_to_exit()
        except subprocess.TimeoutExpired:
            self.fail(f"corrald accepted the configuration and ran\n--- log ---\n{d.log()}")
        self.assertEqual(code, 1, log)
        return d, log

    def service_file(self, d):
        return os.path.join(d.dir, "conf.d", "50-test.conf")

    def test_row14_a_folder_as_executable_is_refused_at_its_line(self):
        d, log = self.refused(f"[service dir]\nexecutable = /tmp\n"
                              f"inet_listener = 127.0.0.1:{free_port()}\n")
        self.assertRegex(log, re.escape(self.service_file(d)) +
                         r":\d+: \[service dir\] executable: /tmp is a folder, not a program")

    def test_row14_an_absurd_listen_backlog_is_refused_at_its_line(self):
        d, log = self.refused(f"[service big]\nexecutable = {ECHO_WORKER}\n"
                              f"inet_listener = 127.0.0.1:{free_port()}\n"
                              "listen_backlog = 99999999999\n")
        self.assertRegex(log, re.escape(self.service_file(d)) +
                         r":\d+: \[service big\] listen_backlog: 99999999999 is above 65535")

    @unittest.skipUnless(AS_ROOT, "chroot applies only as root")
    def test_row14_a_missing_chroot_is_a_chroot_error(self):
        d, log = self.refused(f"[service jail]\nexecutable = {ECHO_WORKER}\n"
                              f"inet_listener = 127.0.0.1:{free_port()}\n"
                              "chroot = /nonexistent\n")
        self.assertRegex(log, re.escape(self.service_file(d)) +
                         r":\d+: \[service jail\] chroot: /nonexistent: No such file")

    @unittest.skipUnless(AS_ROOT, "user applies only as root")
    def test_row14_an_unknown_user_and_group_carry_their_line(self):
        d, log = self.refused(f"[service ghost]\nexecutable = {ECHO_WORKER}\n"
                              "user = no-such-user-here\n")
        self.assertRegex(log, re.escape(self.service_file(d)) +
                         r":3: \[service ghost\] user: unknown user 'no-such-user-here'")
        d, log = self.refused(f"[service ghost]\nexecutable = {ECHO_WORKER}\n"
                              "group = no-such-group-here\n")
        self.assertRegex(log, re.escape(self.service_file(d)) +
                         r":\d+: \[service ghost\] group: unknown group 'no-such-group-here'")

    def test_row14_a_listener_that_cannot_bind_carries_its_line(self):
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen(1)
            port = taken.getsockname()[1]
            d, log = self.refused(f"[service busy]\nexecutable = {ECHO_WORKER}\n"
                                  f"inet_listener = 127.0.0.1:{port}\n")
        self.assertRegex(log, re.escape(self.service_file(d)) +
                         rf":\d+: \[service busy\] inet_listener: listener 127\.0\.0\.1:{port}: "
                         "Address already in use")

    def test_row14_base_dir_and_log_path_errors_carry_their_line(self):
        probe = self.corrald("")
        blocker = os.path.join(probe.dir, "file")
        open(blocker, "w").close()
        d, log = self.refused("", corral_extra=f"base_dir = {blocker}/run")
        self.assertRegex(log, re.escape(d.conf) + r":3: \[corral\] base_dir: ")
        d, log = self.refused("", corral_extra=f"log_path = {blocker}/log")
        self.assertRegex(log, re.escape(d.conf) + r":3: \[corral\] log_path: ")


if __name__ == "__main__":
    unittest.main()
