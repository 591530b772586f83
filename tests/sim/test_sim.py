#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""corral-sim on short traces: exact outcomes of small scenarios worked
out by hand for the dovecot policy, and the invariants of the CSV, the
summary and the chart for every shipped policy.

    test_sim.py CORRAL_SIM SOURCE_DIR
"""
import csv
import os
import subprocess
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ElementTree

SIM = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else None
SOURCE = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else None
POLICIES = ["dovecot", "dynamic", "ondemand", "static", "queue"]


def simulate(trace_text, *args):
    """Runs corral-sim; returns (summary dict, CSV rows, SVG root, log)."""
    with tempfile.TemporaryDirectory(prefix="corral-sim-") as folder:
        trace = os.path.join(folder, "test.trace")
        csv_path = os.path.join(folder, "out.csv")
        svg_path = os.path.join(folder, "out.svg")
        with open(trace, "w") as f:
            f.write(trace_text)
        result = subprocess.run([SIM, "--csv", csv_path, "--svg", svg_path, *args, trace],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                timeout=60)
        if result.returncode != 0:
            raise AssertionError(f"corral-sim failed:\n{result.stderr}")
        summary = dict(line.split("=", 1) for line in result.stdout.splitlines())
        with open(csv_path) as f:
            rows = list(csv.DictReader(f))
        svg = ElementTree.parse(svg_path).getroot()
        return summary, rows, svg, result.stderr


class DovecotScenarios(unittest.TestCase):
    """Startup is 5 ms; each connection's wait is worked out by hand."""

    def test_limit_reached_client_waits_for_a_free_slot(self):
        # Two processes of one slot; the third client waits until 1.005 s.
        summary, _, _, log = simulate("0 1\n0.1 1\n0.2 1\n", "--policy", "dovecot",
                                      "--set", "process_limit=2", "--set", "client_limit=1",
                                      "--duration", "5")
        self.assertEqual(summary["served"], "3")
        self.assertEqual(summary["spawns"], "2")
        self.assertEqual(summary["max_processes"], "2")
        self.assertEqual(summary["max_queue"], "1")
        self.assertEqual(summary["p50_wait_ms"], "5.000")
        self.assertEqual(summary["max_wait_ms"], "805.000")
        self.assertIn("Warning: service(sim): process_limit (2) reached, client connections "
                      "are being dropped", log)

    def test_full_service_drops_the_waiting_client_after_10_seconds(self):
        summary, rows, _, _ = simulate("0 30\n1 1\n", "--policy", "dovecot",
                                       "--set", "process_limit=1", "--set", "client_limit=1",
                                       "--duration", "40", "--sample-ms", "500")
        self.assertEqual(summary["served"], "1")
        self.assertEqual(summary["dropped"], "1")
        queued = {row["time"]: int(row["queued"]) for row in rows}
        self.assertEqual(queued["10.500"], 1)
        self.assertEqual(queued["11.000"], 0)

    def test_idle_process_beyond_min_avail_is_asked_to_leave(self):
        # idle_kill 2 s plus up to 0.99 s of jitter, from the last record.
        summary, rows, _, _ = simulate("0 1\n0.5 1\n", "--policy", "dovecot",
                                       "--set", "client_limit=1", "--set", "idle_kill=2",
                                       "--duration", "10")
        self.assertEqual(summary["sigints"], "2")
        self.assertEqual(rows[-1]["process_count"], "0")


class InvariantsOfEveryPolicy(unittest.TestCase):
    TRACE = "".join(f"{i * 0.02:.3f} {0.05 + (i * 7 % 11) * 0.05:.3f}\n" for i in range(300)) + \
        "".join(f"{8 + i * 0.004:.3f} 0.5\n" for i in range(150))
    LIMIT, SLOTS = 12, 2

    def check(self, policy):
        summary, rows, svg, _ = simulate(self.TRACE, "--policy", policy,
                                         "--set", f"process_limit={self.LIMIT}",
                                         "--set", f"client_limit={self.SLOTS}",
                                         "--set", "listen_backlog=50",
                                         "--duration", "20", "--sample-ms", "50")
        fates = ["served", "dropped", "refused", "aborted", "waiting_at_end", "serving_at_end",
                 "not_arrived"]
        self.assertEqual(sum(int(summary[f]) for f in fates), int(summary["connections"]))
        self.assertEqual(int(summary["connections"]), 450)
        self.assertEqual(summary["not_arrived"], "0")
        self.assertEqual(summary["busy_loops"], "0")
        self.assertEqual(summary["refusals"], "0")
        self.assertLessEqual(int(summary["max_processes"]), self.LIMIT)

        self.assertEqual(list(rows[0]), ["time", "process_count", "process_avail", "queued",
                                         "busy_slots"])
        self.assertEqual(len(rows), 401)
        for i, row in enumerate(rows):
            count, avail, queued, busy = (int(row[k]) for k in list(row)[1:])
            self.assertEqual(row["time"], f"{i * 0.05:.3f}")
            self.assertLessEqual(count, self.LIMIT)
            self.assertLessEqual(avail, count)
            self.assertLessEqual(busy, count * self.SLOTS)
            self.assertLessEqual(queued, 50)
        self.assertLessEqual(max(int(r["queued"]) for r in rows), int(summary["max_queue"]))

        namespace = "{http://www.w3.org/2000/svg}"
        self.assertEqual(svg.tag, namespace + "svg")
        self.assertEqual(len(svg.findall(f"{namespace}polyline")), 4)
        return summary

    def test_dovecot(self):
        self.assertGreater(int(self.check("dovecot")["served"]), 0)

    def test_every_shipped_policy(self):
        for policy in POLICIES[1:]:
            with self.subTest(policy=policy):
                self.assertGreater(int(self.check(policy)["served"]), 0)


class Inputs(unittest.TestCase):
    def run_sim(self, *args):
        return subprocess.run([SIM, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, timeout=60)

    def test_bad_trace_line_names_file_and_line(self):
        with tempfile.NamedTemporaryFile("w", suffix=".trace") as trace:
            trace.write("# comment\n0.5 1\n1 x\n")
            trace.flush()
            result = self.run_sim(trace.name)
        self.assertEqual(result.returncode, 1)
        self.assertIn(f"{trace.name}:3: expected '<arrival seconds> <duration seconds>'",
                      result.stderr)

    def test_unknown_policy_key_is_refused_by_the_core_parser(self):
        result = self.run_sim("--policy", "dynamic", "--set", "max_spares=3",
                              os.path.join(SOURCE, "tools", "sim", "traces", "steady.trace"))
        self.assertEqual(result.returncode, 1)
        self.assertIn("max_spares: unknown key (policy 'dynamic' does not declare it)",
                      result.stderr)

    def test_shipped_traces_parse(self):
        for name in ["steady", "burst", "diurnal"]:
            with self.subTest(trace=name):
                result = self.run_sim("-q", "--duration", "1",
                                      os.path.join(SOURCE, "tools", "sim", "traces",
                                                   name + ".trace"))
                self.assertEqual(result.returncode, 0, result.stderr)


if __name__ == "__main__":
    if SIM is None or SOURCE is None:
        sys.exit("usage: test_sim.py CORRAL_SIM SOURCE_DIR")
    unittest.main(argv=[sys.argv[0], "-v"])
