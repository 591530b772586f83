# SPDX-License-Identifier: MIT
"""Privileges and limits, as root, with a real unprivileged user."""
import grp
import os
import pwd
import re
import shutil
import subprocess
import unittest

from harness import (ECHO_WORKER, FIXTURE_WORKER, SANITIZED, WRAPPER, CorraldTestCase,
                     echo_once, free_port, wait_until)

# valgrind keeps its own copy of a process's memory limits and runs the
# spawn's clone as a plain fork, so limits set before exec do not reach
# the kernel there.
LIMITS_REACH_KERNEL = not WRAPPER

TEST_USER = "corral-test"
EXTRA_GROUP = "corral-test-extra"


def ensure_account():
    """Creates the test user and an extra group once; both stay for reuse."""
    try:
        grp.getgrnam(EXTRA_GROUP)
    except KeyError:
        subprocess.run(["groupadd", "--system", EXTRA_GROUP], check=True)
    try:
        pwd.getpwnam(TEST_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        TEST_USER], check=True)
    return pwd.getpwnam(TEST_USER), grp.getgrnam(EXTRA_GROUP)


def has_facts(path):
    if not os.path.exists(path):
        return False
    with open(path) as f:
        return "root=" in f.read()


def read_facts(path):
    with open(path) as f:
        return dict(line.split("=", 1) for line in f.read().splitlines()
                    if "=" in line and not line.startswith("env "))


def world_writable_dir(daemon):
    out = os.path.join(daemon.dir, "out")
    os.makedirs(out)
    os.chmod(daemon.dir, 0o755)
    os.chmod(out, 0o777)
    return out


@unittest.skipUnless(os.geteuid() == 0, "privilege tests need root (CI runs them as root)")
class Privileges(CorraldTestCase):
    @classmethod
    def setUpClass(cls):
        cls.user, cls.extra = ensure_account()

    def test_user_group_and_extra_groups_are_applied_before_exec(self):
        port = free_port()
        probe = self.corrald("")
        out = os.path.join(world_writable_dir(probe), "facts.txt")
        d = self.corrald(f"[service priv]\nexecutable = {FIXTURE_WORKER} describe {out}\n"
                         f"inet_listener = 127.0.0.1:{port}\nprocess_min_avail = 1\n"
                         f"user = {TEST_USER}\nextra_groups = {EXTRA_GROUP}\n"
                         + ("vsz_limit = 0\n" if SANITIZED else "vsz_limit = 64M\n"))
        d.start()
        wait_until(lambda: has_facts(out), 10, "facts")
        facts = read_facts(out)
        self.assertEqual(int(facts["uid"]), self.user.pw_uid)
        self.assertEqual(int(facts["gid"]), self.user.pw_gid)
        self.assertEqual(facts["groups"], str(self.extra.gr_gid))
        if not SANITIZED and LIMITS_REACH_KERNEL:
            self.assertEqual(int(facts["rlimit_as"]), 64 << 20)
            self.assertEqual(int(facts["rlimit_data"]), 64 << 20)

    def test_service_running_as_root_is_refused_unless_allowed(self):
        d = self.corrald(f"[service rooted]\nexecutable = {ECHO_WORKER}\nuser = root\n")
        code, log = d.run_to_exit()
        self.assertEqual(code, 1)
        self.assertIn("[service rooted] user: the service would run as root", log)

    def test_unknown_user_is_a_clear_error(self):
        d = self.corrald(f"[service ghost]\nexecutable = {ECHO_WORKER}\n"
                         "user = no-such-user-here\n")
        code, log = d.run_to_exit()
        self.assertEqual(code, 1)
        self.assertIn("[service ghost] user: unknown user 'no-such-user-here'", log)

    def test_chroot_is_applied_before_exec(self):
        probe = self.corrald("")
        jail = os.path.join(probe.dir, "jail")
        os.makedirs(os.path.join(jail, "bin"))
        shutil.copy(FIXTURE_WORKER, os.path.join(jail, "bin", "fixture-worker"))
        # The dynamic loader and libraries the fixture needs, at their paths.
        for lib in re.findall(r"(/\S+\.so[.\d]*)", subprocess.run(
                ["ldd", FIXTURE_WORKER], capture_output=True, text=True).stdout):
            target = os.path.join(jail, lib.lstrip("/"))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copy(lib, target)
        os.makedirs(os.path.join(jail, "out"))
        os.chmod(os.path.join(jail, "out"), 0o777)
        os.chmod(probe.dir, 0o755)
        port = free_port()
        d = self.corrald(f"[service jailed]\nexecutable = /bin/fixture-worker describe "
                         f"/out/facts.txt\ninet_listener = 127.0.0.1:{port}\n"
                         f"process_min_avail = 1\nuser = {TEST_USER}\nchroot = {jail}\n"
                         "vsz_limit = 0\n")
        d.start()
        facts_path = os.path.join(jail, "out", "facts.txt")
        # "/out/facts.txt" can only land in the jail if "/" is the jail.
        wait_until(lambda: has_facts(facts_path), 10, "facts from inside the chroot")
        facts = read_facts(facts_path)
        self.assertEqual(int(facts["uid"]), self.user.pw_uid)
        self.assertFalse(os.path.exists("/out/facts.txt"))

    @unittest.skipIf(SANITIZED, "sanitized workers cannot run under a vsz_limit")
    @unittest.skipUnless(LIMITS_REACH_KERNEL, "limits are virtual under valgrind")
    def test_vsz_limit_stops_a_worker_that_grows_past_it(self):
        port = free_port()
        d = self.corrald(f"[service big]\nexecutable = {FIXTURE_WORKER} alloc 200\n"
                         f"inet_listener = 127.0.0.1:{port}\nprocess_min_avail = 1\n"
                         f"user = {TEST_USER}\nvsz_limit = 64M\n")
        d.start()
        d.wait_log(r"service\(big\): child \d+ returned error 83 \(Out of memory \(service big "
                   r"\{ vsz_limit=64 MB \}, you may need to increase it\) - set CORE_OUTOFMEM=1 "
                   r"environment to get core dump\)", 10)
        d.wait_log(r"service\(big\): command startup failed, throttling for 2\.000 secs", 10)

    @unittest.skipUnless(LIMITS_REACH_KERNEL, "limits are virtual under valgrind")
    @unittest.skipIf(SANITIZED, "sanitizer threads count against RLIMIT_NPROC")
    def test_low_process_limit_is_reported_and_spawn_failure_throttles(self):
        """corrald as an unprivileged user with RLIMIT_NPROC 4: it says the
        limit is too low, one service keeps serving, and the service that
        hits the limit gets a clear error and is throttled."""
        probe = self.corrald("")
        os.chmod(probe.dir, 0o1777)  # sticky: corrald trusts it for base_dir
        port_a, port_b = free_port(), free_port()
        d = self.corrald(
            f"[service steady]\nexecutable = {ECHO_WORKER}\ninet_listener = 127.0.0.1:{port_a}\n"
            "process_min_avail = 2\nprocess_limit = 2\n"
            f"[service greedy]\nexecutable = {ECHO_WORKER}\ninet_listener = 127.0.0.1:{port_b}\n"
            "process_min_avail = 5\nprocess_limit = 5\n" + ("vsz_limit = 0\n" if SANITIZED else ""),
            corral_extra=f"base_dir = {probe.dir}/run")
        for root, dirs, files in os.walk(d.dir):
            os.chmod(root, 0o777)
            for name in files:
                os.chmod(os.path.join(root, name), 0o666)
        d.prefix = ["setpriv", f"--reuid={self.user.pw_uid}", f"--regid={self.user.pw_gid}",
                    "--clear-groups", "prlimit", "--nproc=4:4"]
        d.start()
        d.wait_log(r"RLIMIT_NPROC is 4, below the 8 processes", 10)
        d.wait_log(r"service\(greedy\): clone\(\) failed for .*: Resource temporarily "
                   r"unavailable \(ulimit -u reached\?\)", 10)
        d.wait_log(r"service\(greedy\): command startup failed, throttling", 10)
        self.assertEqual(echo_once(port_a, b"steady\n"), b"steady\n")


if __name__ == "__main__":
    unittest.main()
