#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The policy SDK as an author meets it, from a staged install.

    test_sdk.py BUILD_DIR SOURCE_DIR

1. `meson install --destdir STAGE` of the build.
2. Configures and builds examples/policy-tutorial out of tree against the
   staged corral-policy.pc (PKG_CONFIG_LIBDIR at the staged folder,
   PKG_CONFIG_SYSROOT_DIR at STAGE), and installs it: policydir, adjusted
   by the sysroot, lands the plugin beside the staged dovecot.so.
3. Starts the corrald of the build tree with CORRAL_POLICY_PATH at the
   out-of-tree build and a service using the tutorial policy, and checks
   its log lines as a client comes and goes.
4. Checks that docs/policy-guide.md shows the example exactly as it is.

Every wait is bounded and polls a real event.
"""
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

BUILD = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else None
SOURCE = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else None
EXAMPLE = os.path.join(SOURCE or "", "examples", "policy-tutorial")
GUIDE = os.path.join(SOURCE or "", "docs", "policy-guide.md")


def run(args, env=None, cwd=None):
    result = subprocess.run(args, env=env, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, timeout=120)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}")
    return result.stdout


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_file(top, name):
    for folder, _, files in os.walk(top):
        if name in files:
            return os.path.join(folder, name)
    raise AssertionError(f"no {name} under {top}")


class StagedSdk(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.scratch = tempfile.mkdtemp(prefix="corral-sdk-")
        cls.stage = os.path.join(cls.scratch, "stage")
        cls.example_build = os.path.join(cls.scratch, "policy-tutorial")
        run(["meson", "install", "-C", BUILD, "--destdir", cls.stage, "--no-rebuild", "--quiet"])

        pc_file = find_file(cls.stage, "corral-policy.pc")
        cls.env = dict(os.environ)
        cls.env.pop("PKG_CONFIG_PATH", None)
        cls.env["PKG_CONFIG_LIBDIR"] = os.path.dirname(pc_file)
        cls.env["PKG_CONFIG_SYSROOT_DIR"] = cls.stage
        run(["meson", "setup", cls.example_build, EXAMPLE, "-Dwerror=true"], env=cls.env)
        run(["meson", "compile", "-C", cls.example_build], env=cls.env)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.scratch, ignore_errors=True)

    def pkg_config(self, *args):
        return run(["pkg-config", *args, "corral-policy"], env=self.env).strip()

    def test_pc_points_into_the_stage(self):
        header = os.path.join(self.pkg_config("--variable=includedir"), "corral", "policy.h")
        self.assertTrue(os.path.isfile(header), header)
        self.assertIn(f"-I{self.stage}/", self.pkg_config("--cflags"))
        policydir = self.pkg_config("--variable=policydir")
        self.assertTrue(policydir.startswith(self.stage + "/"), policydir)
        self.assertTrue(os.path.isfile(os.path.join(policydir, "dovecot.so")), policydir)

    def test_install_puts_the_plugin_in_policydir(self):
        run(["meson", "install", "-C", self.example_build, "--quiet"], env=self.env)
        policydir = self.pkg_config("--variable=policydir")
        self.assertTrue(os.path.isfile(os.path.join(policydir, "spare.so")))

    def test_only_the_entry_symbol_is_exported(self):
        plugin = os.path.join(self.example_build, "spare.so")
        symbols = run(["nm", "-D", "--defined-only", plugin]).split()
        self.assertIn("spare_LTX_corral_policy_entry", symbols)
        self.assertNotIn("spare_new", symbols)

    def test_corrald_runs_a_service_with_the_tutorial_policy(self):
        port = free_port()
        folder = os.path.join(self.scratch, "run-corrald")
        os.makedirs(folder)
        conf = os.path.join(folder, "corral.conf")
        with open(conf, "w") as f:
            f.write("[corral]\nbase_dir = run\n\n"
                    "[service tutorial]\n"
                    f"executable = {os.path.join(BUILD, 'examples', 'corral-echo-worker')}\n"
                    f"inet_listener = 127.0.0.1:{port}\n"
                    "policy = spare\nspare = 3\n"
                    "process_limit = 5\nclient_limit = 1\n"
                    # sanitizer builds reserve terabytes of address space
                    "vsz_limit = 0\n"
                    + ("allow_root = yes\n" if os.geteuid() == 0 else ""))
        env = dict(os.environ)
        env["CORRAL_POLICY_PATH"] = self.example_build
        log_path = os.path.join(folder, "corrald.log")
        with open(log_path, "wb") as log_file:
            corrald = subprocess.Popen([os.path.join(BUILD, "core", "corrald"), "-F", "-c", conf],
                                       stdout=log_file, stderr=subprocess.STDOUT, env=env,
                                       start_new_session=True)

        def log():
            with open(log_path, errors="replace") as f:
                return f.read()

        def logged(pattern):
            return wait_until(lambda: re.search(pattern, log()), 10,
                              f"/{pattern}/ in the log\n--- log ---\n{log()}")

        try:
            logged(r"Info: service\(tutorial\): spare: keeping 3 processes with a free slot")
            logged(r"Info: service\(tutorial\): spare: started 3, now 3 processes, "
                   r"3 with a free slot")
            with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
                client.sendall(b"hi\n")
                self.assertEqual(client.recv(16), b"hi\n", log())
                # The client holds a slot: a fourth process keeps three free.
                logged(r"spare: started 1, now 4 processes, 3 with a free slot")
        finally:
            corrald.send_signal(signal.SIGTERM)
            code = corrald.wait(30)
        self.assertEqual(code, 0, log())
        self.assertNotRegex(log(), r"Error|Fatal")


class GuideShowsTheExample(unittest.TestCase):
    def code_blocks(self, language):
        with open(GUIDE) as f:
            return re.findall(rf"```{language}\n(.*?)```", f.read(), re.S)

    def assert_shown(self, language, path):
        with open(path) as f:
            source = f.read()
        self.assertIn(source, self.code_blocks(language),
                      f"docs/policy-guide.md has no ```{language} block equal to {path}")

    def test_guide_shows_spare_c(self):
        self.assert_shown("c", os.path.join(EXAMPLE, "spare.c"))

    def test_guide_shows_meson_build(self):
        self.assert_shown("meson", os.path.join(EXAMPLE, "meson.build"))


if __name__ == "__main__":
    if BUILD is None or SOURCE is None:
        sys.exit("usage: test_sdk.py BUILD_DIR SOURCE_DIR")
    unittest.main(argv=[sys.argv[0], "-v"])
