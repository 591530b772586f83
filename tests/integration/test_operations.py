# SPDX-License-Identifier: MIT
"""Operating corrald: corralctl, doveadm, metrics, systemd integration, pid
file and log file, each against a live corrald."""
import json
import os
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import unittest

from harness import (BUILD, CORRALD, ECHO_WORKER, FIXTURE_POLICY_DIR, FIXTURE_WORKER, SANITIZED,
                     SLOW, WRAPPER, Corrald, CorraldTestCase, connect, echo_once, free_port,
                     port_is_listening, wait_until)

CORRALCTL = os.path.join(BUILD, "core", "corralctl")
DOVEADM = shutil.which("doveadm")
CURL = shutil.which("curl")
TMUX = shutil.which("tmux")
PROMTOOL = shutil.which("promtool")
BASH = shutil.which("bash")
COMPLETIONS = os.path.join(os.path.dirname(__file__), "../../conf/bash-completion")

# Starts a program with sockets at fds 3, 4, ... and LISTEN_PID set to its
# own pid, which exec keeps: what systemd does for a socket unit.
ACTIVATOR = r"""
import fcntl, os, sys
fds = [int(fd) for fd in sys.argv[1].split(",")]
high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd in fds]
for fd in fds:
    os.close(fd)
for target, fd in enumerate(high, start=3):
    os.dup2(fd, target)
    os.close(fd)
os.environ["LISTEN_PID"] = str(os.getpid())
os.environ["LISTEN_FDS"] = str(len(fds))
os.execvp(sys.argv[2], sys.argv[2:])
"""


def echo_service(port, name="echo", **keys):
    settings = {"executable": ECHO_WORKER, "inet_listener": f"127.0.0.1:{port}",
                "process_min_avail": 2, "process_limit": 10, "client_limit": 5}
    if SANITIZED:
        settings["vsz_limit"] = 0
    settings.update(keys)
    return f"[service {name}]\n" + "".join(f"{k} = {v}\n" for k, v in settings.items())


def fixture_service(port, mode, name="fx", **keys):
    settings = {"executable": f"{FIXTURE_WORKER} {mode}", "inet_listener": f"127.0.0.1:{port}",
                "process_min_avail": 1, "process_limit": 5, "client_limit": 1}
    if SANITIZED:
        settings["vsz_limit"] = 0
    settings.update(keys)
    return f"[service {name}]\n" + "".join(f"{k} = {v}\n" for k, v in settings.items())


class Ops(Corrald):
    """A corrald that can also be started with extra environment and with
    sockets passed the way systemd passes them."""

    def start(self, wait_ready=True, env=None, passed=None):
        full_env = dict(os.environ)
        full_env["CORRAL_POLICY_PATH"] = FIXTURE_POLICY_DIR
        full_env.update(env or {})
        command = WRAPPER + [CORRALD, "-F", "-c", self.conf]
        pass_fds = ()
        if passed:
            pass_fds = tuple(s.fileno() for s in passed)
            command = [sys.executable, "-c", ACTIVATOR,
                       ",".join(str(fd) for fd in pass_fds)] + command
        self.log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen(command, stdout=self.log_file, stderr=subprocess.STDOUT,
                                     env=full_env, pass_fds=pass_fds, start_new_session=True)
        if wait_ready:
            self.wait_log(r"corrald v\S+ starting up", 10)
        return self

    @property
    def base_dir(self):
        return os.path.join(self.dir, "run")

    def ctl(self, *args, user=None, timeout=30):
        command = [CORRALCTL, "-c", self.conf, *args]
        if user is not None:
            command = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"] + command
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout * SLOW)

    def ctl_json(self, *args):
        out = self.ctl("--json", *args)
        if out.returncode != 0:
            raise AssertionError(f"corralctl {args} failed ({out.returncode}): {out.stderr}")
        return json.loads(out.stdout)

    def service(self, name):
        services = self.ctl_json("status")["services"]
        return next(s for s in services if s["name"] == name)

    def wait_service(self, name, predicate, timeout, what):
        return wait_until(lambda: (lambda s: s if predicate(s) else None)(self.service(name)),
                          timeout, f"service {name}: {what}")


def parse_exposition(text):
    """{(name, labels): value} plus {name: type}, checking the line format."""
    samples, types, helps = {}, {}, set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helps.add(line.split()[2])
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            types[name] = kind
        else:
            match = re.fullmatch(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)', line)
            assert match, f"not an exposition line: {line!r}"
            samples[(match.group(1), match.group(2) or "")] = float(match.group(3))
    return samples, types, helps


class CorralctlStatus(CorraldTestCase):
    def corrald(self, services, **kwargs):
        daemon = Ops(services, **kwargs)
        self.addCleanup(daemon.close)
        return daemon

    def test_status_table_and_json(self):
        port = free_port()
        d = self.corrald(echo_service(port)).start()
        d.wait_children(2)
        out = d.ctl("status")
        self.assertEqual(out.returncode, 0, out.stderr)
        daemon, header, row = out.stdout.splitlines()
        self.assertRegex(daemon, rf"^corrald \S+ pid {d.proc.pid} up \d+s, "
                         rf"{re.escape(d.conf)}, last reload none$")
        self.assertEqual(header.split()[:8], ["SERVICE", "POLICY", "STATE", "PROCS", "AVAIL",
                                              "LIMIT", "CLIENTS", "MIN_AVAIL"])
        self.assertEqual(row.split()[:8], ["echo", "dovecot", "running", "2", "2", "10", "5", "2"])

        s = d.service("echo")
        self.assertEqual((s["process_count"], s["process_avail"], s["process_limit"],
                          s["client_limit"], s["process_min_avail"]), (2, 2, 10, 5, 2))
        self.assertEqual(s["processes_spawned"], 2)
        self.assertEqual((s["throttled"], s["throttled_until"]), (False, None))
        self.assertEqual((s["listening"], s["listen_pending"]), (False, False))
        self.assertEqual((s["connections_dropped"], s["last_drop"], s["exit_failures"]),
                         (0, None, 0))

    def test_control_and_master_sockets_are_private(self):
        d = self.corrald(echo_service(free_port())).start()
        for name in ("corral.sock", "master"):
            mode = os.stat(os.path.join(d.base_dir, name)).st_mode
            self.assertTrue(stat.S_ISSOCK(mode))
            self.assertEqual(stat.S_IMODE(mode), 0o600, name)

    def test_processes_lists_every_process(self):
        port = free_port()
        d = self.corrald(echo_service(port) + echo_service(free_port(), name="other",
                                                           process_min_avail=1)).start()
        d.wait_children(3)
        self.assertEqual(echo_once(port, b"one\n"), b"one\n")
        processes = d.ctl_json("processes", "echo")["processes"]
        self.assertEqual({p["service"] for p in processes}, {"echo"})
        self.assertEqual(len(processes), 2)
        now = time.time()
        for p in processes:
            self.assertIn(p["pid"], d.children())
            self.assertEqual(p["available_count"], 5)
            self.assertTrue(p["initialized"])
            self.assertLessEqual(abs(p["last_status"] - now), 30)
            self.assertIsNotNone(p["idle_since"])
            self.assertIsNone(p["last_kill"])
        out = d.ctl("processes")
        self.assertEqual(out.returncode, 0, out.stderr)
        lines = out.stdout.splitlines()
        self.assertEqual(lines[0].split(), ["PID", "SERVICE", "AVAILABLE", "SEEN", "RSS", "CPU",
                                            "IDLE_SINCE", "LAST_STATUS", "LAST_KILL", "AGE"])
        self.assertEqual(sorted(int(line.split()[0]) for line in lines[1:]), d.children())

    def test_process_memory_and_cpu_from_proc(self):
        port = free_port()
        d = self.corrald(echo_service(port, process_min_avail=1)).start()
        (pid,) = d.wait_children(1)
        # Some CPU time to see: a burst of echoes through the one process.
        with connect(port) as sock:
            for _ in range(200):
                sock.sendall(b"x" * 4000 + b"\n")
                got = b""
                while not got.endswith(b"\n"):
                    got += sock.recv(65536)
        page = os.sysconf("SC_PAGE_SIZE")
        ticks = os.sysconf("SC_CLK_TCK")

        def from_proc():
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{pid}/statm") as f:
                resident = int(f.read().split()[1])
            return resident * page, (int(fields[11]) + int(fields[12])) / ticks

        before = from_proc()
        (p,) = d.ctl_json("processes")["processes"]
        after = from_proc()
        self.assertEqual(p["pid"], pid)
        self.assertGreater(p["rss_bytes"], 0)
        # /proc/PID/stat and statm read the same counters, which the kernel
        # updates lazily: close, not equal.  A wrong field or unit is far off.
        self.assertLessEqual(min(before[0], after[0]) * 0.5, p["rss_bytes"])
        self.assertLessEqual(p["rss_bytes"], max(before[0], after[0]) * 2)
        self.assertLessEqual(before[1] - 0.011, p["cpu_secs"])
        self.assertLessEqual(p["cpu_secs"], after[1] + 0.011)
        samples, types, _ = parse_exposition(d.ctl("metrics").stdout)
        labels = f'{{service="echo",pid="{pid}"}}'
        self.assertGreater(samples[("corral_process_resident_memory_bytes", labels)], 0)
        self.assertGreaterEqual(samples[("corral_process_cpu_seconds_total", labels)],
                                before[1] - 0.011)
        self.assertEqual(types["corral_process_cpu_seconds_total"], "counter")

    def test_clients_seen_is_a_lower_bound(self):
        port = free_port()
        d = self.corrald(echo_service(port, process_min_avail=1, process_limit=1)).start()
        (pid,) = d.wait_children(1)
        wait_until(lambda: d.ctl_json("processes")["processes"][0]["initialized"], 10,
                   "the first status")
        # A client that stays is reported within the worker's one-second pace.
        with connect(port) as held:
            held.sendall(b"hold\n")
            self.assertEqual(held.recv(16), b"hold\n")
            wait_until(lambda: d.ctl_json("processes")["processes"][0]["clients_seen"] >= 1,
                       10, "the held client to be seen")
        # Short clients that come and go between two reports are not.
        for i in range(30):
            self.assertEqual(echo_once(port, b"%d\n" % i), b"%d\n" % i)
        (p,) = d.ctl_json("processes")["processes"]
        self.assertNotIn("clients_served", p)
        self.assertGreaterEqual(p["clients_seen"], 1)
        self.assertLessEqual(p["clients_seen"], 31)

    def test_unknown_service_is_exit_5(self):
        d = self.corrald(echo_service(free_port())).start()
        for args in (["status", "nosuch"], ["processes", "nosuch"], ["kill", "nosuch"],
                     ["service", "stop", "nosuch"], ["service", "start", "nosuch"]):
            out = d.ctl(*args)
            self.assertEqual(out.returncode, 5, args)
            self.assertIn("no service named 'nosuch'", out.stderr)

    def test_exit_failures_and_throttle_are_reported(self):
        port = free_port()
        d = self.corrald(fixture_service(port, "exit-before-status 1")).start()
        d.wait_log(r"service\(fx\): command startup failed, throttling for 2\.000 secs", 10)
        s = d.service("fx")
        self.assertTrue(s["throttled"])
        self.assertEqual(s["throttle_secs"], 2)
        self.assertGreater(s["throttled_until"], time.time() - 1)
        self.assertLessEqual(s["throttled_until"], time.time() + 3)
        self.assertGreaterEqual(s["exit_failures"], 1)
        self.assertFalse(s["have_success"])
        row = d.ctl("status").stdout.splitlines()[2]
        self.assertRegex(row, r"\buntil \d\d:\d\d:\d\d\b")

    def test_drops_and_listen_pending_at_process_limit(self):
        port = free_port()
        d = self.corrald(echo_service(port, process_min_avail=0, process_limit=1,
                                      client_limit=1)).start()
        held = connect(port, timeout=30)
        self.addCleanup(held.close)
        held.sendall(b"x\n")
        self.assertEqual(held.recv(16), b"x\n")
        extra = connect(port, timeout=30)
        self.addCleanup(extra.close)
        d.wait_log(r"client_limit \(1\) reached, client connections are being dropped", 5)
        s = d.service("echo")
        self.assertEqual((s["listening"], s["listen_pending"]), (False, True))
        self.assertEqual(s["process_limit_reached"], 1)
        self.assertEqual(s["queued_max"], 1)
        self.assertEqual((s["process_count"], s["process_avail"]), (1, 0))
        self.assertEqual(extra.recv(16), b"")  # dropped after Dovecot's 10 s
        s = d.wait_service("echo", lambda s: s["connections_dropped"] == 1, 5, "one drop")
        self.assertLessEqual(abs(s["last_drop"] - time.time()), 30)
        samples, _, _ = parse_exposition(d.ctl("metrics").stdout)
        self.assertEqual(samples[("corral_service_connections_dropped_total",
                                  '{service="echo"}')], 1)
        self.assertEqual(samples[("corral_service_process_limit_reached_total",
                                  '{service="echo"}')], 1)
        # The queue is empty again; its high-water mark stays.
        self.assertEqual(samples[("corral_service_queued_clients", '{service="echo"}')], 0)
        self.assertEqual(samples[("corral_service_queued_clients_max", '{service="echo"}')], 1)


class Metrics(CorraldTestCase):
    def corrald(self, services, **kwargs):
        daemon = Ops(services, **kwargs)
        self.addCleanup(daemon.close)
        return daemon

    def test_exposition_from_corralctl(self):
        d = self.corrald(echo_service(free_port()) +
                         echo_service(free_port(), name="other", process_min_avail=1)).start()
        d.wait_children(3)
        out = d.ctl("metrics")
        self.assertEqual(out.returncode, 0, out.stderr)
        samples, types, helps = parse_exposition(out.stdout)
        self.assertEqual(set(types), helps)
        for name, kind in types.items():
            self.assertTrue(name.startswith("corral_"), name)
            self.assertEqual(kind == "counter", name.endswith("_total"), name)
        self.assertEqual(samples[("corral_service_processes", '{service="echo"}')], 2)
        self.assertEqual(samples[("corral_service_processes", '{service="other"}')], 1)
        self.assertEqual(samples[("corral_service_process_limit", '{service="echo"}')], 10)
        self.assertEqual(samples[("corral_service_processes_spawned_total",
                                  '{service="echo"}')], 2)
        self.assertEqual(samples[("corral_service_exit_failures_total", '{service="echo"}')], 0)
        self.assertEqual(samples[("corral_service_throttled", '{service="echo"}')], 0)
        self.assertEqual(samples[("corral_service_exit_storm_failures", '{service="echo"}')], 0)
        self.assertNotIn("corral_service_exit_failures_in_second", types)
        self.assertGreater(samples[("corral_master_resident_memory_bytes", "")], 0)
        self.assertGreaterEqual(samples[("corral_master_cpu_seconds_total", '{mode="user"}')], 0)
        self.assertEqual(types["corral_master_cpu_seconds_total"], "counter")

    @unittest.skipUnless(PROMTOOL, "promtool is not installed (scripts/deps.sh installs prometheus)")
    def test_promtool_accepts_the_exposition(self):
        d = self.corrald(echo_service(free_port()) +
                         echo_service(free_port(), name="second", process_min_avail=1)).start()
        d.wait_children(3)
        text = d.ctl("metrics").stdout
        self.assertIn("corral_process_cpu_seconds_total{", text)
        out = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                             text=True, timeout=60 * SLOW)
        self.assertEqual((out.returncode, out.stdout, out.stderr), (0, "", ""))

    def test_every_metric_is_documented(self):
        d = self.corrald(echo_service(free_port())).start()
        d.wait_children(2)
        _, types, _ = parse_exposition(d.ctl("metrics").stdout)
        with open(os.path.join(os.path.dirname(__file__), "../../docs/operations.md")) as f:
            documented = set(re.findall(r"`(corral_[a-z_]+)", f.read()))
        self.assertEqual(sorted(set(types) - documented), [])

    @unittest.skipUnless(CURL, "curl is not installed (scripts/deps.sh installs it)")
    def test_http_endpoint_with_curl(self):
        http_port = free_port()
        d = self.corrald(echo_service(free_port()),
                         corral_extra=f"metrics_listener = 127.0.0.1:{http_port}").start()
        d.wait_children(2)
        url = f"http://127.0.0.1:{http_port}"
        out = subprocess.run([CURL, "-sS", "-i", "--max-time", "10", url + "/metrics"],
                             capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stderr)
        head, _, body = out.stdout.partition("\n\n")  # text mode: \r\n read as \n
        self.assertRegex(head, r"^HTTP/1\.1 200 OK")
        self.assertIn("Content-Type: text/plain; version=0.0.4", head)
        samples, _, _ = parse_exposition(body)
        self.assertEqual(samples[("corral_service_processes", '{service="echo"}')], 2)
        for path, code in (("/", "404"), ("/metricsx", "404")):
            out = subprocess.run([CURL, "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                  "--max-time", "10", url + path], capture_output=True, text=True)
            self.assertEqual(out.stdout, code, path)
        out = subprocess.run([CURL, "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST",
                              "--max-time", "10", url + "/metrics"], capture_output=True, text=True)
        self.assertEqual(out.stdout, "405")
        out = subprocess.run([CURL, "-s", "-o", "/dev/null", "-w", "%{http_code}", "--http1.0",
                              "--max-time", "10", url + "/metrics?x=1"],
                             capture_output=True, text=True)
        self.assertEqual(out.stdout, "200")

    def test_http_endpoint_rejects_bad_requests(self):
        http_port = free_port()
        d = self.corrald(echo_service(free_port()),
                         corral_extra=f"metrics_listener = 127.0.0.1:{http_port}").start()

        def exchange(data):
            with socket.create_connection(("127.0.0.1", http_port), timeout=10 * SLOW) as s:
                s.sendall(data)
                reply = b""
                while chunk := s.recv(4096):
                    reply += chunk
                return reply
        self.assertTrue(exchange(b"hello there\r\n\r\n").startswith(b"HTTP/1.1 400 "))
        self.assertTrue(exchange(b"GET /metrics\r\n\r\n").startswith(b"HTTP/1.1 400 "))
        self.assertTrue(exchange(b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 9000)
                        .startswith(b"HTTP/1.1 431 "))
        # A client that never finishes its request is let go after 5 s.
        with socket.create_connection(("127.0.0.1", http_port), timeout=15 * SLOW) as s:
            s.sendall(b"GET /metrics HTTP/1.1\r\n")
            started = time.monotonic()
            self.assertEqual(s.recv(16), b"")
            self.assertGreater(time.monotonic() - started, 4)
        self.assertTrue(port_is_listening(http_port))

    def test_bad_metrics_listener_names_file_and_key(self):
        d = self.corrald(echo_service(free_port()), corral_extra="metrics_listener = nowhere")
        code, log = d.run_to_exit()
        self.assertEqual(code, 1)
        self.assertIn("corral.conf", log)
        self.assertIn("[corral] metrics_listener", log)
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = busy.getsockname()[1]
            d = self.corrald(echo_service(free_port()),
                             corral_extra=f"metrics_listener = 127.0.0.1:{port}")
            code, log = d.run_to_exit()
        self.assertEqual(code, 1)
        self.assertIn(f"[corral] metrics_listener: listener 127.0.0.1:{port}: "
                      "Address already in use", log)


class Steering(CorraldTestCase):
    def corrald(self, services, **kwargs):
        daemon = Ops(services, **kwargs)
        self.addCleanup(daemon.close)
        return daemon

    def test_service_stop_and_start(self):
        port = free_port()
        d = self.corrald(echo_service(port)).start()
        old = d.wait_children(2)
        out = d.ctl("service", "stop", "echo")
        self.assertEqual((out.returncode, out.stdout), (0, "stopped echo\n"), out.stderr)
        # Idle processes see the dead pipe and leave; the port is closed.
        wait_until(lambda: not d.children(), 10, "every process to leave")
        self.assertFalse(port_is_listening(port))
        s = d.service("echo")
        self.assertEqual((s["state"], s["listening"], s["process_count"]), ("stopped", False, 0))

        out = d.ctl("service", "start", "echo")
        self.assertEqual((out.returncode, out.stdout), (0, "started echo\n"), out.stderr)
        new = d.wait_children(2)
        self.assertFalse(set(old) & set(new))
        self.assertEqual(echo_once(port, b"again\n"), b"again\n")
        self.assertEqual(d.service("echo")["state"], "running")
        out = d.ctl("service", "start", "echo")
        self.assertEqual(out.returncode, 1)
        self.assertIn("service echo is not stopped", out.stderr)

    def test_kill_signals_every_process(self):
        port = free_port()
        d = self.corrald(echo_service(port)).start()
        old = d.wait_children(2)
        wait_until(lambda: all(p["initialized"] for p in
                               d.ctl_json("processes")["processes"]), 10, "first statuses")
        out = d.ctl("kill", "echo")
        self.assertEqual((out.returncode, out.stdout),
                         (0, "sent SIGTERM to 2 processes of echo\n"), out.stderr)
        d.wait_log(r"service\(echo\): sent SIGTERM to 2 processes \(asked by pid=\d+ uid=\d+\)",
                   5)
        wait_until(lambda: len(d.children()) == 2 and not set(old) & set(d.children()), 10,
                   "both processes to be replaced")
        out = d.ctl("kill", "echo", "NOSUCHSIG")
        self.assertEqual(out.returncode, 2)
        self.assertIn("'NOSUCHSIG' is not a signal", out.stderr)

    def test_reload(self):
        port, other = free_port(), free_port()
        d = self.corrald(echo_service(port)).start()
        with open(os.path.join(d.dir, "conf.d", "60-other.conf"), "w") as f:
            f.write(echo_service(other, name="other", process_min_avail=1,
                                 allow_root="yes" if os.geteuid() == 0 else "no"))
        out = d.ctl("reload")
        self.assertEqual((out.returncode, out.stdout), (0, "configuration reloaded\n"),
                         out.stderr)
        self.assertEqual([s["name"] for s in d.ctl_json("status")["services"]], ["echo", "other"])
        self.assertEqual(echo_once(other, b"new\n"), b"new\n")

        with open(os.path.join(d.dir, "conf.d", "60-other.conf"), "a") as f:
            f.write("process_limitt = 3\n")
        out = d.ctl("reload")
        self.assertEqual(out.returncode, 1)
        self.assertIn("60-other.conf", out.stderr)
        self.assertIn("process_limitt", out.stderr)
        self.assertEqual([s["name"] for s in d.ctl_json("status")["services"]], ["echo", "other"])

    def test_reloads_are_visible(self):
        d = self.corrald(echo_service(free_port())).start()
        d.wait_children(2)
        started = time.time()
        status = d.ctl_json("status")
        daemon = status["corrald"]
        self.assertEqual((daemon["pid"], daemon["config"]), (d.proc.pid, d.conf))
        version = subprocess.run([CORRALD, "-V"], capture_output=True, text=True).stdout
        self.assertEqual(version.split()[1], daemon["version"])
        self.assertLessEqual(abs(daemon["started"] - started), 30 * SLOW)
        self.assertEqual(daemon["last_reload"], {"time": None, "ok": True, "error": None})
        samples, _, _ = parse_exposition(d.ctl("metrics").stdout)
        self.assertEqual(samples[("corral_build_info", f'{{version="{daemon["version"]}"}}')], 1)
        start_time = samples[("corral_start_time_seconds", "")]
        self.assertEqual(int(start_time), daemon["started"])
        self.assertEqual(samples[("corral_config_last_reload_successful", "")], 1)
        self.assertEqual(samples[("corral_config_last_reload_success_timestamp_seconds", "")],
                         start_time)
        self.assertEqual(samples[("corral_service_policy_info",
                                  '{service="echo",policy="dovecot"}')], 1)

        conf_file = os.path.join(d.dir, "conf.d", "50-test.conf")
        with open(conf_file, "a") as f:
            f.write("process_limitt = 3\n")
        self.assertEqual(d.ctl("reload").returncode, 1)
        reload = d.ctl_json("status")["corrald"]["last_reload"]
        self.assertFalse(reload["ok"])
        self.assertIn(f"{conf_file}:", reload["error"])
        self.assertIn("process_limitt", reload["error"])
        self.assertGreaterEqual(reload["time"], daemon["started"])
        samples, _, _ = parse_exposition(d.ctl("metrics").stdout)
        self.assertEqual(samples[("corral_config_last_reload_successful", "")], 0)
        self.assertEqual(samples[("corral_config_last_reload_success_timestamp_seconds", "")],
                         start_time)
        line = d.ctl("status").stdout.splitlines()[0]
        self.assertRegex(line, r"last reload FAILED at \d\d:\d\d:\d\d: .*process_limitt")

        with open(conf_file) as f:
            text = f.read().replace("process_limitt = 3\n", "").replace("dovecot", "static")
        with open(conf_file, "w") as f:
            f.write(text + "policy = static\n")
        self.assertEqual(d.ctl("reload").returncode, 0)
        reload = d.ctl_json("status")["corrald"]["last_reload"]
        self.assertEqual((reload["ok"], reload["error"]), (True, None))
        samples, _, _ = parse_exposition(d.ctl("metrics").stdout)
        self.assertEqual(samples[("corral_config_last_reload_successful", "")], 1)
        self.assertGreater(samples[("corral_config_last_reload_success_timestamp_seconds", "")],
                           start_time)
        self.assertEqual(samples[("corral_service_policy_info",
                                  '{service="echo",policy="static"}')], 1)
        self.assertNotIn(("corral_service_policy_info", '{service="echo",policy="dovecot"}'),
                         samples)
        self.assertRegex(d.ctl("status").stdout.splitlines()[0],
                         r"last reload ok at \d\d:\d\d:\d\d$")

    def test_stop_waits_for_corrald_to_exit(self):
        d = self.corrald(echo_service(free_port())).start()
        d.wait_children(2)
        pid_file = os.path.join(d.base_dir, "master.pid")
        self.assertTrue(os.path.exists(pid_file))
        out = d.ctl("stop")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout, "corrald has stopped\n")
        self.assertEqual(d.proc.wait(10 * SLOW), 0, d.log())
        self.assertIn("control: shutdown requested by pid=", d.log())
        for name in ("master.pid", "corral.sock", "master"):
            self.assertFalse(os.path.exists(os.path.join(d.base_dir, name)), name)


class Cli(CorraldTestCase):
    """corralctl for daily use: fitted tables, -o, --no-headers, JSON errors,
    completion, top, and a read-only control_group."""

    def corrald(self, services, **kwargs):
        daemon = Ops(services, **kwargs)
        self.addCleanup(daemon.close)
        return daemon

    def ctl_env(self, d, *args, **env):
        return subprocess.run([CORRALCTL, "-c", d.conf, *args], capture_output=True, text=True,
                              timeout=30 * SLOW, env=dict(os.environ, **env))

    def two_services(self):
        d = self.corrald(echo_service(free_port()) +
                         echo_service(free_port(), name="imap-login", policy="dynamic",
                                      process_min_avail=1)).start()
        d.wait_children(4)
        return d

    def test_tables_fit_the_terminal(self):
        d = self.two_services()
        wide = self.ctl_env(d, "status", COLUMNS="300")
        narrow = self.ctl_env(d, "status", COLUMNS="80", LANG="C.UTF-8", LC_ALL="C.UTF-8")
        self.assertEqual((wide.returncode, narrow.returncode), (0, 0), narrow.stderr)
        self.assertEqual(len(wide.stdout.splitlines()[1].split()), 20)
        lines = narrow.stdout.splitlines()
        for line in lines:
            self.assertLessEqual(len(line), 80, line)
        header = lines[1].split()
        self.assertEqual(header[:2], ["SERVICE", "POLICY"])
        for kept in ("PROCS", "AVAIL", "LIMIT", "THROTTLED", "QUEUED"):
            self.assertIn(kept, header)
        self.assertNotIn("SUCCESS", header)
        self.assertEqual([line.split()[0] for line in lines[2:]], ["echo", "imap-login"])
        # The daemon line names the long scratch path: cut with an ellipsis.
        tiny = self.ctl_env(d, "status", COLUMNS="40", LANG="C.UTF-8", LC_ALL="C.UTF-8")
        first = tiny.stdout.splitlines()[0]
        self.assertEqual(len(first), 40)
        self.assertTrue(first.endswith("\u2026"), first)
        processes = self.ctl_env(d, "processes", COLUMNS="60")
        for line in processes.stdout.splitlines():
            self.assertLessEqual(len(line), 60, line)
        self.assertEqual(processes.stdout.splitlines()[0].split()[:2], ["PID", "SERVICE"])

    def test_columns_and_no_headers(self):
        d = self.two_services()
        out = d.ctl("-o", "service,procs,Limit", "status")
        self.assertEqual(out.returncode, 0, out.stderr)
        lines = out.stdout.splitlines()
        self.assertEqual(lines[1].split(), ["SERVICE", "PROCS", "LIMIT"])
        self.assertEqual(lines[2].split(), ["echo", "2", "10"])
        out = d.ctl("--no-headers", "-o", "SERVICE", "status")
        self.assertEqual(out.stdout.split(), ["echo", "imap-login"])
        out = d.ctl("--no-headers", "-o", "pid", "processes", "echo")
        self.assertEqual(sorted(int(pid) for pid in out.stdout.split()),
                         sorted(p["pid"] for p in d.ctl_json("processes", "echo")["processes"]))
        out = d.ctl("-o", "service,nosuch", "status")
        self.assertEqual(out.returncode, 2)
        self.assertIn("unknown column 'nosuch'", out.stderr)
        self.assertIn("QUEUED_MAX", out.stderr)
        self.assertEqual(d.ctl("--json", "-o", "pid", "processes").returncode, 2)

    def test_errors_under_json_are_json(self):
        d = self.corrald(echo_service(free_port()))

        def error_of(*args, code):
            out = subprocess.run([CORRALCTL, *args], capture_output=True, text=True,
                                 timeout=30 * SLOW)
            self.assertEqual(out.returncode, code, (args, out.stdout, out.stderr))
            return json.loads(out.stdout)["error"]
        self.assertEqual(error_of("-c", d.conf, "--json", "status", code=3)["kind"],
                         "not-running")
        d.start()
        self.assertEqual(error_of("-c", d.conf, "--json", "status", "nosuch", code=5),
                         {"kind": "unknown-service", "message": "no service named 'nosuch'"})
        self.assertEqual(error_of("-c", d.conf, "--json", "bogus", code=2)["kind"], "usage")
        self.assertEqual(error_of("--json", "--bogus", "status", code=2)["kind"], "usage")
        missing = os.path.join(d.dir, "missing.conf")
        self.assertIn("missing.conf: cannot open",
                      error_of("-c", missing, "--json", "status", code=6)["message"])
        with open(os.path.join(d.dir, "conf.d", "50-test.conf"), "a") as f:
            f.write("process_limitt = 3\n")
        failed = error_of("-c", d.conf, "--json", "reload", code=1)
        self.assertEqual(failed["kind"], "failed")
        self.assertIn("process_limitt", failed["message"])

    def test_help_shows_ellipses(self):
        env = dict(os.environ, LANG="C.UTF-8", LC_ALL="C.UTF-8")
        for program, usage in ((CORRALD, "[OPTION\u2026]"), (CORRALCTL, "COMMAND [ARGUMENT\u2026]")):
            out = subprocess.run([program, "--help"], capture_output=True, text=True, env=env)
            self.assertEqual(out.returncode, 0)
            self.assertIn(usage, out.stdout)
            self.assertNotIn("?]", out.stdout)

    @unittest.skipUnless(BASH, "bash is not installed")
    def test_bash_completion(self):
        d = self.corrald(echo_service(free_port()) +
                         echo_service(free_port(), name="imap-login", process_min_avail=1))
        d.start()

        def complete(program, *words):
            script = (f"source {shlex.quote(os.path.join(COMPLETIONS, program))}\n"
                      f"COMP_WORDS=({' '.join(shlex.quote(w) for w in (program,) + words)})\n"
                      f"COMP_CWORD={len(words)}\n_{program}\n"
                      'printf "%s\\n" "${COMPREPLY[@]}"\n')
            env = dict(os.environ, PATH=os.path.dirname(CORRALCTL) + ":" + os.environ["PATH"])
            out = subprocess.run([BASH, "--norc", "-c", script], capture_output=True, text=True,
                                 env=env, timeout=30 * SLOW)
            self.assertEqual(out.returncode, 0, out.stderr)
            return sorted(out.stdout.split())
        self.assertEqual(complete("corralctl", "st"), ["status", "stop"])
        self.assertEqual(complete("corralctl", "service", ""), ["start", "stop"])
        self.assertEqual(complete("corralctl", "-c", d.conf, "status", ""), ["echo", "imap-login"])
        self.assertEqual(complete("corralctl", "-c", d.conf, "kill", "i"), ["imap-login"])
        self.assertEqual(complete("corralctl", "kill", "echo", "US"), ["USR1", "USR2"])
        self.assertEqual(complete("corralctl", "-o", "SERVICE,QUEUED_"), ["SERVICE,QUEUED_MAX"])
        self.assertEqual(complete("corralctl", "--no-h"), ["--no-headers"])
        self.assertEqual(complete("corrald", "--print-"), ["--print-all", "--print-changed"])
        installed = subprocess.run(["meson", "introspect", "--installed", BUILD],
                                   capture_output=True, text=True)
        if installed.returncode == 0:
            targets = json.loads(installed.stdout).values()
            for program in ("corralctl", "corrald"):
                self.assertIn(f"bash-completion/completions/{program}",
                              "\n".join(targets))

    def test_top_shows_rates(self):
        d = self.corrald(echo_service(free_port()))
        d.start()
        d.wait_children(2)
        top = subprocess.Popen([CORRALCTL, "-c", d.conf, "top", "-n", "3", "-i", "1"],
                               stdout=subprocess.PIPE, text=True)
        self.addCleanup(top.stdout.close)
        self.addCleanup(lambda: top.poll() is None and top.kill())
        frames, lines = [], []
        deadline = time.monotonic() + 20 * SLOW
        while len(frames) < 3 and time.monotonic() < deadline:
            line = top.stdout.readline()
            if not line:
                break
            if line == "\n" and lines and lines[-1].startswith("echo"):
                frames.append(lines)
                lines = []
                if len(frames) == 1:
                    # Between the first frame and the next: two respawns.
                    self.assertEqual(d.ctl("kill", "echo", "KILL").returncode, 0)
                    wait_until(lambda: d.service("echo")["processes_spawned"] == 4, 10,
                               "the respawns")
            else:
                lines.append(line.rstrip("\n"))
        self.assertEqual(top.wait(10 * SLOW), 0)
        self.assertEqual(len(frames), 3, frames)
        header = next(l for l in frames[0] if l.startswith("SERVICE")).split()
        rows = [dict(zip(header, next(l for l in f if l.startswith("echo")).split()))
                for f in frames]
        self.assertEqual(rows[0]["SPAWN/S"], "-")
        self.assertGreater(float(rows[1]["SPAWN/S"]) + float(rows[2]["SPAWN/S"]), 0)
        self.assertEqual(rows[2]["PROCS"], "2")
        self.assertRegex(frames[0][0], r"^corralctl top \d\d:\d\d:\d\d, every 1\.0s$")

    @unittest.skipUnless(TMUX, "tmux is not installed (scripts/deps.sh installs it)")
    def test_top_in_a_terminal(self):
        d = self.corrald(echo_service(free_port()))
        d.start()
        d.wait_children(2)
        session = f"corral-top-{os.getpid()}-{time.monotonic_ns()}"
        socket_name = f"corral-test-{os.getpid()}"
        tmux = [TMUX, "-L", socket_name]
        subprocess.run(tmux + ["new-session", "-d", "-s", session, "-x", "80", "-y", "20",
                               f"{CORRALCTL} -c {shlex.quote(d.conf)} top -i 0.5; "
                               "echo top-exited-$?; sleep 30"], check=True)
        self.addCleanup(subprocess.run, tmux + ["kill-server"], capture_output=True)

        def screen():
            return subprocess.run(tmux + ["capture-pane", "-p", "-t", session],
                                  capture_output=True, text=True).stdout
        shown = wait_until(lambda: (lambda s: s if re.search(r"(?m)^echo .*\d+\.\d", s)
                                    else None)(screen()), 10, "a frame with rates")
        for line in shown.splitlines():
            self.assertLessEqual(len(line), 80)
        self.assertIn("(q quits)", shown)
        self.assertRegex(shown, r"(?m)^SERVICE +PROCS +AVAIL +LIMIT +QUEUED +SPAWN/S")
        subprocess.run(tmux + ["send-keys", "-t", session, "q"], check=True)
        after = wait_until(lambda: (lambda s: s if "top-exited-0" in s else None)(screen()), 10,
                           "top to quit on q")
        self.assertNotIn("SERVICE", after)  # the alternate screen is gone

    @unittest.skipUnless(os.geteuid() == 0, "needs root to make a user and a group")
    def test_control_group_may_only_read(self):
        name = f"crl{os.getpid() % 100000}"
        subprocess.run(["groupadd", name], check=True)
        self.addCleanup(subprocess.run, ["groupdel", name], capture_output=True)
        subprocess.run(["useradd", "-M", "-N", "-g", name, "-s", "/usr/sbin/nologin", name],
                       check=True)
        self.addCleanup(subprocess.run, ["userdel", name], capture_output=True)
        d = self.corrald(echo_service(free_port()), corral_extra=f"control_group = {name}\n")
        d.start()
        d.wait_children(2)
        for path in (d.dir, os.path.join(d.dir, "conf.d")):
            os.chmod(path, 0o755)
        sock = os.stat(os.path.join(d.base_dir, "corral.sock"))
        self.assertEqual(stat.S_IMODE(sock.st_mode), 0o660)
        import grp
        self.assertEqual(sock.st_gid, grp.getgrnam(name).gr_gid)

        def as_member(*args):
            return subprocess.run(["setpriv", f"--reuid={name}", f"--regid={name}",
                                   "--init-groups", CORRALCTL, "-c", d.conf, *args],
                                  capture_output=True, text=True, timeout=30 * SLOW)
        for args in (["status"], ["processes"], ["metrics"], ["journal"]):
            out = as_member(*args)
            self.assertEqual(out.returncode, 0, (args, out.stderr))
        self.assertIn("corral_service_processes", as_member("metrics").stdout)
        for args in (["reload"], ["stop"], ["service", "stop", "echo"], ["kill", "echo"]):
            out = as_member(*args)
            self.assertEqual(out.returncode, 4, (args, out.stdout, out.stderr))
            self.assertIn("members of control_group may only run", out.stderr)
        out = as_member("--json", "reload")
        self.assertEqual(json.loads(out.stdout)["error"]["kind"], "permission")
        d.wait_log(r"control: refused 'reload' to pid=\d+ uid=\d+", 5)
        # Nothing changed, and corrald's own user still may.
        self.assertEqual(d.service("echo")["state"], "running")
        self.assertEqual(len(d.children()), 2)
        self.assertEqual(d.ctl("reload").returncode, 0)
        # Someone outside the group does not get in at all.
        out = d.ctl("status", user=65534)
        self.assertEqual(out.returncode, 4, out.stderr)

    def test_unknown_control_group_is_a_clear_error(self):
        d = self.corrald(echo_service(free_port()),
                         corral_extra="control_group = no-such-group-here\n")
        code, log = d.run_to_exit()
        self.assertEqual(code, 1)
        self.assertIn(f"{d.conf}: [corral] control_group: unknown group 'no-such-group-here'",
                      log)
        out = subprocess.run([CORRALD, "-t", "-c", d.conf], capture_output=True, text=True)
        self.assertEqual(out.returncode, 1)
        self.assertIn("[corral] control_group: unknown group 'no-such-group-here'", out.stderr)


def read_journal_entry(data):
    """Fields of one datagram of journald's native protocol."""
    fields, rest = {}, data
    while rest:
        line, sep, after = rest.partition(b"\n")
        if b"=" in line:
            key, _, value = line.partition(b"=")
            fields[key.decode()] = value.decode()
            rest = after
        else:  # KEY\n, 64-bit little-endian length, value, \n
            size = int.from_bytes(after[:8], "little")
            fields[line.decode()] = after[8:8 + size].decode()
            rest = after[8 + size + 1:]
    return fields


class LogOutput(CorraldTestCase):
    def corrald(self, services, **kwargs):
        daemon = Ops(services, **kwargs)
        self.addCleanup(daemon.close)
        return daemon

    def test_timestamps_have_the_zone_and_the_last_line_says_stopped(self):
        d = self.corrald(echo_service(free_port()))
        d.start(env={"TZ": "CRL-2"})
        d.wait_children(2)
        self.assertEqual(d.stop(), 0)
        lines = d.log().splitlines()
        self.assertRegex(lines[0], r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \+0200 Info: "
                                   r"corrald v\S+ starting up")
        self.assertRegex(lines[-1], r" \+0200 Info: corrald stopped$")

    def test_log_level_changes_with_a_reload(self):
        d = self.corrald(echo_service(free_port()), corral_extra="log_level = warning\n")
        d.start(wait_ready=False)
        wait_until(lambda: os.path.exists(os.path.join(d.base_dir, "corral.sock")), 10,
                   "the control socket")
        d.wait_children(2)
        self.assertNotIn("Info:", d.log())
        with open(d.conf, "a") as f:
            f.write("log_level = debug\n")
        self.assertEqual(d.ctl("reload").returncode, 0)
        d.wait_log(r"Warning: log_level is now debug", 5)
        self.assertEqual(d.ctl("status").returncode, 0)
        d.wait_log(r"Debug: control: status from pid=\d+", 5)
        with open(d.conf, "a") as f:
            f.write("log_level = error\n")
        self.assertEqual(d.ctl("reload").returncode, 0)
        d.wait_log(r"Warning: log_level is now error", 5)
        before = d.log()
        self.assertEqual(d.ctl("status").returncode, 0)
        self.assertEqual(d.ctl("reload").returncode, 0)
        self.assertEqual(d.log(), before)
        with open(d.conf, "a") as f:
            f.write("log_level = loud\n")
        out = d.ctl("reload")
        self.assertEqual(out.returncode, 1)
        self.assertIn("[corral] log_level: 'loud' is not a log level", out.stderr)

    @unittest.skipUnless(os.geteuid() == 0 and shutil.which("unshare"),
                         "needs root and unshare for a private /run")
    def test_journald_gets_structured_fields(self):
        journal_dir = tempfile.mkdtemp(prefix="corral-journal-")
        self.addCleanup(shutil.rmtree, journal_dir, True)
        journal = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(journal.close)
        journal.bind(os.path.join(journal_dir, "socket"))
        d = self.corrald(echo_service(free_port()))
        open(d.log_path, "wb").close()
        st = os.stat(d.log_path)
        env = dict(os.environ, CORRAL_POLICY_PATH=FIXTURE_POLICY_DIR,
                   JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}")
        # corrald sees our socket as /run/systemd/journal/socket.
        private_run = ('mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/journal && '
                       'mount --bind "$0" /run/systemd/journal && exec "$@"')
        d.log_file = open(d.log_path, "ab")
        d.proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                                   private_run, journal_dir] + WRAPPER +
                                  [CORRALD, "-F", "-c", d.conf],
                                  stdout=d.log_file, stderr=subprocess.STDOUT, env=env,
                                  start_new_session=True)
        entries = []

        def entry_where(predicate):
            journal.settimeout(0.2)
            try:
                entries.append(read_journal_entry(journal.recv(65536)))
            except socket.timeout:
                pass
            return next((e for e in entries if predicate(e)), None)
        started = wait_until(lambda: entry_where(
            lambda e: re.match(r"corrald v\S+ starting up", e.get("MESSAGE", ""))), 10,
            "the start in the journal")
        self.assertEqual((started["PRIORITY"], started["SYSLOG_IDENTIFIER"]), ("6", "corrald"))
        self.assertNotIn("SERVICE", started)
        d.wait_children(2)
        victim = d.children()[0]
        os.kill(victim, signal.SIGKILL)
        died = wait_until(lambda: entry_where(lambda e: e.get("PID") == str(victim)), 10,
                          "the death in the journal")
        self.assertEqual((died["SERVICE"], died["POLICY"], died["PRIORITY"]),
                         ("echo", "dovecot", "3"))
        self.assertIn("killed with signal 9", died["MESSAGE"])
        d.proc.send_signal(signal.SIGTERM)
        self.assertEqual(d.proc.wait(15 * SLOW), 0)
        wait_until(lambda: entry_where(lambda e: e.get("MESSAGE") == "corrald stopped"), 5,
                   "the last line in the journal")
        # Everything went to the journal; nothing fell back to stderr.
        self.assertEqual(d.log(), "")


class ConfigTest(CorraldTestCase):
    """corrald -t, -n and -a: the whole configuration loaded, nothing run."""

    def corrald(self, services, **kwargs):
        daemon = Ops(services, **kwargs)
        self.addCleanup(daemon.close)
        return daemon

    def offline(self, *args):
        env = dict(os.environ, CORRAL_POLICY_PATH=FIXTURE_POLICY_DIR)
        return subprocess.run(WRAPPER + [CORRALD, *args], capture_output=True, text=True,
                              env=env, timeout=30 * SLOW)

    def shadowed_service(self, port, **keys):
        return echo_service(port, policy="dynamic", shadow_policies="queue",
                            **{"min_spare": 2, "queue.headroom": 3, **keys})

    def test_good_configuration_binds_and_starts_nothing(self):
        port = free_port()
        d = self.corrald(self.shadowed_service(port, unix_listener="echo.sock"),
                         corral_extra=f"metrics_listener = 127.0.0.1:{free_port()}\n")
        out = self.offline("-t", "-c", d.conf)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn(f"configuration {d.conf} is ok (1 service)", out.stdout)
        self.assertEqual(out.stderr, "")
        self.assertFalse(os.path.exists(d.base_dir), "-t created base_dir")
        self.assertFalse(port_is_listening(port))

    def test_bad_configuration_names_every_problem(self):
        d = self.corrald(self.shadowed_service(free_port(), min_spare="lots")
                         + "queue.bogus = 1\n"
                         + echo_service(free_port(), name="two", policy="nosuch")
                         + echo_service(free_port(), name="three", user="no-such-user-here"))
        test_file = os.path.join(d.dir, "conf.d", "50-test.conf")
        with open(test_file) as f:
            lines = f.read().splitlines()

        def line_of(text):
            return lines.index(text) + 1
        out = self.offline("-t", "-c", d.conf)
        self.assertEqual(out.returncode, 1, out.stdout)
        self.assertEqual(out.stdout, "")
        self.assertIn(f"{test_file}:{line_of('min_spare = lots')}: [service echo] min_spare: "
                      "'lots' is not a number", out.stderr)
        self.assertIn(f"{test_file}:{line_of('queue.bogus = 1')}: [service echo] queue.bogus: "
                      "unknown key (policy 'queue' does not declare it)", out.stderr)
        self.assertIn(f"{test_file}:{line_of('policy = nosuch')}: [service two] policy: "
                      "policy 'nosuch': no nosuch.so", out.stderr)
        if os.geteuid() == 0:  # names are looked up only where they would apply
            self.assertIn(f"{test_file}:{line_of('user = no-such-user-here')}: [service three] "
                          "user: unknown user 'no-such-user-here'", out.stderr)
        self.assertIn(f"configuration {d.conf} test failed", out.stderr)

    def test_syntax_error_and_core_key_error(self):
        d = self.corrald(echo_service(free_port()) + "process_limit = many\n")
        out = self.offline("-t", "-c", d.conf)
        self.assertEqual(out.returncode, 1)
        self.assertRegex(out.stderr, r"50-test\.conf:\d+: \[service echo\] process_limit: "
                         r"'many' is not a number")
        with open(d.conf, "a") as f:
            f.write("[corral\n")
        out = self.offline("-t", "-c", d.conf)
        self.assertEqual(out.returncode, 1)
        self.assertRegex(out.stderr, re.escape(d.conf) + r":4: ")

    def test_shipped_example_configuration_is_good(self):
        example = os.path.join(os.path.dirname(__file__), "../../conf/corral.conf")
        out = self.offline("-t", "-c", example)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("is ok (1 service)", out.stdout)

    def test_stray_arguments_are_an_error(self):
        d = self.corrald(echo_service(free_port()))
        for args in (["-c", d.conf, "extra"], ["-t", "-c", d.conf, "now"], ["-t", "-a"]):
            out = self.offline(*args)
            self.assertEqual(out.returncode, 2, args)
            self.assertIn("Try 'corrald --help'", out.stderr)

    def test_dumps_read_back_unchanged(self):
        d = self.corrald(self.shadowed_service(free_port(), unix_listener="echo.sock",
                                               unix_listener_mode="0660", idle_kill="90s",
                                               vsz_limit="1536k", type="worker")
                         + "executable = " + ECHO_WORKER + " --tab\\there\n"
                         + echo_service(free_port(), name="plain", service_count=3),
                         corral_extra="reload_kill_timeout = 2500ms\n")
        dumps = {}
        for flag in ("-a", "-n"):
            out = self.offline(flag, "-c", d.conf)
            self.assertEqual(out.returncode, 0, out.stderr)
            dumps[flag] = out.stdout
        every = dumps["-a"]
        # Policy keys and shadow keys, defaults included.
        self.assertIn("\nmin_spare = 2\n", every)
        self.assertIn("\nmax_spare = ", every)
        self.assertIn("\nqueue.headroom = 3\n", every)
        self.assertIn("\nqueue.tick = ", every)
        self.assertIn("\nreload_kill_timeout = 2500ms\n", every)
        self.assertIn("\nvsz_limit = 1536k\n", every)
        self.assertIn("\nidle_kill = 90s\n", every)
        self.assertIn("\nclient_limit = 3\n", every)  # capped by service_count
        self.assertIn(" --tab\\there\n", every)  # the tab escaped again
        changed = dumps["-n"]
        self.assertIn("\nmin_spare = 2\n", changed)
        self.assertNotIn("max_spare", changed)
        self.assertNotIn("client_limit = 3", changed)
        self.assertNotIn("process_limit = 100\n", changed)
        for flag, text in dumps.items():
            again = tempfile.mkdtemp(prefix="corral-dump-")
            self.addCleanup(shutil.rmtree, again, True)
            saved = os.path.join(again, "corral.conf")
            with open(saved, "w") as f:
                f.write(text)
            for check in ("-a", "-n"):
                out = self.offline(check, "-c", saved)
                self.assertEqual(out.returncode, 0, out.stderr)
                self.assertEqual(out.stdout, dumps[check], f"{flag} read back by {check}")


class ClientErrors(CorraldTestCase):
    def corrald(self, services, **kwargs):
        daemon = Ops(services, **kwargs)
        self.addCleanup(daemon.close)
        return daemon

    def test_not_running_when_the_socket_is_missing(self):
        d = self.corrald(echo_service(free_port()))
        out = d.ctl("status")
        self.assertEqual(out.returncode, 3)
        self.assertIn("corrald is not running", out.stderr)
        self.assertIn(os.path.join(d.base_dir, "corral.sock"), out.stderr)

    def test_not_running_when_the_socket_refuses(self):
        d = self.corrald(echo_service(free_port()))
        os.makedirs(d.base_dir)
        stale = socket.socket(socket.AF_UNIX)
        stale.bind(os.path.join(d.base_dir, "corral.sock"))
        stale.close()  # a socket file nobody listens on, as a crash leaves it
        out = d.ctl("status")
        self.assertEqual(out.returncode, 3)
        self.assertIn("refuses connections", out.stderr)

    @unittest.skipUnless(os.geteuid() == 0, "needs root to run corralctl as another user")
    def test_permission_denied_for_another_user(self):
        d = self.corrald(echo_service(free_port())).start()
        # Let the other user read the configuration, but not the socket.
        for path in (d.dir, os.path.join(d.dir, "conf.d")):
            os.chmod(path, 0o755)
        out = d.ctl("status", user=65534)
        self.assertEqual(out.returncode, 4, out.stderr)
        self.assertIn("permission denied on " + os.path.join(d.base_dir, "corral.sock"),
                      out.stderr)

    def test_usage_and_unreadable_config(self):
        d = self.corrald(echo_service(free_port())).start()
        for args in (["bogus"], [], ["service", "restart", "echo"], ["reload", "now"]):
            out = d.ctl(*args)
            self.assertEqual(out.returncode, 2, args)
            self.assertIn("Try 'corralctl --help'", out.stderr)
        out = subprocess.run([CORRALCTL, "-c", os.path.join(d.dir, "missing.conf"), "status"],
                             capture_output=True, text=True)
        self.assertEqual(out.returncode, 6)
        self.assertIn("missing.conf: cannot open", out.stderr)

    def test_control_socket_finds_base_dir_like_corrald(self):
        # base_dir set in a conf.d file wins, relative to the main file.
        d = self.corrald(echo_service(free_port()),
                         files={"00-base.conf": "[corral]\nbase_dir = elsewhere\n"}).start()
        self.assertTrue(os.path.exists(os.path.join(d.dir, "elsewhere", "corral.sock")))
        self.assertEqual(d.ctl("status").returncode, 0)


@unittest.skipUnless(DOVEADM, "doveadm is not installed (scripts/deps.sh installs dovecot-core)")
class Doveadm(CorraldTestCase):
    """Debian's own doveadm talks to corrald's base_dir/master."""

    def corrald(self, services, **kwargs):
        daemon = Ops(services, **kwargs)
        self.addCleanup(daemon.close)
        return daemon

    def doveadm(self, d, *args):
        conf = os.path.join(d.dir, "dovecot.conf")
        with open(conf, "w") as f:
            f.write(f"base_dir = {d.base_dir}\n")
        return subprocess.run([DOVEADM, "-c", conf, "-f", "tab", *args], capture_output=True,
                              text=True, timeout=20 * SLOW)

    @staticmethod
    def rows(out):
        lines = out.stdout.splitlines()
        header = lines[0].split("\t")
        return [dict(zip(header, line.split("\t"))) for line in lines[1:]]

    def test_service_status(self):
        d = self.corrald(echo_service(free_port()) + fixture_service(free_port(), "silent",
                                                                      process_min_avail=0)).start()
        d.wait_children(2)
        out = self.doveadm(d, "service", "status")
        self.assertEqual(out.returncode, 0, out.stderr)
        rows = self.rows(out)
        self.assertEqual([r["name"] for r in rows], ["echo", "fx"])
        echo = rows[0]
        self.assertEqual(list(echo), ["name", "process_count", "process_avail", "process_limit",
                                      "client_limit", "throttle_secs", "exit_failure_last",
                                      "exit_failures_in_sec", "last_drop_warning",
                                      "listen_pending", "listening", "doveadm_stop",
                                      "process_total"])
        self.assertEqual(echo, {"name": "echo", "process_count": "2", "process_avail": "2",
                                "process_limit": "10", "client_limit": "5", "throttle_secs": "0",
                                "exit_failure_last": "0", "exit_failures_in_sec": "0",
                                "last_drop_warning": "0", "listen_pending": "n",
                                "listening": "n", "doveadm_stop": "n", "process_total": "2"})
        self.assertEqual((rows[1]["process_count"], rows[1]["listening"]), ("0", "y"))

        out = self.doveadm(d, "service", "status", "fx")
        self.assertEqual([r["name"] for r in self.rows(out)], ["fx"])

    def test_process_status(self):
        d = self.corrald(echo_service(free_port())).start()
        pids = d.wait_children(2)
        wait_until(lambda: all(p["initialized"] for p in
                               d.ctl_json("processes")["processes"]), 10, "first statuses")
        out = self.doveadm(d, "process", "status")
        self.assertEqual(out.returncode, 0, out.stderr)
        rows = self.rows(out)
        self.assertEqual(sorted(int(r["pid"]) for r in rows), pids)
        now = time.time()
        for r in rows:
            self.assertEqual((r["name"], r["available_count"], r["total_count"],
                              r["last_kill_sent"]), ("echo", "5", "0", "0"))
            self.assertLessEqual(abs(int(r["idle_start"]) - now), 30)
            self.assertLessEqual(abs(int(r["last_status_update"]) - now), 30)
        out = self.doveadm(d, "process", "status", "nosuch")
        self.assertEqual((out.returncode, self.rows(out)), (0, []))

    def test_service_stop(self):
        port = free_port()
        d = self.corrald(echo_service(port)).start()
        d.wait_children(2)
        out = self.doveadm(d, "service", "stop", "nosuch")
        self.assertEqual(out.returncode, 68)  # DOVEADM_EX_NOTFOUND
        self.assertIn("Unknown service: nosuch", out.stderr)
        out = self.doveadm(d, "service", "stop", "echo")
        self.assertEqual(out.returncode, 0, out.stderr)
        wait_until(lambda: not d.children(), 10, "every process to leave")
        self.assertFalse(port_is_listening(port))
        row = self.rows(self.doveadm(d, "service", "status"))[0]
        self.assertEqual((row["doveadm_stop"], row["listening"]), ("y", "n"))
        self.assertEqual(d.service("echo")["state"], "stopped")

    def test_protocol_errors_are_logged_and_close(self):
        d = self.corrald(echo_service(free_port())).start()
        path = os.path.join(d.base_dir, "master")
        for hello, logged in ((b"HELLO\n", "not a master-client handshake"),
                              (b"VERSION\tmaster-client\t1\t0\nBOGUS\n", "Unknown command: BOGUS")):
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(10 * SLOW)
                s.connect(path)
                s.sendall(hello)
                received = b""
                while chunk := s.recv(4096):
                    received += chunk
                self.assertEqual(received, b"VERSION\tmaster-server\t1\t0\n")
            d.wait_log(re.escape(logged), 5)


class PidFileAndLog(CorraldTestCase):
    def corrald(self, services, **kwargs):
        daemon = Ops(services, **kwargs)
        self.addCleanup(daemon.close)
        return daemon

    def test_pid_file_and_second_instance_refused(self):
        port = free_port()
        d = self.corrald(echo_service(port)).start()
        pid_file = os.path.join(d.base_dir, "master.pid")
        wait_until(lambda: os.path.exists(pid_file), 5, "the pid file")
        with open(pid_file) as f:
            self.assertEqual(f.read(), f"{d.proc.pid}\n")
        second = Ops("")
        self.addCleanup(second.close)
        second.conf = d.conf
        code, log = second.run_to_exit()
        self.assertEqual(code, 1)
        self.assertIn(f"corrald is already running with this base_dir (pid {d.proc.pid} holds "
                      f"{pid_file})", log)
        self.assertEqual(echo_once(port), b"hi\n")

    def test_stale_pid_file_does_not_block(self):
        d = self.corrald(echo_service(free_port()))
        os.makedirs(d.base_dir)
        with open(os.path.join(d.base_dir, "master.pid"), "w") as f:
            f.write("1\n")  # a live pid, but nobody holds the lock
        d.start()
        d.wait_children(2)

    def test_log_path_and_sigusr1_reopen(self):
        log_file = "corrald-file.log"
        d = self.corrald(echo_service(free_port()), corral_extra=f"log_path = {log_file}")
        d.start(wait_ready=False)
        path = os.path.join(d.dir, log_file)

        def file_has(text, file=path):
            try:
                with open(file) as f:
                    return text in f.read()
            except FileNotFoundError:
                return False
        wait_until(lambda: file_has("starting up"), 10, "the log file")
        self.assertNotIn("starting up", d.log())  # not on stderr any more
        os.rename(path, path + ".1")
        d.proc.send_signal(signal.SIGUSR1)
        wait_until(lambda: file_has("SIGUSR1 received - reopened the log file " + path), 10,
                   "a new log file")
        self.assertFalse(file_has("reopened", path + ".1"))
        self.assertEqual(d.ctl("reload").returncode, 0)
        wait_until(lambda: file_has("Configuration reloaded"), 10, "later lines in the new file")
        self.assertFalse(file_has("Configuration reloaded", path + ".1"))

    def test_unwritable_log_path_is_a_clear_error(self):
        d = self.corrald(echo_service(free_port()), corral_extra="log_path = nodir/x.log")
        code, log = d.run_to_exit()
        self.assertEqual(code, 1)
        self.assertIn("[corral] log_path: cannot open the log file", log)
        self.assertIn("nodir/x.log", log)


class NotifySocket:
    """The service manager's end of NOTIFY_SOCKET."""

    def __init__(self, test, abstract=False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        test.addCleanup(self.sock.close)
        if abstract:
            self.name = f"@corral-test-{os.getpid()}-{time.monotonic_ns()}"
            self.sock.bind("\0" + self.name[1:])
        else:
            folder = tempfile.mkdtemp(prefix="corral-notify-")
            test.addCleanup(shutil.rmtree, folder)
            self.name = os.path.join(folder, "notify")
            self.sock.bind(self.name)
        self.messages = []

    def wait_for(self, predicate, timeout, what):
        deadline = time.monotonic() + timeout * SLOW
        for message in self.messages:
            if predicate(message):
                return message
        while time.monotonic() < deadline:
            self.sock.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                data = self.sock.recv(4096).decode()
            except socket.timeout:
                break
            message = dict(line.split("=", 1) for line in data.splitlines())
            self.messages.append(message)
            if predicate(message):
                return message
        raise AssertionError(f"no {what} within {timeout * SLOW}s; got {self.messages}")


class SystemdIntegration(CorraldTestCase):
    def corrald(self, services, **kwargs):
        daemon = Ops(services, **kwargs)
        self.addCleanup(daemon.close)
        return daemon

    def test_notify_ready_status_watchdog_reload_stopping(self):
        notify = NotifySocket(self)
        d = self.corrald(echo_service(free_port()))
        d.start(env={"NOTIFY_SOCKET": notify.name, "WATCHDOG_USEC": "200000"})
        ready = notify.wait_for(lambda m: "READY" in m, 10, "READY=1")
        self.assertEqual(ready["READY"], "1")
        self.assertEqual(ready["MAINPID"], str(d.proc.pid))
        self.assertRegex(ready["STATUS"], r"^1 service, \d+ process(es)?$")
        # The watchdog ping comes every WATCHDOG_USEC/2.
        notify.wait_for(lambda m: sum(x.get("WATCHDOG") == "1" for x in notify.messages) >= 3,
                        3, "three WATCHDOG=1")
        notify.wait_for(lambda m: m.get("STATUS") == "1 service, 2 processes", 10,
                        "the summary once preforked")

        notify.messages.clear()
        self.assertEqual(d.ctl("reload").returncode, 0)
        reloading = notify.wait_for(lambda m: "RELOADING" in m, 5, "RELOADING=1")
        self.assertGreater(int(reloading["MONOTONIC_USEC"]), 0)
        index = notify.messages.index(reloading)
        notify.wait_for(lambda m: "READY" in m and notify.messages.index(m) > index, 5,
                        "READY=1 after the reload")

        # A failed reload shows in STATUS= until a reload succeeds.
        conf_file = os.path.join(d.dir, "conf.d", "50-test.conf")
        with open(conf_file) as f:
            good = f.read()
        with open(conf_file, "a") as f:
            f.write("process_limitt = 3\n")
        notify.messages.clear()
        self.assertEqual(d.ctl("reload").returncode, 1)
        failed = notify.wait_for(lambda m: "READY" in m, 5, "READY=1 after the failed reload")
        self.assertRegex(failed["STATUS"], r"^1 service, 2 processes; last reload failed: "
                         + re.escape(conf_file) + r":\d+: \[service echo\] process_limitt: ")
        with open(conf_file, "w") as f:
            f.write(good)
        notify.messages.clear()
        self.assertEqual(d.ctl("reload").returncode, 0)
        ready = notify.wait_for(lambda m: "READY" in m, 10, "READY=1 after a good reload")
        self.assertRegex(ready["STATUS"], r"^1 service, \d+ process(es)?$")

        d.proc.send_signal(signal.SIGTERM)
        stopping = notify.wait_for(lambda m: "STOPPING" in m, 10, "STOPPING=1")
        self.assertEqual(stopping["STATUS"], "Shutting down")
        self.assertEqual(d.proc.wait(15 * SLOW), 0, d.log())

    def test_notify_abstract_socket(self):
        notify = NotifySocket(self, abstract=True)
        d = self.corrald(echo_service(free_port()))
        d.start(env={"NOTIFY_SOCKET": notify.name, "WATCHDOG_USEC": "100000",
                     "WATCHDOG_PID": "1"})
        notify.wait_for(lambda m: m.get("READY") == "1", 10, "READY=1")
        notify.wait_for(lambda m: m.get("STATUS") == "1 service, 2 processes", 10,
                        "the summary once preforked")
        # WATCHDOG_PID names another process: no pings for us to send.
        self.assertFalse(any("WATCHDOG" in m for m in notify.messages))

    def test_socket_activation(self):
        echo_port, spare_port = free_port(), free_port()
        no_vsz = "vsz_limit = 0\n" if SANITIZED else ""
        d = self.corrald(echo_service(echo_port) +
                         f"[service fx]\nexecutable = {FIXTURE_WORKER} silent\n"
                         f"unix_listener = fx.sock\nprocess_min_avail = 0\n{no_vsz}")
        os.makedirs(d.base_dir)
        passed = []
        for port in (echo_port, spare_port):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))
            s.listen(16)
            passed.append(s)
        unix = socket.socket(socket.AF_UNIX)
        unix_path = os.path.join(d.base_dir, "fx.sock")
        unix.bind(unix_path)
        unix.listen(16)
        passed.append(unix)
        for s in passed:
            self.addCleanup(s.close)
        # The test keeps its own copies open: corrald could not bind these
        # addresses itself, so serving on them proves it took the passed ones.
        d.start(env={"LISTEN_FDNAMES": "echo:spare:fx.sock"}, passed=passed)
        d.wait_log(rf"listener 127\.0\.0\.1:{echo_port}: using 'echo' passed by the service "
                   r"manager \(fd 3\)", 5)
        d.wait_log(rf"listener {re.escape(unix_path)}: using 'fx\.sock' passed by the service "
                   r"manager \(fd 5\)", 5)
        d.wait_log(rf"LISTEN_FDS: 'spare' \(fd 4, 127\.0\.0\.1:{spare_port}\) matches no "
                   r"configured listener's address; closing it", 5)
        d.wait_children(2)
        self.assertEqual(echo_once(echo_port, b"passed\n"), b"passed\n")
        # Only our copy of the spare socket is left; corrald closed its own.
        passed[1].close()
        self.assertFalse(port_is_listening(spare_port))
        self.assertEqual(d.stop(), 0, d.log())
        # The unix socket's path belongs to the service manager: it stays.
        self.assertTrue(os.path.exists(unix_path))


if __name__ == "__main__":
    unittest.main()
