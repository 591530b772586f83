#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The shipped monitoring: alert rules and Grafana dashboard (monitoring/).

    test_monitoring.py SOURCE_DIR      (CORRAL_BUILD_DIR names the build)

1. promtool checks the alert rules and runs their unit tests
   (monitoring/corral-alerts.test.yml).
2. The dashboard is valid JSON with the structure Grafana needs.
3. Every corral_* metric named by a rule or a dashboard query is one that
   a running corrald of this build exports: the names come from the
   /metrics text of a real corrald, not from a list kept here.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import unittest

SOURCE = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else None
sys.path.insert(0, os.path.join(SOURCE or "", "tests", "integration"))
import harness  # noqa: E402

MONITORING = os.path.join(SOURCE or "", "monitoring")
RULES = os.path.join(MONITORING, "corral-alerts.yml")
RULE_TESTS = os.path.join(MONITORING, "corral-alerts.test.yml")
DASHBOARD = os.path.join(MONITORING, "corral-dashboard.json")
METRIC = re.compile(r"\bcorral_[a-z0-9_]+\b")


def promtool(*args):
    tool = shutil.which("promtool")
    if tool is None:
        raise AssertionError("promtool not found: scripts/deps.sh installs Debian's prometheus")
    return subprocess.run([tool, *args], cwd=MONITORING, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=120)


def rule_metrics():
    """corral_* names in the rules' live lines (commented rules wait for a
    metric corrald does not export yet)."""
    with open(RULES) as f:
        live = [line for line in f if not line.lstrip().startswith("#")]
    names = set()
    for line in live:
        if re.match(r"\s*(expr:|\s)", line):
            names.update(METRIC.findall(line.split("#", 1)[0]))
    return names


def dashboard_queries(node):
    """Every PromQL string of the dashboard: targets' expr and the template
    variables' queries."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("expr", "definition") and isinstance(value, str):
                yield value
            elif key == "query" and isinstance(value, str):
                yield value
            else:
                yield from dashboard_queries(value)
    elif isinstance(node, list):
        for item in node:
            yield from dashboard_queries(item)


class AlertRules(unittest.TestCase):
    def test_rules_check(self):
        out = promtool("check", "rules", RULES)
        self.assertEqual(out.returncode, 0, out.stdout)
        self.assertIn("SUCCESS", out.stdout)

    def test_rule_unit_tests_pass(self):
        out = promtool("test", "rules", RULE_TESTS)
        self.assertEqual(out.returncode, 0, out.stdout)
        self.assertIn("SUCCESS", out.stdout)

    def test_every_alert_has_a_unit_test(self):
        with open(RULES) as f:
            alerts = set(re.findall(r"(?m)^\s*- alert: (\w+)", f.read()))
        with open(RULE_TESTS) as f:
            tested = set(re.findall(r"(?m)^\s*alertname: (\w+)", f.read()))
        self.assertTrue(alerts)
        self.assertEqual(alerts - tested, set())


class Dashboard(unittest.TestCase):
    def setUp(self):
        with open(DASHBOARD) as f:
            self.dashboard = json.load(f)

    def test_structure(self):
        board = self.dashboard
        self.assertEqual(board["uid"], "corral-fleet")
        panels = board["panels"]
        ids = [p["id"] for p in panels]
        self.assertEqual(len(ids), len(set(ids)), "panel ids repeat")
        for panel in panels:
            for key in ("x", "y", "w", "h"):
                self.assertIn(key, panel["gridPos"], panel["title"])
            self.assertLessEqual(panel["gridPos"]["x"] + panel["gridPos"]["w"], 24, panel["title"])
            if panel["type"] != "row":
                self.assertTrue(panel["targets"], panel["title"])
                for target in panel["targets"]:
                    self.assertTrue(target["expr"].strip(), panel["title"])
        variables = {v["name"] for v in board["templating"]["list"]}
        self.assertEqual(variables, {"datasource", "instance", "service"})

    def test_covers_what_an_operator_watches(self):
        queries = " ".join(dashboard_queries(self.dashboard))
        for what, metric in (("processes", "corral_service_processes"),
                             ("availability", "corral_service_processes_available"),
                             ("queue", "corral_service_queued_clients"),
                             ("spawns", "corral_service_processes_spawned_total"),
                             ("throttles", "corral_service_throttled"),
                             ("drops", "corral_service_connections_dropped_total"),
                             ("master CPU", "corral_master_cpu_seconds_total")):
            self.assertRegex(queries, rf"\b{metric}\b", f"no panel shows {what}")


class NamesCorraldExports(harness.CorraldTestCase):
    @classmethod
    def setUpClass(cls):
        daemon = harness.Corrald(f"""
            [service echo]
            executable = {harness.ECHO_WORKER}
            inet_listener = 127.0.0.1:{harness.free_port()}
            process_min_avail = 1
            """)
        try:
            daemon.start()
            text = daemon.metrics_text()
        finally:
            daemon.close()
        cls.exported = set()
        for line in text.splitlines():
            found = re.match(r"# TYPE (\S+) ", line) or re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]",
                                                                 line)
            if found:
                cls.exported.add(found.group(1))

    def test_corrald_exports_service_and_master_metrics(self):
        self.assertIn("corral_service_processes", self.exported)
        self.assertIn("corral_master_cpu_seconds_total", self.exported)

    def test_rules_use_only_exported_names(self):
        used = rule_metrics()
        self.assertTrue(used)
        self.assertEqual(used - self.exported, set(), f"corrald exports {sorted(self.exported)}")

    def test_dashboard_uses_only_exported_names(self):
        with open(DASHBOARD) as f:
            queries = list(dashboard_queries(json.load(f)))
        used = set(METRIC.findall(" ".join(queries)))
        self.assertTrue(used)
        self.assertEqual(used - self.exported, set(), f"corrald exports {sorted(self.exported)}")


if __name__ == "__main__":
    if SOURCE is None:
        sys.exit("usage: test_monitoring.py SOURCE_DIR")
    unittest.main(argv=[sys.argv[0], "-v"])
