# SPDX-License-Identifier: MIT
"""corrald as the reaper of a container: PID 1 of a PID namespace, or a
child subreaper.  Orphans that workers leave behind are handed to corrald;
it must reap every one (no zombies) without an error line for each."""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
from unittest import mock

from harness import ECHO_WORKER, SANITIZED, CorraldTestCase, free_port, wait_until

ORPHANS_PER_WORKER = 3
WORKERS = 2

# Makes itself a child subreaper (PR_SET_CHILD_SUBREAPER, 36), which
# execve keeps, then runs corrald: orphans below it come to corrald as they
# would to PID 1, without a namespace or root.
SUBREAPER = ("import ctypes, os, sys\n"
             "if ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) != 0:\n"
             "    sys.exit('prctl(PR_SET_CHILD_SUBREAPER) failed')\n"
             "os.execvp(sys.argv[1], sys.argv[1:])\n")


def proc_stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2:].split()
    return stat[stat.index("(") + 1:stat.rindex(")")], fields[0], int(fields[1])


def children_of(parent):
    """(pid, command name, state) of every child of parent, zombies too."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                name, state, ppid = proc_stat(entry)
            except (OSError, ValueError):
                continue
            if ppid == parent:
                found.append((int(entry), name, state))
    return found


class AdoptedOrphans(CorraldTestCase):
    def setUp(self):
        self.scratch = tempfile.mkdtemp(prefix="corral-orphans-")
        self.addCleanup(shutil.rmtree, self.scratch, True)
        # Each worker leaves orphans: a subshell that exits at once, whose
        # background sleep goes to the nearest reaper.  The sleeps close
        # the worker's descriptors so that they hold no listener.
        self.worker = os.path.join(self.scratch, "orphaning-worker")
        with open(self.worker, "w") as f:
            f.write("#!/bin/sh\n"
                    f"for i in {' '.join(str(i) for i in range(ORPHANS_PER_WORKER))}; do\n"
                    "    ( sleep 0.2 </dev/null >/dev/null 2>&1 3>&- 4>&- 5>&- 6>&- 7>&- & )\n"
                    "done\n"
                    f'exec {ECHO_WORKER} "$@"\n')
        os.chmod(self.worker, 0o755)
        self.port = free_port()

    def start(self, prefix):
        daemon = self.corrald(f"""
            [service echo]
            executable = {self.worker}
            inet_listener = 127.0.0.1:{self.port}
            process_min_avail = {WORKERS}
            """ + ("vsz_limit = 0\n" if SANITIZED else ""))
        daemon.prefix = prefix
        return daemon.start()

    def assert_serves(self):
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as client:
            client.sendall(b"hi\n")
            self.assertEqual(client.recv(16), b"hi\n")

    def wait_orphans_reaped(self, reaper, daemon):
        """Every worker is up and no sleep is left, dead or alive, under
        the reaper: each orphan was adopted and reaped."""
        def settled():
            children = children_of(reaper)
            workers = [c for c in children if c[1] != "sleep"]
            leftovers = [c for c in children if c[1] == "sleep" or c[2] == "Z"]
            return len(workers) == WORKERS and not leftovers
        wait_until(settled, 10, f"{WORKERS} workers and no orphans under {reaper}: "
                                f"{children_of(reaper)}\n--- log ---\n{daemon.log()}")

    def assert_quiet(self, daemon):
        log = daemon.log()
        self.assertNotIn("unknown PID", log)
        self.assertNotRegex(log, r"Error|Fatal|orphan")

    def test_a_subreaper_reaps_adopted_orphans_quietly(self):
        daemon = self.start([sys.executable, "-c", SUBREAPER])
        self.wait_orphans_reaped(daemon.proc.pid, daemon)
        self.assert_serves()
        self.assert_quiet(daemon)

    def test_debug_names_orphans_at_most_once_a_second(self):
        started = time.monotonic()
        with mock.patch.dict(os.environ, {"CORRAL_DEBUG": "1"}):
            daemon = self.start([sys.executable, "-c", SUBREAPER])
        self.wait_orphans_reaped(daemon.proc.pid, daemon)
        # The line follows the waitpid() that removed the zombie.
        daemon.wait_log(r"Debug: reaped PID \d+, an adopted orphan", 10)
        lines = re.findall(r"Debug: reaped PID \d+, an adopted orphan \((\d+) reaped so far\)",
                           daemon.log())
        elapsed = time.monotonic() - started
        self.assertGreaterEqual(len(lines), 1, daemon.log())
        self.assertEqual(lines[0], "1")
        self.assertLessEqual(len(lines), 1 + int(elapsed), daemon.log())
        self.assertNotIn("unknown PID", daemon.log())

    @unittest.skipIf(os.geteuid() != 0, "a PID namespace needs root")
    @unittest.skipIf(shutil.which("unshare") is None, "unshare is not installed")
    def test_pid_1_of_a_namespace_reaps_adopted_orphans_quietly(self):
        daemon = self.start(["unshare", "--pid", "--fork", "--kill-child"])
        corrald = wait_until(lambda: [c[0] for c in children_of(daemon.proc.pid)], 10,
                             "corrald under unshare")[0]
        with open(f"/proc/{corrald}/status") as f:
            self.assertRegex(f.read(), r"(?m)^NSpid:\s+\d+\s+1$")
        self.wait_orphans_reaped(corrald, daemon)
        self.assert_serves()
        self.assert_quiet(daemon)
        # unshare waits for corrald and exits with its status.
        os.kill(corrald, signal.SIGTERM)
        self.assertEqual(daemon.proc.wait(30), 0, daemon.log())


if __name__ == "__main__":
    unittest.main()
