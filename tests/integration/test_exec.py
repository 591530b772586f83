# SPDX-License-Identifier: MIT
"""The child's execution environment: environment, working_directory,
stderr_level, and the process group every worker leads."""
import os
import signal
import tempfile
import unittest
import unittest.mock

from harness import (FIXTURE_WORKER, SANITIZED, WRAPPER, CorraldTestCase, free_port, wait_until)


def describe_service(port, out, name="fx", extra=""):
    no_vsz = "vsz_limit = 0\n" if SANITIZED else ""
    return (f"[service {name}]\nexecutable = {FIXTURE_WORKER} describe {out}\n"
            f"inet_listener = 127.0.0.1:{port}\nprocess_min_avail = 1\n{no_vsz}{extra}")


def read_description(path):
    def written():
        if not os.path.exists(path):
            return False
        with open(path) as f:
            return "pgid=" in f.read()
    wait_until(written, 10, f"{path} to be written")
    with open(path) as f:
        lines = f.read().splitlines()
    env = dict(line[4:].split("=", 1) for line in lines if line.startswith("env "))
    facts = dict(line.split("=", 1) for line in lines
                 if "=" in line and not line.startswith("env "))
    return env, facts


class Environment(CorraldTestCase):
    def test_environment_and_working_directory_reach_the_child(self):
        port = free_port()
        workdir = tempfile.mkdtemp(prefix="corral-wd-")
        out = os.path.join(self.corrald("").dir, "describe.txt")
        d = self.corrald(describe_service(
            port, out,
            extra=("environment = GREETING=\"hello world\" EMPTY= PASSED ABSENT_VAR "
                   "SERVICE_NAME=forged TZ=UTC\n"
                   f"working_directory = {workdir}\n")))
        with unittest.mock.patch.dict(os.environ, {"PASSED": "from corrald"}):
            os.environ.pop("ABSENT_VAR", None)
            d.start()
        env, facts = read_description(out)
        self.assertEqual(env["GREETING"], "hello world")
        self.assertEqual(env["EMPTY"], "")
        self.assertEqual(env["PASSED"], "from corrald")
        self.assertNotIn("ABSENT_VAR", env)
        self.assertEqual(env["TZ"], "UTC")
        # The protocol's variables win over the service's.
        self.assertEqual(env["SERVICE_NAME"], "fx")
        self.assertEqual(facts["cwd"], os.path.realpath(workdir))

    def test_missing_working_directory_is_a_spawn_failure_naming_chdir(self):
        port = free_port()
        out = os.path.join(self.corrald("").dir, "describe.txt")
        d = self.corrald(describe_service(
            port, out, extra="working_directory = /nonexistent/corral-wd\n")).start()
        # The process exists and fails before exec with exit 89, as a
        # Dovecot child whose set-up fails; corrald logs the failed step as
        # the child's fatal line (under valgrind the spawn is a plain fork,
        # and only the exit shows).
        d.wait_log(r"service\(fx\): child \d+ returned error 89", 10)
        if not WRAPPER:
            d.wait_log(r"Fatal: fx\(\d+\): chdir\(\) failed: No such file", 10)
        self.assertFalse(os.path.exists(out))

    def test_bad_environment_is_refused_with_file_line_and_key(self):
        d = self.corrald("[service fx]\nallow_root = yes\nexecutable = /bin/true\n"
                         "environment = GOOD=1 9BAD=2\n")
        code, log = d.run_to_exit()
        self.assertEqual(code, 1)
        self.assertRegex(log, r"50-test\.conf:4: \[service fx\] environment: "
                              r"'9BAD' is not a variable name")

    def test_bad_stderr_level_is_refused_with_file_line_and_key(self):
        d = self.corrald("[service fx]\nallow_root = yes\nexecutable = /bin/true\nstderr_level = loud\n")
        code, log = d.run_to_exit()
        self.assertEqual(code, 1)
        self.assertRegex(log, r"50-test\.conf:4: \[service fx\] stderr_level: 'loud'")


def process_exists(pid):
    """True while `pid` runs (a zombie no longer counts)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


# Forks a helper that ignores SIGQUIT and SIGINT (as a shell's background
# jobs do) and would outlive its parent: what gunicorn's workers look like
# to a supervisor that signals only the pid it started.
FORKING_WORKER = """#!/bin/sh
sleep 1000 &
echo $! > "$1"
wait
"""


class ProcessGroups(CorraldTestCase):
    def forking_service(self, d_dir, port):
        script = os.path.join(d_dir, "forking.sh")
        with open(script, "w") as f:
            f.write(FORKING_WORKER)
        os.chmod(script, 0o755)
        helper_file = os.path.join(d_dir, "helper.pid")
        return helper_file, (
            f"[service fork]\nexecutable = {script} {helper_file}\n"
            f"inet_listener = 127.0.0.1:{port}\nprocess_min_avail = 1\n"
            "first_status_timeout = 1h\n")

    def wait_helper(self, helper_file):
        def helper():
            try:
                with open(helper_file) as f:
                    return int(f.read().strip() or 0)
            except (OSError, ValueError):
                return 0
        return wait_until(helper, 10, "the helper's pid")

    def test_each_worker_leads_its_own_session_and_group(self):
        port = free_port()
        out = os.path.join(self.corrald("").dir, "describe.txt")
        d = self.corrald(describe_service(port, out)).start()
        _, facts = read_description(out)
        self.assertEqual(facts["sid"], facts["pid"])
        self.assertEqual(facts["pgid"], facts["pid"])
        self.assertNotEqual(int(facts["pgid"]), os.getpgid(d.proc.pid))

    def test_shutdown_leaves_no_forked_helper_behind(self):
        d = self.corrald("")
        helper_file, services = self.forking_service(d.dir, free_port())
        d = self.corrald(services).start()
        leader = d.wait_children(1)[0]
        helper = self.wait_helper(helper_file)
        self.assertEqual(os.getpgid(helper), leader)
        self.assertEqual(d.stop(), 0)
        # corrald has exited: nothing of the group may still run.
        wait_until(lambda: not process_exists(helper), 5, f"helper {helper} to be gone")
        self.assertFalse(process_exists(leader))

    def test_leftovers_of_a_dead_leader_are_killed(self):
        d = self.corrald("")
        helper_file, services = self.forking_service(d.dir, free_port())
        d = self.corrald(services).start()
        leader = d.wait_children(1)[0]
        helper = self.wait_helper(helper_file)
        os.kill(leader, signal.SIGKILL)
        wait_until(lambda: not process_exists(helper), 10, f"helper {helper} to be killed")
        d.wait_log(rf"service\(fork\): child {leader} killed with signal 9", 10)


class StderrLevel(CorraldTestCase):
    def test_plain_stderr_lines_are_info_by_default(self):
        port = free_port()
        out = os.path.join(self.corrald("").dir, "describe.txt")
        d = self.corrald(describe_service(port, out)).start()
        pid = d.wait_children(1)[0]
        d.wait_log(rf"Info: fx\({pid}\): described itself", 10)
        d.wait_log(r"Info: fx: raw stderr line", 10)
        self.assertEqual(d.log_count(r"Error: fx: raw stderr line"), 0)

    def test_stderr_level_sets_the_level_of_plain_lines_only(self):
        port = free_port()
        out = os.path.join(self.corrald("").dir, "describe.txt")
        d = self.corrald(describe_service(port, out, extra="stderr_level = warning\n")).start()
        pid = d.wait_children(1)[0]
        d.wait_log(r"Warning: fx: raw stderr line", 10)
        # Lines in Dovecot's log format keep their own level.
        d.wait_log(rf"Info: fx\({pid}\): described itself", 10)


if __name__ == "__main__":
    unittest.main()
