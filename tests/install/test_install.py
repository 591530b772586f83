#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""What `meson install` puts on a system, from a staged install.

    test_install.py BUILD_DIR SOURCE_DIR PREFIX

1. `meson install --destdir STAGE` of the build: the configuration in
   sysconfdir with base_dir in /run/corral and an empty conf.d/, the unit,
   corral-worker.pc, the worker library shared and static, an example
   worker that needs no shared library of ours, and no
   file that names the build or source folder.
2. The installed systemd units verify (`systemd-analyze verify`, with the
   programs pointed at the build's), the service's exposure is at most 5.0
   (`systemd-analyze security --offline=true`), and the sysusers.d and
   tmpfiles.d snippets apply to an empty root.
3. The build's corrald copied out of the build tree searches only the
   installed folders, while the same binary in the build tree also finds the
   build's plugins (core/build-tree.h).
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

BUILD = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else None
SOURCE = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else None
PREFIX = sys.argv[3] if len(sys.argv) > 3 else None


def run(args, **kwargs):
    kwargs.setdefault("timeout", 120)
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          **kwargs)


def find_file(top, name):
    for folder, _, files in os.walk(top):
        if name in files:
            return os.path.join(folder, name)
    raise AssertionError(f"no {name} under {top}")


class StagedInstall(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.scratch = tempfile.mkdtemp(prefix="corral-install-")
        cls.stage = os.path.join(cls.scratch, "stage")
        out = run(["meson", "install", "-C", BUILD, "--destdir", cls.stage, "--no-rebuild",
                   "--quiet"])
        if out.returncode != 0:
            raise AssertionError(out.stdout)
        cls.root = cls.stage + PREFIX

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.scratch, ignore_errors=True)

    def test_configuration_is_installed_with_an_empty_conf_d(self):
        conf = find_file(self.stage, "corral.conf")
        with open(conf) as f:
            self.assertRegex(f.read(), r"(?m)^base_dir = /run/corral$")
        conf_d = os.path.join(os.path.dirname(conf), "conf.d")
        self.assertTrue(os.path.isdir(conf_d), conf_d)
        self.assertEqual(os.listdir(conf_d), [])

    def test_unit_names_the_installed_paths(self):
        with open(find_file(self.stage, "corrald.service")) as f:
            unit = f.read()
        self.assertIn(f"ExecStart={PREFIX}/sbin/corrald -F -c ", unit)
        self.assertIn("RuntimeDirectory=corral", unit)

    def test_worker_pc_links_the_library(self):
        pc = find_file(self.stage, "corral-worker.pc")
        env = dict(os.environ, PKG_CONFIG_LIBDIR=os.path.dirname(pc),
                   PKG_CONFIG_SYSROOT_DIR=self.stage)
        out = run(["pkg-config", "--libs", "--cflags", "corral-worker"], env=env)
        self.assertEqual(out.returncode, 0, out.stdout)
        self.assertIn("-lcorral-worker", out.stdout)
        libdir = out.stdout.split("-L", 1)[1].split()[0]
        self.assertTrue(os.path.isfile(os.path.join(libdir, "libcorral-worker.so.0")), libdir)

    def test_example_worker_runs_without_the_shared_library(self):
        worker = find_file(self.stage, "corral-echo-worker")
        dynamic = run(["readelf", "-d", worker]).stdout
        self.assertIn("libc.so", dynamic)
        self.assertNotIn("libcorral-worker", dynamic)

    def test_shared_and_static_worker_library_are_installed(self):
        shared = find_file(self.stage, "libcorral-worker.so.0")
        self.assertIn("SONAME", run(["readelf", "-d", shared]).stdout)
        self.assertIn("Library soname: [libcorral-worker.so.0]", run(["readelf", "-d", shared]).stdout)
        find_file(self.stage, "libcorral-worker.a")

    def test_no_installed_file_names_the_build_or_source_folder(self):
        found = []
        for folder, _, files in os.walk(self.stage):
            for name in files:
                path = os.path.join(folder, name)
                with open(path, "rb") as f:
                    data = f.read()
                for tree in (BUILD, SOURCE):
                    if tree.encode() in data:
                        found.append(f"{path} names {tree}")
        self.assertEqual(found, [])


@unittest.skipIf(shutil.which("systemd-analyze") is None, "systemd-analyze is not installed")
class SystemdFiles(unittest.TestCase):
    MAX_EXPOSURE = 5.0

    @classmethod
    def setUpClass(cls):
        cls.scratch = tempfile.mkdtemp(prefix="corral-units-")
        cls.stage = os.path.join(cls.scratch, "stage")
        out = run(["meson", "install", "-C", BUILD, "--destdir", cls.stage, "--no-rebuild",
                   "--quiet"])
        if out.returncode != 0:
            raise AssertionError(out.stdout)
        # verify wants the programs to exist: point the unit at the build's.
        with open(find_file(cls.stage, "corrald.service")) as f:
            unit = f.read()
        unit = unit.replace(f"{PREFIX}/sbin/corrald", os.path.join(BUILD, "core", "corrald"))
        unit = unit.replace(f"{PREFIX}/bin/corralctl", os.path.join(BUILD, "core", "corralctl"))
        cls.units = os.path.join(cls.scratch, "units")
        os.makedirs(cls.units)
        cls.service = os.path.join(cls.units, "corrald.service")
        with open(cls.service, "w") as f:
            f.write(unit)
        shutil.copy(find_file(cls.stage, "corrald.socket"), cls.units)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.scratch, ignore_errors=True)

    def test_units_verify(self):
        out = run(["systemd-analyze", "verify", "--man=no", self.service,
                   os.path.join(self.units, "corrald.socket")])
        self.assertEqual(out.returncode, 0, out.stdout)
        self.assertEqual(out.stdout.strip(), "")

    def test_service_exposure_is_low(self):
        out = run(["systemd-analyze", "security", "--offline=true", "--no-pager", self.service])
        found = re.search(r"Overall exposure level for corrald\.service: (\d+\.\d+)", out.stdout)
        self.assertIsNotNone(found, out.stdout)
        self.assertLessEqual(float(found.group(1)), self.MAX_EXPOSURE, out.stdout)

    def test_service_keeps_type_notify_runtime_directory_and_config_test(self):
        with open(self.service) as f:
            unit = f.read()
        self.assertRegex(unit, r"(?m)^Type=notify$")
        self.assertRegex(unit, r"(?m)^RuntimeDirectory=corral$")
        self.assertRegex(unit, r"(?m)^ExecStartPre=\S+/corrald -t -c \S+/corral\.conf$")

    def test_sysusers_and_tmpfiles_apply(self):
        root = os.path.join(self.scratch, "root")
        os.makedirs(os.path.join(root, "etc"))
        for name in ("passwd", "group"):
            open(os.path.join(root, "etc", name), "w").close()
        out = run(["systemd-sysusers", f"--root={root}", self.snippet("sysusers.d")])
        self.assertEqual(out.returncode, 0, out.stdout)
        with open(os.path.join(root, "etc", "passwd")) as f:
            self.assertRegex(f.read(), r"(?m)^corral:x:\d+:\d+:")
        out = run(["systemd-tmpfiles", f"--root={root}", "--create", self.snippet("tmpfiles.d")])
        self.assertEqual(out.returncode, 0, out.stdout)
        self.assertTrue(os.path.isdir(os.path.join(root, "run", "corral")))

    def snippet(self, folder):
        for top, _, files in os.walk(self.stage):
            if os.path.basename(top) == folder and "corral.conf" in files:
                return os.path.join(top, "corral.conf")
        raise AssertionError(f"no {folder}/corral.conf under {self.stage}")


class BuildTreeSearch(unittest.TestCase):
    """Only a corrald inside its build folder looks in it for plugins."""

    def setUp(self):
        self.scratch = tempfile.mkdtemp(prefix="corral-buildtree-")
        self.conf = os.path.join(self.scratch, "corral.conf")
        with open(self.conf, "w") as f:
            f.write("[corral]\nbase_dir = run\n\n[service e]\nexecutable = /bin/true\n"
                    "inet_listener = 127.0.0.1:0\npolicy = nosuch\nallow_root = yes\n")

    def tearDown(self):
        shutil.rmtree(self.scratch, ignore_errors=True)

    def search_path(self, corrald):
        """The plugin folders corrald searched for a policy that is nowhere:
        the fatal error lists them before any listener opens."""
        out = run([corrald, "-F", "-c", self.conf], timeout=30)
        self.assertEqual(out.returncode, 1, out.stdout)
        found = re.search(r"policy 'nosuch': no nosuch\.so in (\S+)", out.stdout)
        self.assertIsNotNone(found, out.stdout)
        return found.group(1).split(":")

    def test_corrald_in_the_build_tree_searches_its_plugins(self):
        path = self.search_path(os.path.join(BUILD, "core", "corrald"))
        self.assertIn(os.path.join(BUILD, "plugins"), path)

    def test_a_copy_outside_the_build_tree_does_not_search_it(self):
        copy = os.path.join(self.scratch, "corrald")
        shutil.copy2(os.path.join(BUILD, "core", "corrald"), copy)
        path = self.search_path(copy)
        self.assertTrue(path, path)
        self.assertFalse([d for d in path if d.startswith(BUILD)], path)

    def test_a_marker_owned_by_someone_else_is_ignored(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to give the marker to another user")
        tree = os.path.join(self.scratch, "tree")
        os.makedirs(os.path.join(tree, "core"))
        os.makedirs(os.path.join(tree, "plugins"))
        copy = os.path.join(tree, "core", "corrald")
        shutil.copy2(os.path.join(BUILD, "core", "corrald"), copy)
        marker = os.path.join(tree, "corral-build-tree")
        with open(marker, "w") as f:
            f.write("planted\n")
        self.assertIn(os.path.join(tree, "plugins"), self.search_path(copy))
        os.chown(marker, 65534, 65534)
        self.assertNotIn(os.path.join(tree, "plugins"), self.search_path(copy))


if __name__ == "__main__":
    if BUILD is None or SOURCE is None or PREFIX is None:
        sys.exit("usage: test_install.py BUILD_DIR SOURCE_DIR PREFIX")
    unittest.main(argv=[sys.argv[0], "-v"])
