# SPDX-License-Identifier: MIT
"""Starts a real corrald on loopback for integration tests.

Every wait is bounded and polls a real event (a log line, a process count,
a socket state); nothing sleeps in the hope that something happened.
"""
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import tempfile
import textwrap
import time
import unittest

BUILD = os.environ.get("CORRAL_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))
CORRALD = os.path.join(BUILD, "core", "corrald")
FIXTURE_WORKER = os.path.join(BUILD, "tests", "fixtures", "fixture-worker")
FIXTURE_POLICY_DIR = os.path.join(BUILD, "tests", "fixtures")
ECHO_WORKER = os.path.join(BUILD, "examples", "corral-echo-worker")
CORRALCTL = os.path.join(BUILD, "core", "corralctl")

# CORRAL_TEST_WRAPPER runs corrald under e.g. valgrind.
WRAPPER = shlex.split(os.environ.get("CORRAL_TEST_WRAPPER", ""))
# Sanitized workers reserve terabytes of address space, which a vsz_limit
# would refuse them.
SANITIZED = bool(os.environ.get("CORRAL_SANITIZED"))
# How much longer every bounded wait may take.  valgrind slows corrald about
# fourfold; ASan+UBSan slow corrald and every worker about twofold, which on a
# busy two-core machine pushed 10 s waits for a spawn, an exit and a throttle
# past their bound.  Only waits scale: no test measures anything against SLOW.
SLOW = 4 if WRAPPER else 2 if SANITIZED else 1


def allow_root_where_unset(services):
    """corrald refuses to run a service as root unless asked; tests that
    are not about privileges ask for it when they run as root."""
    if os.geteuid() != 0:
        return services
    out = []
    for block in re.split(r"(?m)^(?=\[)", services):
        if block.startswith("[service") and not re.search(r"(?m)^(user|allow_root)\s*=", block):
            header, _, rest = block.partition("\n")
            block = f"{header}\nallow_root = yes\n{rest}"
        out.append(block)
    return "".join(out)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout * SLOW
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout * SLOW}s waiting for {what}")


def live_pids_where(field, value):
    """Pids of live (not zombie) processes whose /proc/PID/stat field
    (counted after the command name: 1 is the ppid, 2 the process group)
    equals value."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[field]) == value and fields[0] != "Z":
            found.append(int(entry))
    return sorted(found)


def child_pids(parent):
    return live_pids_where(1, parent)


def group_members(pgid):
    return live_pids_where(2, pgid)


def connect(port, timeout=5):
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout * SLOW)
    sock.settimeout(timeout * SLOW)
    return sock


def echo_once(port, text=b"hi\n"):
    with connect(port) as sock:
        sock.sendall(text)
        received = b""
        while not received.endswith(b"\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            received += chunk
        return received


def port_is_listening(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


class Corrald:
    """One corrald with its own scratch folder, config and log."""

    def __init__(self, services, corral_extra="", files=None):
        self.dir = tempfile.mkdtemp(prefix="corral-it-")
        self.conf = os.path.join(self.dir, "corral.conf")
        os.makedirs(os.path.join(self.dir, "conf.d"))
        with open(self.conf, "w") as f:
            f.write(f"[corral]\nbase_dir = run\n{corral_extra}\n")
        for name, body in (files or {}).items():
            with open(os.path.join(self.dir, "conf.d", name), "w") as f:
                f.write(textwrap.dedent(body))
        with open(os.path.join(self.dir, "conf.d", "50-test.conf"), "w") as f:
            f.write(allow_root_where_unset(textwrap.dedent(services)))
        self.log_path = os.path.join(self.dir, "corrald.log")
        self.proc = None
        self.prefix = []  # a command corrald runs under, e.g. setpriv

    def start(self, wait_ready=True):
        env = dict(os.environ)
        env["CORRAL_POLICY_PATH"] = FIXTURE_POLICY_DIR
        self.log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.prefix + WRAPPER + [CORRALD, "-F", "-c", self.conf],
                                     stdout=self.log_file, stderr=subprocess.STDOUT,
                                     env=env, start_new_session=True)
        if wait_ready:
            self.wait_log(r"corrald v\S+ starting up", 10)
        return self

    def run_to_exit(self, timeout=10):
        """Starts corrald and expects it to exit on its own (bad config)."""
        self.start(wait_ready=False)
        code = self.proc.wait(timeout * SLOW)
        return code, self.log()

    def status(self, *args):
        """corralctl --json ARGS, parsed."""
        out = subprocess.run([CORRALCTL, "-c", self.conf, "--json", *args], capture_output=True,
                             text=True, timeout=30 * SLOW)
        if out.returncode != 0:
            raise AssertionError(f"corralctl {args} failed ({out.returncode}): {out.stderr}")
        return json.loads(out.stdout)

    def metrics_text(self):
        """corralctl metrics: the Prometheus text."""
        out = subprocess.run([CORRALCTL, "-c", self.conf, "metrics"], capture_output=True,
                             text=True, timeout=30 * SLOW)
        if out.returncode != 0:
            raise AssertionError(f"corralctl metrics failed ({out.returncode}): {out.stderr}")
        return out.stdout

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def wait_log(self, pattern, timeout, count=1):
        regex = re.compile(pattern)

        def found():
            matches = regex.findall(self.log())
            return matches if len(matches) >= count else None
        return wait_until(found, timeout, f"log /{pattern}/ x{count}\n--- log ---\n{self.log()}")

    def log_count(self, pattern):
        return len(re.findall(pattern, self.log()))

    def children(self):
        return child_pids(self.proc.pid)

    def wait_children(self, count, timeout=10):
        return wait_until(lambda: self.children() if len(self.children()) == count else None,
                          timeout, f"{count} children (have {len(self.children())})")

    def stop(self, timeout=15):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout * SLOW)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def close(self):
        """Stops corrald; a non-zero exit (a sanitizer or valgrind report,
        a crash) fails the test that started it."""
        # Workers lead process groups of their own: note them while
        # corrald is still their parent, to clean up after it below.
        groups = self.children() if self.proc is not None else []
        try:
            # Judge only a corrald that was still running for us to stop;
            # one that a test killed or saw exit has been judged there.
            if self.proc is not None and self.proc.poll() is None:
                code = self.stop()
                if code != 0:
                    raise AssertionError(f"corrald exited with {code}\n--- log ---\n{self.log()}")
        finally:
            if self.proc is not None:
                # Leftover workers of this test must not outlive it.
                for group in [self.proc.pid] + groups:
                    try:
                        os.killpg(group, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
            if hasattr(self, "log_file"):
                self.log_file.close()


class CorraldTestCase(unittest.TestCase):
    def corrald(self, services, **kwargs):
        daemon = Corrald(services, **kwargs)
        self.addCleanup(daemon.close)
        return daemon

    def assert_valgrind_clean(self, daemon):
        if WRAPPER:
            self.assertNotIn("definitely lost", daemon.log().replace(
                "definitely lost: 0 bytes", ""))
