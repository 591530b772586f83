# SPDX-License-Identifier: MIT
"""20,000 loopback connections at concurrency 100 while corrald reloads its
configuration five times.  Not one connection may fail.

    python3 tests/load/reload_under_load.py BUILD_DIR [--connections N]
        [--concurrency C] [--reloads R]

Prints the load generator's figures and the reload timings; exits non-zero
if any connection failed or fewer reloads happened during the load.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "integration"))
import harness  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("build")
    parser.add_argument("--connections", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--reloads", type=int, default=5)
    parser.add_argument("--loadgen", help="default: BUILD/tests/bench/loadgen")
    args = parser.parse_args()

    loadgen = args.loadgen or os.path.join(args.build, "tests", "bench", "loadgen")
    port = harness.free_port()
    vsz = "vsz_limit = 0\n" if harness.SANITIZED else ""
    daemon = harness.Corrald(
        f"[service echo]\nexecutable = {harness.ECHO_WORKER}\n"
        f"inet_listener = 127.0.0.1:{port}\nprocess_min_avail = 20\nprocess_limit = 200\n"
        f"client_limit = 1\n{vsz}")
    daemon.start()
    try:
        daemon.wait_children(20, timeout=20)
        started = time.monotonic()
        load = subprocess.Popen([loadgen, "-p", str(port), "-n", str(args.connections),
                                 "-c", str(args.concurrency), "-S", "8", "-T", "120", "-j"],
                                stdout=subprocess.PIPE, text=True)
        reload_times = []
        for i in range(args.reloads):
            # Back to back, each waiting for the previous to finish; that the
            # load was still running after the last one is checked below.
            before = time.monotonic()
            daemon.proc.send_signal(signal.SIGHUP)
            daemon.wait_log("Configuration reloaded", 20, count=i + 1)
            reload_times.append(time.monotonic() - before)
        reloads_during_load = load.poll() is None
        out, _ = load.communicate(timeout=180)
        elapsed = time.monotonic() - started
        result = json.loads(out)
        print(json.dumps({"load": result, "reloads": len(reload_times),
                          "reload_secs": [round(t, 4) for t in reload_times],
                          "reloads_finished_while_loading": reloads_during_load,
                          "elapsed_secs": round(elapsed, 2)}, indent=1))
        failed = load.returncode != 0 or not reloads_during_load
        if failed:
            print("FAILED: connections failed or the reloads did not overlap the load",
                  file=sys.stderr)
        return 1 if failed else 0
    finally:
        daemon.close()


if __name__ == "__main__":
    sys.exit(main())
