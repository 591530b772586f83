# SPDX-License-Identifier: MIT
"""Faulty workers: each test fails if corrald's handling of it is removed."""
import os
import shutil
import signal
import time

from harness import (ECHO_WORKER, FIXTURE_WORKER, SANITIZED, WRAPPER, CorraldTestCase, connect,
                     echo_once, free_port, wait_until)

VSZ = "vsz_limit = 0\n" if SANITIZED else ""


def cmdline(pid):
    with open(f"/proc/{pid}/cmdline") as f:
        return f.read()


def master_cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class StartupFailures(CorraldTestCase):
    def test_startup_failure_throttles_2_4_8_and_recovers_once_fixed(self):
        port = free_port()
        probe = self.corrald("")
        script = os.path.join(probe.dir, "worker.sh")

        def install(command):
            with open(script + ".new", "w") as f:
                f.write(f"#!/bin/sh\nexec {command}\n")
            os.chmod(script + ".new", 0o755)
            os.rename(script + ".new", script)
        install(f"{FIXTURE_WORKER} exit-before-status 1")
        d = self.corrald(f"[service flaky]\nexecutable = {script}\n"
                         f"inet_listener = 127.0.0.1:{port}\nprocess_min_avail = 1\n{VSZ}")
        d.start()
        d.wait_log(r"throttling for 2\.000 secs", 10)
        # After a throttle only a connection starts a process again; each
        # such start fails and doubles the throttle.
        for secs in ("4.000", "8.000"):
            expected = d.log_count(r"command startup failed") + 1

            def retry():
                try:
                    with connect(port, timeout=2) as s:
                        s.settimeout(2)
                        s.recv(1)  # EOF: no process is left to serve it
                except OSError:
                    pass
                return d.log_count(r"command startup failed") >= expected
            wait_until(retry, 20, f"the next failed start ({secs} s throttle)")
            self.assertIn(f"throttling for {secs} secs", d.log())
        starts = d.log_count(r"service\(flaky\): child \d+ returned error 1")
        self.assertEqual(starts, 3)  # bounded: one start per throttle period
        install(ECHO_WORKER)

        def served():
            try:
                return echo_once(port, b"fixed\n") == b"fixed\n"
            except OSError:
                return False
        wait_until(served, 20, "the fixed executable to serve")

    def test_crash_loop_after_status_hits_storm_rule_and_master_stays_cheap(self):
        port = free_port()
        d = self.corrald(f"[service storm]\nexecutable = {FIXTURE_WORKER} status-then-exit 3\n"
                         f"inet_listener = 127.0.0.1:{port}\nprocess_min_avail = 1\n{VSZ}")
        d.start()
        d.wait_log(r"service\(storm\): command startup failed, throttling for 2\.000 secs", 10)
        cpu_before = master_cpu_seconds(d.proc.pid)
        wall_before = time.monotonic()
        # Connections keep retriggering spawns; throttles keep them rare.
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            try:
                with connect(port, timeout=1) as s:
                    s.recv(1)
            except OSError:
                pass
        cpu = master_cpu_seconds(d.proc.pid) - cpu_before
        wall = time.monotonic() - wall_before
        self.assertLess(cpu / wall, 0.25, f"corrald used {cpu:.2f}s CPU in {wall:.1f}s")
        self.assertGreaterEqual(d.log_count(r"service\(storm\): child \d+ returned error 3"), 11)


class SpawnFailures(CorraldTestCase):
    def test_missing_executable_is_logged_throttled_and_others_keep_serving(self):
        port_bad, port_good = free_port(), free_port()
        probe = self.corrald("")
        binary = os.path.join(probe.dir, "vanishing-worker")
        shutil.copy(FIXTURE_WORKER, binary)
        d = self.corrald(
            f"[service vanishing]\nexecutable = {binary} ignore-sigint\n"
            f"inet_listener = 127.0.0.1:{port_bad}\nprocess_min_avail = 1\n{VSZ}"
            f"[service good]\nexecutable = {ECHO_WORKER}\n"
            f"inet_listener = 127.0.0.1:{port_good}\nprocess_min_avail = 1\n{VSZ}")
        d.start()
        d.wait_log(r"starting up", 5)
        wait_until(lambda: len(d.children()) == 2, 10, "both services' workers")
        # Killed before its first status, the worker would throttle the
        # service, and no replacement would be asked for.
        wait_until(lambda: all(p["initialized"] for p in d.status("processes")["processes"]),
                   10, "both workers' first status")
        os.unlink(binary)
        # The worker dies; the policy asks for a replacement that cannot
        # start: a process all the same, which exits 84 (as under Dovecot).
        victim = [p for p in d.children() if "vanishing" in cmdline(p)]
        os.kill(victim[0], signal.SIGKILL)
        d.wait_log(r"service\(vanishing\): child \d+ returned error 84 \(exec\(\) failed\)", 10)
        if not WRAPPER:
            # Under valgrind the clone is a plain fork: the master does not
            # learn why the child exited.
            self.assertRegex(d.log(), r"Fatal: vanishing\(\d+\): execv\(.*vanishing-worker\) "
                                      r"failed: No such file or directory")
        d.wait_log(r"service\(vanishing\): command startup failed, throttling", 10)
        self.assertIsNone(d.proc.poll())
        self.assertEqual(echo_once(port_good, b"good\n"), b"good\n")


class StatusAccounting(CorraldTestCase):
    def test_process_ignoring_idle_sigint_is_counted_busy(self):
        port = free_port()
        d = self.corrald(f"[service deaf]\nexecutable = {FIXTURE_WORKER} ignore-sigint\n"
                         f"inet_listener = 127.0.0.1:{port}\ntype = startup\n"
                         f"process_min_avail = 0\nidle_kill = 1\nclient_limit = 3\n{VSZ}")
        d.start()
        pid = d.wait_children(1)[0]
        d.wait_log(rf"service\(deaf\): Process {pid} is ignoring idle SIGINT", 10)
        service = d.status("status")["services"][0]
        self.assertEqual(service["process_count"], 1)
        self.assertEqual(service["process_avail"], 0)
        process = next(p for p in d.status("processes")["processes"] if p["pid"] == pid)
        self.assertEqual(process["available_count"], 0)

    def test_forged_records_leave_the_counts_right(self):
        port = free_port()
        d = self.corrald(f"[service fx]\nexecutable = {FIXTURE_WORKER} forge\n"
                         f"inet_listener = 127.0.0.1:{port}\nprocess_min_avail = 1\n"
                         f"client_limit = 4\n{VSZ}")
        d.start()
        pid = d.wait_children(1)[0]
        d.wait_log(r"service sent partial status update \(5 bytes\)", 10)
        # The forged record claimed 7 free slots and the unknown pid 1;
        # only the valid record (client_limit, 4) may count.
        wait_until(lambda: any(p["pid"] == pid and p["last_status"]
                               for p in d.status("processes")["processes"]), 10,
                   "the valid record")
        service = d.status("status")["services"][0]
        self.assertEqual((service["process_count"], service["process_avail"]), (1, 1))
        process = next(p for p in d.status("processes")["processes"] if p["pid"] == pid)
        self.assertEqual(process["available_count"], 4)
