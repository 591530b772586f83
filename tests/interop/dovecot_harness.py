# SPDX-License-Identifier: MIT
"""Runs Debian's real Dovecot 2.3.19.1 master, and corrald, side by side.

A scenario describes its services once (`Service`); the same description
becomes a Dovecot `service { }` block and a corrald `[service]` group.
Each master runs in a scratch folder of its own, in its own session, with
`protocols = none` so that Dovecot opens nothing but the test's loopback
listeners.

`Recorder` samples, every 100 ms, how many processes of each service are
children of the master (recognised by executable, arguments and the
SERVICE_NAME in their environment, so Dovecot's own anvil, log, config and
stats children never count), and
stamps each new log line with the time it was first seen.  `Probe` is one
client connection that records when it was answered or closed.  Timings
are taken from these, never from Dovecot's log timestamps (its log
process can hold a child's first lines back, and it stamps whole seconds).

Every wait is bounded and polls a real event.  Each master is stopped, and
its process group killed, when the test that started it ends.
"""
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import harness  # noqa: E402  (after the path is set)
from harness import (ECHO_WORKER, FIXTURE_WORKER, SANITIZED, SLOW,  # noqa: E402,F401
                     free_port, port_is_listening, wait_until)  # re-exported to the tests

DOVECOT = os.environ.get("CORRAL_DOVECOT", "/usr/sbin/dovecot")
DOVEADM = os.environ.get("CORRAL_DOVEADM", "/usr/bin/doveadm")
FOREIGN_WORKER = os.path.join(HERE, "foreign_worker.py")
PYTHON = os.path.realpath(sys.executable)
SAMPLE_SECS = 0.1


def dovecot_problem():
    """Why real Dovecot cannot be run here, or None."""
    for path in (DOVECOT, DOVEADM):
        if not os.access(path, os.X_OK):
            return (f"{path} not found: the interop suite needs Debian's dovecot-core "
                    "2.3.19.1 (scripts/deps.sh installs it)")
    try:
        version = subprocess.run([DOVECOT, "--version"], capture_output=True, text=True,
                                 timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"{DOVECOT} --version failed: {e}"
    if not version.startswith("2.3.19.1"):
        return f"{DOVECOT} is version {version!r}; the oracle must be 2.3.19.1"
    if os.geteuid() != 0:
        return "the interop suite runs Dovecot's master, which must be started as root"
    return None


# ---------------------------------------------------------------------------
# One service, described once for both masters.

class Service:
    """A service as both masters should run it.

    `argv` is the command line (first word an absolute path).  Numbers left
    at 0 take each master's default, which is the same in both."""

    def __init__(self, name, argv, port=None, type="", process_min_avail=0, process_limit=0,
                 client_limit=0, service_count=0, idle_kill=None):
        self.name = name
        self.argv = list(argv)
        self.port = port
        self.type = type
        self.process_min_avail = process_min_avail
        self.process_limit = process_limit
        self.client_limit = client_limit
        self.service_count = service_count
        self.idle_kill = idle_kill
        self.exe = os.path.realpath(self.argv[0])

    def _settings(self):
        settings = {}
        if self.type:
            settings["type"] = self.type
        for key in ("process_min_avail", "process_limit", "client_limit", "service_count"):
            if getattr(self, key):
                settings[key] = getattr(self, key)
        if self.idle_kill is not None:
            settings["idle_kill"] = self.idle_kill
        if SANITIZED:
            # Sanitized workers reserve terabytes of address space.
            settings["vsz_limit"] = 0
        return settings

    def dovecot_block(self):
        lines = [f"service {self.name} {{", f"  executable = {' '.join(self.argv)}"]
        lines += [f"  {k} = {v}" for k, v in self._settings().items()]
        if self.port:
            lines += [f"  inet_listener {self.name} {{", "    address = 127.0.0.1",
                      f"    port = {self.port}", "  }"]
        lines.append("}")
        return "\n".join(lines) + "\n"

    def corral_block(self):
        lines = [f"[service {self.name}]", f"executable = {' '.join(self.argv)}"]
        lines += [f"{k} = {v}" for k, v in self._settings().items()]
        if self.port:
            lines.append(f"inet_listener = 127.0.0.1:{self.port}")
        return "\n".join(lines) + "\n"

    def matches(self, exe, cmdline, service_name):
        """Whether a process is one of this service's: same executable and
        arguments (Dovecot rewrites argv[0] into a process title), and the
        SERVICE_NAME both masters put in its environment."""
        return exe == self.exe and cmdline[1:] == self.argv[1:] and service_name == self.name


def echo_service(name, port, **keys):
    return Service(name, [ECHO_WORKER], port, **keys)


def fixture_service(name, port, mode, **keys):
    return Service(name, [FIXTURE_WORKER] + mode.split(), port, **keys)


def foreign_service(name, port, events=None, login=False, **keys):
    argv = [PYTHON, FOREIGN_WORKER]
    if login:
        argv.append("--login")
    if events:
        argv += ["--events", events]
    return Service(name, argv, port, **keys)


# ---------------------------------------------------------------------------
# Processes and logs.

def _proc_facts(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        fields = stat[stat.rindex(")") + 2:].split()
        exe = os.readlink(f"/proc/{pid}/exe")
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = [w.decode(errors="replace") for w in f.read().split(b"\0")[:-1]]
    except (OSError, ValueError):
        return None
    return int(fields[1]), fields[0], exe, cmdline


def _service_name(pid):
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            for item in f.read().split(b"\0"):
                if item.startswith(b"SERVICE_NAME="):
                    return item[13:].decode(errors="replace")
    except OSError:
        pass
    return None


def service_processes(parent, services):
    """{service name: sorted pids} of the live children of `parent`."""
    found = {svc.name: [] for svc in services}
    exes = {svc.exe for svc in services}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        facts = _proc_facts(entry)
        if facts is None:
            continue
        ppid, state, exe, cmdline = facts
        if ppid != parent or state == "Z" or exe not in exes:
            continue
        name = _service_name(entry)
        for svc in services:
            if svc.matches(exe, cmdline, name):
                found[svc.name].append(int(entry))
                break
    return {name: sorted(pids) for name, pids in found.items()}


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def _tcp_states():
    """{socket inode: TCP state} of every IPv4 and IPv6 TCP socket."""
    states = {}
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    states[fields[9]] = fields[3]
        except OSError:
            pass
    return states


def _socket_fds(pid, state):
    """The descriptors of process `pid` that are TCP sockets in `state`."""
    states = _tcp_states()
    fds = []
    try:
        for entry in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{entry}")
            except OSError:
                continue
            if target.startswith("socket:[") and states.get(target[8:-1]) == state:
                fds.append(int(entry))
    except OSError:
        pass
    return sorted(fds)


def listener_fds(pid):
    """The listening TCP sockets process `pid` holds."""
    return _socket_fds(pid, "0A")


def client_fds(pid):
    """The connected TCP sockets process `pid` holds."""
    return _socket_fds(pid, "01")


_DOVECOT_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (?P<rest>.*)$")
_DOVECOT_MASTER = re.compile(r"^master: (?P<level>\w+): (?P<text>.*)$")
# Exit texts the master hands to the log process: "<svc>: Fatal: master: ..."
_DOVECOT_RELAYED = re.compile(r"^(?P<svc>[\w.-]+): Fatal: master: (?P<text>service\(.*)$")
_DOVECOT_CHILD = re.compile(r"^(?P<svc>[\w.-]+): (?P<level>\w+): (?P<text>.*)$")
_CORRAL_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} [+-]\d{4} (?P<level>\w+): "
                          r"(?P<text>.*)$")
_CORRAL_CHILD = re.compile(r"^(?P<svc>[\w.-]+)(\(\d+\))?: (?P<text>.*)$")

MASTER_LINES = ("Killed with signal", "SIGHUP received", "Sent SIGTERM to", "Sent SIGKILL to",
                "Processes aren't dying")


def _mask_pids(text):
    text = re.sub(r"\bchild \d+", "child N", text)
    text = re.sub(r"\bProcess \d+ ", "Process N ", text)
    text = re.sub(r"\bpid=\d+", "pid=N", text)
    text = re.sub(r"\(UID=\d+\)", "(UID=N)", text)
    return text


class LogEvent:
    """One log line, normalized so that the two masters' lines compare.

    kind: "monitor" (a service(...) line or a master line from
    MASTER_LINES), "master" (any other line of the master itself) or
    "child" (relayed from a worker's stderr)."""

    def __init__(self, seen, kind, level, text, raw, relayed=False):
        self.seen = seen
        self.kind = kind
        self.level = level
        self.text = text
        self.raw = raw
        self.relayed = relayed

    @property
    def key(self):
        return f"{self.level}: {self.text}"

    def __repr__(self):
        return f"<{self.seen:.2f} {self.kind} {self.key}>"


def _master_event(seen, level, text, raw, relayed=False):
    text = _mask_pids(text)
    kind = "monitor" if text.startswith("service(") or text.startswith(MASTER_LINES) else "master"
    return LogEvent(seen, kind, level, text, raw, relayed)


def parse_dovecot_line(line, seen=0.0):
    m = _DOVECOT_LINE.match(line)
    if not m:
        return LogEvent(seen, "child", "Error", line, line)
    rest = m.group("rest")
    m = _DOVECOT_MASTER.match(rest)
    if m:
        return _master_event(seen, m.group("level"), m.group("text"), line)
    m = _DOVECOT_RELAYED.match(rest)
    if m:
        # corrald logs exit texts itself at Error level (no log process):
        # compare them at that level.
        return _master_event(seen, "Error", m.group("text"), line, relayed=True)
    m = _DOVECOT_CHILD.match(rest)
    if m:
        return LogEvent(seen, "child", m.group("level"), f"{m.group('svc')}: {m.group('text')}",
                        line)
    return LogEvent(seen, "child", "Error", rest, line)


def parse_corral_line(line, seen=0.0):
    m = _CORRAL_LINE.match(line)
    if not m:
        return LogEvent(seen, "child", "Error", line, line)
    level, text = m.group("level"), m.group("text")
    if text.startswith("service(") or text.startswith(MASTER_LINES):
        return _master_event(seen, level, text, line)
    m = _CORRAL_CHILD.match(text)
    if m and not text.startswith(("corrald ", "SIGUSR1 ")) and m.group(2) is not None:
        return LogEvent(seen, "child", level, f"{m.group('svc')}: {m.group('text')}", line)
    return _master_event(seen, level, text, line)


class Recorder(threading.Thread):
    """Samples service process counts and new log lines every 100 ms."""

    def __init__(self, master):
        super().__init__(daemon=True)
        self.master = master
        self.samples = []        # (monotonic time, {service: count})
        self.events = []         # LogEvent, in order seen
        self.halt = threading.Event()
        self._offset = 0
        self._partial = b""
        self.lock = threading.Lock()
        self.poll_lock = threading.Lock()

    def poll_once(self):
        with self.poll_lock:
            self._poll()

    def _poll(self):
        counted = time.monotonic()
        counts = {name: len(pids) for name, pids in
                  service_processes(self.master.pid, self.master.services).items()}
        new = []
        try:
            with open(self.master.log_path, "rb") as f:
                f.seek(self._offset)
                data = f.read()
        except OSError:
            data = b""
        # A line is stamped after it was read: never before it was written.
        now = time.monotonic()
        self._offset += len(data)
        data = self._partial + data
        *lines, self._partial = data.split(b"\n")
        for line in lines:
            new.append(self.master.parse_line(line.decode(errors="replace"), now))
        with self.lock:
            self.samples.append((counted, counts))
            self.events.extend(new)

    def run(self):
        while not self.halt.is_set():
            self.poll_once()
            self.halt.wait(SAMPLE_SECS)

    def stop(self):
        self.halt.set()
        if self.is_alive():
            self.join(5)
        self.poll_once()

    # -- queries -------------------------------------------------------

    def count_series(self, service, since=0.0):
        with self.lock:
            return [(t - since, c[service]) for t, c in self.samples if t >= since]

    def monitor_events(self, since=0.0):
        """The monitor lines seen so far, including any written just now."""
        self.poll_once()
        with self.lock:
            return [e for e in self.events if e.kind == "monitor" and e.seen >= since]

    def wait_event(self, pattern, timeout, count=1, since=0.0):
        regex = re.compile(pattern)

        def found():
            with self.lock:
                hits = [e for e in self.events if e.seen >= since and regex.search(e.key)]
            return hits if len(hits) >= count else None
        return wait_until(found, timeout, f"{self.master.kind}: log /{pattern}/ x{count}\n"
                          f"--- log ---\n{self.master.log()}")

    def wait_count(self, service, predicate, timeout, what):
        def check():
            with self.lock:
                if self.samples and predicate(self.samples[-1][1][service]):
                    return self.samples[-1]
            return None
        return wait_until(check, timeout, f"{self.master.kind}: {service} {what} (counts: "
                          f"{[c[service] for _, c in self.samples[-20:]]})")


def steps(series):
    """Collapses a sampled series [(t, n)] into its changes [(t, n)]."""
    out = []
    for t, n in series:
        if not out or out[-1][1] != n:
            out.append((t, n))
    return out


# ---------------------------------------------------------------------------
# The two masters, behind one interface.

class Master:
    kind = "?"

    def __init__(self, services):
        self.services = list(services)
        self.recorder = None
        self.started_at = None
        self.killed = False

    def service(self, name):
        return next(s for s in self.services if s.name == name)

    def pids(self, name):
        return service_processes(self.pid, self.services)[name]

    def record(self):
        self.recorder = Recorder(self)
        self.recorder.start()
        return self.recorder

    def wait_pids(self, name, predicate, timeout, what):
        def check():
            pids = self.pids(name)
            return pids if predicate(len(pids)) else None
        return wait_until(check, timeout, f"{self.kind}: {name} {what} (have {self.pids(name)})"
                          f"\n--- log ---\n{self.log()}")

    def doveadm(self, *args):
        """Runs Debian's doveadm against this master's control socket
        (<base_dir>/master), tab-separated; returns [row dict]."""
        out = subprocess.run([DOVEADM, "-c", self.doveadm_conf, "-f", "tab"] + list(args),
                             capture_output=True, text=True, timeout=10 * SLOW)
        if out.returncode != 0:
            raise AssertionError(f"{self.kind}: doveadm {' '.join(args)} failed "
                                 f"({out.returncode}): {out.stderr}")
        lines = out.stdout.splitlines()
        if not lines:
            return []
        header = lines[0].split("\t")
        return [dict(zip(header, line.split("\t"))) for line in lines[1:]]

    def process_status(self, name):
        """`doveadm process status NAME` as {pid: row}."""
        return {int(row["pid"]): row for row in self.doveadm("process", "status", name)}

    def service_status(self, name):
        """`doveadm service status NAME` as one row."""
        rows = [row for row in self.doveadm("service", "status", name) if row["name"] == name]
        return rows[0] if rows else None

    def wait_idle(self, timeout=5):
        """Waits until the master sleeps in its event loop (epoll or poll),
        i.e. has finished whatever the last event made it do."""
        def idle():
            try:
                with open(f"/proc/{self.pid}/wchan") as f:
                    return "poll" in f.read()
            except OSError:
                return False
        wait_until(idle, timeout, f"{self.kind} to wait in its event loop")

    def master_alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, signo):
        os.kill(self.pid, signo)

    def kill(self):
        """SIGKILLs the master alone; its children stay."""
        self.killed = True
        self.signal(signal.SIGKILL)
        self.proc.wait(10)

    def wait_exit(self, timeout):
        return self.proc.wait(timeout * SLOW)

    def _finish_recorder(self):
        if self.recorder is not None:
            self.recorder.stop()

    def _kill_group(self):
        """Nothing of this master may outlive the test: kill its whole
        process group and wait until the group is empty."""
        if self.proc is None:
            return
        pgid = self.proc.pid
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.proc.poll() is None:
            self.proc.wait(10)

        def group_empty():
            for entry in os.listdir("/proc"):
                if entry.isdigit():
                    try:
                        with open(f"/proc/{entry}/stat") as f:
                            stat = f.read()
                    except OSError:
                        continue
                    fields = stat[stat.rindex(")") + 2:].split()
                    if int(fields[2]) == pgid and fields[0] != "Z":
                        return False
            return True
        wait_until(group_empty, 10, f"process group {pgid} to be gone")


class DovecotMaster(Master):
    """Debian's /usr/sbin/dovecot -F with a generated configuration."""

    kind = "dovecot"
    _instances = 0
    _instances_lock = threading.Lock()

    def __init__(self, services, extra=""):
        super().__init__(services)
        with DovecotMaster._instances_lock:
            DovecotMaster._instances += 1
            serial = DovecotMaster._instances
        self.dir = tempfile.mkdtemp(prefix="corral-dv-")
        self.instance = f"corral-interop-{os.getpid()}-{serial}"
        self.conf = os.path.join(self.dir, "dovecot.conf")
        self.log_path = os.path.join(self.dir, "dovecot.log")
        self.stdout_path = os.path.join(self.dir, "stdout.txt")
        os.makedirs(os.path.join(self.dir, "run"))
        os.makedirs(os.path.join(self.dir, "state"))
        self.proc = None
        self.write_config(services, extra)

    def write_config(self, services, extra=""):
        self.services = list(services)
        d = self.dir
        text = (f"base_dir = {d}/run\nstate_dir = {d}/state\ninstance_name = {self.instance}\n"
                "protocols = none\nlisten = 127.0.0.1\nssl = no\n"
                f"log_path = {self.log_path}\ninfo_log_path = {self.log_path}\n"
                f"debug_log_path = {self.log_path}\n"
                'log_timestamp = "%Y-%m-%d %H:%M:%S "\n'
                "default_internal_user = dovecot\ndefault_internal_group = dovecot\n"
                "default_login_user = dovenull\n" + extra + "\n")
        text += "\n".join(svc.dovecot_block() for svc in self.services)
        with open(self.conf, "w") as f:
            f.write(text)

    @property
    def pid(self):
        return self.proc.pid

    def start(self):
        self.stdout = open(self.stdout_path, "wb")
        self.proc = subprocess.Popen([DOVECOT, "-F", "-c", self.conf], stdout=self.stdout,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        wait_until(lambda: "starting up" in self.log() or self.proc.poll() is not None, 15,
                   f"dovecot to start\n--- log ---\n{self.log()}")
        if self.proc.poll() is not None:
            raise AssertionError(f"dovecot exited with {self.proc.returncode}\n{self.log()}")
        self.started_at = time.monotonic()
        return self

    def log(self):
        text = ""
        for path in (self.log_path, self.stdout_path):
            try:
                with open(path, "rb") as f:
                    text += f.read().decode(errors="replace")
            except OSError:
                pass
        return text

    @staticmethod
    def parse_line(line, seen=0.0):
        return parse_dovecot_line(line, seen)

    @property
    def doveadm_conf(self):
        return self.conf

    def reload(self):
        self.signal(signal.SIGHUP)

    def stop(self, timeout=15):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.signal(signal.SIGTERM)
        return self.wait_exit(timeout)

    def close(self):
        try:
            self._finish_recorder()
            if self.master_alive():
                try:
                    self.stop()
                except subprocess.TimeoutExpired:
                    pass
        finally:
            self._kill_group()
            if hasattr(self, "stdout"):
                self.stdout.close()
            shutil.rmtree(self.dir, ignore_errors=True)


class CorralMaster(Master):
    """corrald -F with the dovecot policy, through the integration harness."""

    kind = "corrald"

    def __init__(self, services):
        super().__init__(services)
        self.daemon = harness.Corrald("\n".join(svc.corral_block() for svc in self.services))
        self.dir = self.daemon.dir
        self.log_path = self.daemon.log_path

    @property
    def proc(self):
        return self.daemon.proc

    @property
    def pid(self):
        return self.daemon.proc.pid

    def start(self):
        self.daemon.start()
        self.started_at = time.monotonic()
        return self

    def log(self):
        return self.daemon.log()

    @staticmethod
    def parse_line(line, seen=0.0):
        return parse_corral_line(line, seen)

    @property
    def doveadm_conf(self):
        """A dovecot.conf that only points doveadm at corrald's base_dir,
        where corrald serves Dovecot's master control protocol."""
        path = os.path.join(self.dir, "doveadm.conf")
        if not os.path.exists(path):
            with open(path, "w") as f:
                f.write(f"base_dir = {os.path.join(self.dir, 'run')}\n")
        return path

    def write_config(self, services, extra=""):
        """Rewrites the service file for a reload."""
        self.services = list(services)
        with open(os.path.join(self.dir, "conf.d", "50-test.conf"), "w") as f:
            f.write("\n".join(svc.corral_block() for svc in self.services))

    def reload(self):
        self.signal(signal.SIGHUP)

    def stop(self, timeout=15):
        return self.daemon.stop(timeout)

    def close(self):
        try:
            self._finish_recorder()
            if not self.killed:
                self.daemon.close()  # fails the test on a bad exit status
        finally:
            self._kill_group()
            if hasattr(self.daemon, "log_file"):
                self.daemon.log_file.close()
            shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------------------
# Clients.

class Probe(threading.Thread):
    """One client: connects, sends a line and waits for its echo.

    Records (monotonic) `connected`, then `answered` (the echo came back)
    or `closed` (EOF or reset before any answer).  With `hold`, an answered
    client stays connected until `release()` and then checks once more
    that it is still served (`still_served`), and when it saw the server
    close (`closed`)."""

    def __init__(self, port, text=b"ping\n", hold=False, timeout=25):
        super().__init__(daemon=True)
        self.port = port
        self.text = text
        self.hold = hold
        self.timeout = timeout * SLOW
        self.connected = self.answered = self.closed = None
        self.error = None
        self.still_served = None
        self.sock = None
        self._release = threading.Event()

    def _read_line(self):
        data = b""
        while not data.endswith(b"\n"):
            chunk = self.sock.recv(4096)
            if not chunk:
                return data, True
            data += chunk
        return data, False

    def run(self):
        try:
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)
            self.connected = time.monotonic()
            self.sock.settimeout(self.timeout)
            self.sock.sendall(self.text)
            data, eof = self._read_line()
            if eof:
                self.closed = time.monotonic()
                return
            if data != self.text:
                self.error = f"answer {data!r}"
            self.answered = time.monotonic()
            if self.hold:
                deadline = time.monotonic() + self.timeout
                while not self._release.is_set() and time.monotonic() < deadline:
                    readable, _, _ = select.select([self.sock], [], [], 0.05)
                    if readable and not self.sock.recv(4096, socket.MSG_PEEK):
                        self.closed = time.monotonic()
                        self.still_served = False
                        return
                self.sock.sendall(b"again\n")
                data, eof = self._read_line()
                self.still_served = data == b"again\n"
                if eof:
                    self.closed = time.monotonic()
        except (ConnectionResetError, BrokenPipeError):
            self.closed = time.monotonic()
        except OSError as e:
            self.error = repr(e)
        finally:
            if self.sock is not None:
                self.sock.close()

    def release(self):
        self._release.set()

    def outcome(self):
        if self.answered is not None:
            return "served"
        if self.closed is not None:
            return "dropped"
        return f"error: {self.error}" if self.error else "pending"


def probes(port, count, **kwargs):
    """Starts `count` clients one after the other, each once connected."""
    started = []
    for _ in range(count):
        p = Probe(port, **kwargs)
        p.start()
        wait_until(lambda: p.connected is not None or p.error is not None or
                   p.closed is not None, 10, "a client to connect")
        started.append(p)
    return started


class InteropTestCase(unittest.TestCase):
    """Starts masters whose cleanup is registered with the test."""

    def dovecot(self, services, extra=""):
        master = DovecotMaster(services, extra)
        self.addCleanup(master.close)
        return master

    def corral(self, services):
        master = CorralMaster(services)
        self.addCleanup(master.close)
        return master

    def master(self, kind, services):
        return self.dovecot(services) if kind == "dovecot" else self.corral(services)

    def scratch(self):
        """A folder for files the test's workers write; removed after."""
        path = tempfile.mkdtemp(prefix="corral-interop-")
        self.addCleanup(shutil.rmtree, path, True)
        return path


def report(name, **figures):
    """Prints measured figures for the suite's log."""
    parts = ", ".join(f"{k}={v}" for k, v in figures.items())
    sys.stderr.write(f"\nFIGURES {name}: {parts}\n")
    sys.stderr.flush()
