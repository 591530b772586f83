#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Prints the results of tests/bench/bench.py as Markdown tables, the form
docs/benchmarks.md quotes them in.

    tests/bench/report.py RESULTS.json
"""
import json
import sys


def table(header, rows):
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join("---:" if i else "---" for i in range(len(header))) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def n0(v):
    return "–" if v is None else f"{v:,.0f}"


def n1(v):
    return "–" if v is None else f"{v:.1f}"


def n2(v):
    return "–" if v is None else f"{v:.2f}"


def load_rows(section, with_processes=False):
    rows = []
    for name, r in section.items():
        if not isinstance(r, dict) or "rate" not in r:
            continue
        row = [name, n0(r["rate"]), f"{n0(r['rate_min'])}–{n0(r['rate_max'])}",
               n2(r["p50_ms"]), n2(r["p99_ms"]), r["failed"],
               n1(r["master_us_per_conn"]) if r["master_us_per_conn"] >= 1 else
               n2(r["master_us_per_conn"]),
               n1(r.get("master_ticks_per_1000")), r.get("listen_overflows", "–"),
               f"{r.get('foreign_cpu', 0):.0%}"]
        if with_processes:
            row.append(n0(r.get("processes_after")))
        rows.append(row)
    return rows


LOAD_HEADER = ["contender", "conn/s (median)", "range", "p50 ms", "p99 ms", "failed",
               "master µs/conn", "master ticks/1000 conn", "SYN drops", "other CPU"]


def main():
    results = json.load(open(sys.argv[1]))
    m = results["machine"]
    print(f"Machine: {m['nproc']} × {m['cpu']}, {m['mem_total_kb'] // 1024} MiB, Linux "
          f"{m['kernel']}; {m['dovecot']}; xinetd {m['xinetd']}; ucspi-tcp {m['tcpserver']}; "
          f"GLib {m['glib']}; {m['gcc']}; Python {m['python']}. Started {results['started']}, "
          f"{results['elapsed_s']:.0f} s. Rounds: {results['rounds']}.\n")
    for conc in ("c20", "c100"):
        if conc in results.get("warm", {}):
            print(f"### Warm pool, concurrency {conc[1:]}\n")
            print(table(LOAD_HEADER, load_rows(results["warm"][conc])) + "\n")
    marginal = results.get("warm", {}).get("marginal", {})
    for conc, masters in sorted(marginal.items(), key=lambda item: int(item[0][1:])):
        print(f"### Marginal master CPU, concurrency {conc[1:]}\n")
        print(table(["master", "connections", "master ms (median)", "connections",
                     "master ms (median)", "marginal µs/conn", "conn/s (long)"],
                    [[name, n0(m["short_connections"]), n2(m["short_master_ms"]),
                      n0(m["long_connections"]), n2(m["long_master_ms"]),
                      f"{m['marginal_us_per_conn']:.3f}", n0(m["long_rate"])]
                     for name, m in masters.items()]) + "\n")
    if "rss_kb" in results.get("warm", {}):
        print(table(["master", "VmRSS KiB", "VmHWM KiB"],
                    [[k, v["VmRSS"], v["VmHWM"]] for k, v in results["warm"]["rss_kb"].items()])
              + "\n")
    if "backlog" in results:
        print("### Backlog at concurrency 100\n")
        print(table(LOAD_HEADER, load_rows(results["backlog"])) + "\n")
    if "cold" in results:
        print("### Cold burst\n")
        print(table(LOAD_HEADER + ["processes after"], load_rows(results["cold"], True)) + "\n")
    if "perconn" in results:
        print("### One process per connection\n")
        print(table(LOAD_HEADER, load_rows(results["perconn"])) + "\n")
    if "master" in results:
        print("### Master CPU per status record (ns)\n")
        names = list(next(iter(results["master"].values())).keys())
        rows = [[k] + [n0(row[n]["ns_per_record"]) for n in names]
                for k, row in results["master"].items()]
        print(table(["records"] + names, rows) + "\n")
    if "herd" in results:
        print("### Thundering herd\n")
        rows = [[k, r["workers"], r["woken_by_few"], n2(r["voluntary_per_conn"]),
                 n2(r["involuntary_per_conn"]), n0(r["rate"]), n2(r["p99_ms"])]
                for k, r in results["herd"].items()]
        print(table(["pool", "processes", "woken by 50 sequential connections",
                     "voluntary cs/conn", "involuntary cs/conn", "conn/s", "p99 ms"], rows)
              + "\n")
    if "scale" in results:
        print("### Scale\n")
        rows = []
        for name, rs in results["scale"]["rows"].items():
            for r in rs:
                if "error" in r:
                    rows.append([name, f"{r['processes']:,}", r["error"]] + [""] * 12)
                    continue
                rows.append([name, f"{r['processes']:,}", n2(r.get("all_forked_s")),
                             n2(r.get("prefork_s")), n2(r.get("initialized_s")),
                             n0(r.get("prefork_us_per_process")), n0(r.get("master_rss_kb")),
                             n0(r.get("ns_per_record")),
                             n0(r.get("idle_cpu_ns_per_s", 0) / 1000), n0(r.get("rate")),
                             n1(r.get("master_us_per_conn")), n1(r.get("master_us_per_conn_c20")),
                             n2(r.get("reap_s")),
                             n1(r.get("reap_us_per_process")), n0(r.get("mem_per_process_kb"))])
        print(table(["master", "processes", "all forked s", "all ready s",
                     "corralctl: all initialized s", "master µs/spawn", "master RSS KiB",
                     "master ns/status record",
                     "idle master µs/s", "conn/s (c20)", "master µs/conn (c1)",
                     "master µs/conn (c20)", "reap all s",
                     "master µs/reap", "KiB/process"], rows) + "\n")
    if "targets" in results:
        print("### Targets\n")
        print(table(["measure", "value", "target", "verdict"],
                    [[t["measure"], t["value"], t["target"], t["verdict"]]
                     for t in results["targets"]]))


if __name__ == "__main__":
    main()
