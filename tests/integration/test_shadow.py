# SPDX-License-Identifier: MIT
"""Shadow policies see every event but only write to the decision journal."""
import subprocess

from harness import CORRALCTL, ECHO_WORKER, SANITIZED, CorraldTestCase, echo_once, free_port

VSZ = "vsz_limit = 0\n" if SANITIZED else ""


class ShadowPolicies(CorraldTestCase):
    def test_shadow_journals_decisions_while_only_the_active_policy_acts(self):
        port = free_port()
        d = self.corrald(f"[service echo]\nexecutable = {ECHO_WORKER}\n"
                         f"inet_listener = 127.0.0.1:{port}\nprocess_min_avail = 1\n"
                         f"process_limit = 20\nclient_limit = 1\n{VSZ}"
                         "shadow_policies = dynamic\ndynamic.start_servers = 6\n"
                         "dynamic.min_spare = 5\ndynamic.max_spare = 8\n")
        d.start()
        # dynamic would start 6; dovecot with min_avail 1 starts one.
        d.wait_log(r"service\(echo\): shadow dynamic would: spawn a process", 10, count=6)
        d.wait_children(1)
        self.assertEqual(echo_once(port, b"shadowed\n"), b"shadowed\n")
        # Only dovecot's own decisions ran: one process, plus at most the
        # one it preforks when the first is busy, never dynamic's six.
        self.assertLessEqual(len(d.children()), 2)
        decisions = d.status("journal")["decisions"]
        spawns = [x for x in decisions if x["decision"] == "spawn a process"]
        self.assertGreaterEqual(len(spawns), 6)
        self.assertEqual({(x["service"], x["policy"]) for x in spawns}, {("echo", "dynamic")})
        table = subprocess.run([CORRALCTL, "-c", d.conf, "journal", "echo"],
                               capture_output=True, text=True, check=True).stdout
        self.assertIn("dynamic", table)
        self.assertIn("spawn a process", table)

    def test_shadow_woken_by_a_waiting_client_reads_the_real_queue(self):
        # No process at start: the first client wakes the listener, and the
        # shadow ondemand asks the host how many clients wait (TCP_INFO on
        # the real listener) before it would spawn.
        port = free_port()
        d = self.corrald(f"[service echo]\nexecutable = {ECHO_WORKER}\n"
                         f"inet_listener = 127.0.0.1:{port}\nprocess_min_avail = 0\n"
                         f"process_limit = 4\nclient_limit = 1\n{VSZ}"
                         "shadow_policies = ondemand\n")
        d.start()
        self.assertEqual(echo_once(port, b"first\n"), b"first\n")
        d.wait_log(r"service\(echo\): shadow ondemand would: spawn a process", 10)
        self.assertEqual(echo_once(port, b"again\n"), b"again\n")
        spawns = [x for x in d.status("journal")["decisions"]
                  if x["decision"] == "spawn a process"]
        self.assertEqual({x["policy"] for x in spawns}, {"ondemand"})

    def test_shadow_keys_are_validated_against_the_shadow(self):
        d = self.corrald(f"[service echo]\nexecutable = {ECHO_WORKER}\n"
                         "shadow_policies = dynamic\ndynamic.max_spares = 3\n")
        code, log = d.run_to_exit()
        self.assertEqual(code, 1)
        self.assertIn("[service echo] dynamic.max_spares: unknown key (policy 'dynamic'", log)

    def test_unknown_shadow_policy_is_refused(self):
        d = self.corrald(f"[service echo]\nexecutable = {ECHO_WORKER}\n"
                         "shadow_policies = nonesuch\n")
        code, log = d.run_to_exit()
        self.assertEqual(code, 1)
        self.assertIn("[service echo] shadow_policies: policy 'nonesuch': no nonesuch.so", log)
