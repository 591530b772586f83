# SPDX-License-Identifier: MIT
"""Hostile workers and local users: each test performs one attack on a real
corrald and checks that it fails.  Attacks that need another user run as a
test user the test creates."""
import os
import pwd
import signal
import socket
import subprocess
import sys
import textwrap
import time
import unittest

from harness import (CORRALCTL, ECHO_WORKER, FIXTURE_WORKER, SANITIZED, CorraldTestCase,
                     echo_once, free_port, wait_until)

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


if __name__ == "__main__":
    unittest.main()
