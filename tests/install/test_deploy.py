#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The container and Kubernetes examples (deploy/) agree with corrald.

    test_deploy.py BUILD_DIR SOURCE_DIR

The image cannot be built here (no registry), so this checks what can be
checked without one:
1. The image's corral.conf with the DaemonSet's services passes this
   build's `corrald -t`.
2. The Containerfile installs the corral package, puts that corral.conf in
   place, tests it, exposes the metrics port and runs corrald in the
   foreground as its entry point.
3. The DaemonSet annotates the metrics port of corral.conf for scraping,
   mounts the services and base_dir where corral.conf expects them, and
   grants exactly the capabilities of corrald.service.
4. Its probes work on a real corrald of this build run on that
   configuration: the readiness command exits 0, the liveness URL
   answers 200.
"""
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
import urllib.request

import yaml

BUILD = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else None
SOURCE = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else None
DEPLOY = os.path.join(SOURCE or "", "deploy")
CONTAINER_CONF = os.path.join(DEPLOY, "container", "corral.conf")
CONTAINERFILE = os.path.join(DEPLOY, "container", "Containerfile")
DAEMONSET = os.path.join(DEPLOY, "kubernetes", "corrald-daemonset.yaml")
UNIT = os.path.join(SOURCE or "", "conf", "corrald.service.in")
sys.path.insert(0, os.path.join(SOURCE or "", "tests", "integration"))


def read(path):
    with open(path) as f:
        return f.read()


def conf_value(text, key):
    found = re.search(rf"(?m)^{key}\s*=\s*(\S+)\s*$", text)
    assert found, f"no {key} in the container's corral.conf"
    return found.group(1)


def documents():
    with open(DAEMONSET) as f:
        return {d["kind"]: d for d in yaml.safe_load_all(f)}


def stage(folder, conf_text, services):
    """corral.conf and conf.d/ in folder, as the DaemonSet lays them out."""
    os.makedirs(os.path.join(folder, "conf.d"))
    with open(os.path.join(folder, "corral.conf"), "w") as f:
        f.write(conf_text)
    for name, body in services.items():
        with open(os.path.join(folder, "conf.d", name), "w") as f:
            f.write(body)
    return os.path.join(folder, "corral.conf")


class DeployExamples(unittest.TestCase):
    def setUp(self):
        self.scratch = tempfile.mkdtemp(prefix="corral-deploy-")
        self.addCleanup(shutil.rmtree, self.scratch, True)
        self.conf = read(CONTAINER_CONF)
        self.docs = documents()
        self.pod = self.docs["DaemonSet"]["spec"]["template"]
        self.container = self.pod["spec"]["containers"][0]
        self.services = dict(self.docs["ConfigMap"]["data"])
        self.metrics_port = int(conf_value(self.conf, "metrics_listener").rsplit(":", 1)[1])

    def services_for_this_host(self, **replace):
        """The ConfigMap's services; 'user = corral' needs the account the
        corral package creates, so elsewhere another account stands in."""
        out = {}
        for name, body in self.services.items():
            try:
                pwd.getpwnam("corral")
            except KeyError:
                body = body.replace("user = corral", "user = nobody")
            for old, new in replace.items():
                body = body.replace(old, new)
            out[name] = body
        return out

    def test_configuration_passes_corrald_t(self):
        conf = stage(os.path.join(self.scratch, "etc"), self.conf, self.services_for_this_host())
        out = subprocess.run([os.path.join(BUILD, "core", "corrald"), "-t", "-c", conf],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             timeout=60)
        self.assertEqual(out.returncode, 0, out.stdout)
        self.assertIn("(1 service)", out.stdout)

    def test_containerfile_installs_the_package_and_runs_corrald(self):
        text = read(CONTAINERFILE)
        self.assertRegex(text, r"dpkg-buildpackage -us -uc -b")
        self.assertRegex(text, r"apt-get install .*\n?.*/tmp/debs/corral_\*\.deb")
        self.assertIn("COPY deploy/container/corral.conf /etc/corral/corral.conf", text)
        self.assertIn('RUN ["/usr/sbin/corrald", "-t", "-c", "/etc/corral/corral.conf"]', text)
        self.assertRegex(text, rf"(?m)^EXPOSE {self.metrics_port}$")
        self.assertIn('ENTRYPOINT ["/usr/sbin/corrald", "-F", "-c", "/etc/corral/corral.conf"]',
                      text)

    def test_daemonset_scrapes_the_metrics_port(self):
        annotations = self.pod["metadata"]["annotations"]
        self.assertEqual(annotations["prometheus.io/scrape"], "true")
        self.assertEqual(int(annotations["prometheus.io/port"]), self.metrics_port)
        self.assertEqual(annotations["prometheus.io/path"], "/metrics")
        ports = {p["name"]: p["containerPort"] for p in self.container["ports"]}
        self.assertEqual(ports["metrics"], self.metrics_port)

    def test_daemonset_mounts_what_corral_conf_expects(self):
        mounts = {m["mountPath"]: m["name"] for m in self.container["volumeMounts"]}
        self.assertEqual(mounts["/etc/corral/conf.d"], "services")
        self.assertEqual(mounts[conf_value(self.conf, "base_dir")], "run")
        volumes = {v["name"]: v for v in self.pod["spec"]["volumes"]}
        self.assertEqual(volumes["services"]["configMap"]["name"],
                         self.docs["ConfigMap"]["metadata"]["name"])

    def test_daemonset_grants_the_capabilities_of_the_unit(self):
        bounding = re.search(r"(?m)^CapabilityBoundingSet=(.*)$", read(UNIT)).group(1).split()
        caps = self.container["securityContext"]["capabilities"]
        self.assertEqual(caps["drop"], ["ALL"])
        self.assertEqual(sorted("CAP_" + c for c in caps["add"]), sorted(bounding))

    def test_probes_work_on_a_running_corrald(self):
        import harness

        metrics_port, echo_port = harness.free_port(), harness.free_port()
        conf_text = (self.conf.replace("base_dir = /run/corral", "base_dir = run")
                              .replace(f"*:{self.metrics_port}", f"127.0.0.1:{metrics_port}"))
        services = self.services_for_this_host(**{"*:7070": f"127.0.0.1:{echo_port}"})
        conf = stage(os.path.join(self.scratch, "live"), conf_text, services)
        readiness = self.container["readinessProbe"]["exec"]["command"]
        self.assertEqual(readiness, ["/usr/bin/corralctl", "status"])
        liveness = self.container["livenessProbe"]["httpGet"]
        self.assertEqual(liveness["port"], "metrics")

        ctl = [os.path.join(BUILD, "core", "corralctl"), "-c", conf, *readiness[1:]]
        before = subprocess.run(ctl, capture_output=True, timeout=30)
        self.assertEqual(before.returncode, 3, "not ready before corrald runs")
        log_path = os.path.join(self.scratch, "corrald.log")
        with open(log_path, "wb") as log:
            corrald = subprocess.Popen([os.path.join(BUILD, "core", "corrald"), "-F", "-c", conf],
                                       stdout=log, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        try:
            harness.wait_until(
                lambda: subprocess.run(ctl, capture_output=True, timeout=30).returncode == 0,
                10, f"the readiness probe to pass\n{read(log_path)}")
            url = f"http://127.0.0.1:{metrics_port}{liveness['path']}"
            with urllib.request.urlopen(url, timeout=10) as answer:
                self.assertEqual(answer.status, 200)
                self.assertIn(b'corral_service_processes{service="echo"}', answer.read())
        finally:
            corrald.terminate()
            code = corrald.wait(30)
        self.assertEqual(code, 0, read(log_path))


if __name__ == "__main__":
    if BUILD is None or SOURCE is None:
        sys.exit("usage: test_deploy.py BUILD_DIR SOURCE_DIR")
    unittest.main(argv=[sys.argv[0], "-v"])
