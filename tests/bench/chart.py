#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Draws the results of tests/bench/bench.py as one SVG (no dependencies).

    tests/bench/chart.py RESULTS.json OUT.svg
"""
import json
import sys
from html import escape

COLORS = {
    "corrald": "#1f77b4",
    "dovecot": "#d62728",
    "raw": "#7f7f7f",
    "other": "#2ca02c",
}


def color_for(name):
    if name.startswith("corrald"):
        return COLORS["corrald"]
    if name.startswith("dovecot"):
        return COLORS["dovecot"]
    if name.startswith("raw") or name.startswith("spawnloop"):
        return COLORS["raw"]
    return COLORS["other"]


def fmt(value):
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.0f}"
    return f"{value:.1f}"


class Svg:
    def __init__(self, width):
        self.width = width
        self.parts = []
        self.height = 0

    def text(self, x, y, s, size=12, anchor="start", weight="normal", color="#222"):
        self.parts.append(f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" '
                          f'text-anchor="{anchor}" font-weight="{weight}" fill="{color}">'
                          f'{escape(s)}</text>')

    def rect(self, x, y, w, h, color):
        self.parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0.5):.1f}" '
                          f'height="{h:.1f}" fill="{color}"/>')

    def line(self, x1, y1, x2, y2, color="#bbb"):
        self.parts.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
                          f'stroke="{color}" stroke-width="1"/>')

    def panel(self, y, title, groups, unit, note=""):
        """Horizontal bars: groups = [(group label, [(label, value)])]."""
        label_w, left, right = 230, 20, 90
        bar_h, gap = 16, 4
        values = [v for _, bars in groups for _, v in bars if v is not None]
        top = max(values) if values else 1
        plot_w = self.width - left - label_w - right
        self.text(left, y + 16, title, size=15, weight="bold")
        if note:
            self.text(left, y + 33, note, size=11, color="#555")
        y += 44
        for group, bars in groups:
            if group:
                self.text(left, y + 12, group, size=12, weight="bold", color="#444")
                y += 18
            for label, value in bars:
                self.text(left + label_w - 8, y + bar_h - 4, label, size=12, anchor="end")
                if value is None:
                    self.text(left + label_w + 4, y + bar_h - 4, "not measured", size=11,
                              color="#888")
                else:
                    w = plot_w * value / top
                    self.rect(left + label_w, y, w, bar_h, color_for(label))
                    self.text(left + label_w + w + 4, y + bar_h - 4, f"{fmt(value)} {unit}",
                              size=11)
                y += bar_h + gap
            y += 6
        self.line(left, y + 4, self.width - left, y + 4, "#ddd")
        return y + 16

    def save(self, path):
        head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width}" '
                f'height="{self.height}" viewBox="0 0 {self.width} {self.height}" '
                f'font-family="DejaVu Sans, Arial, sans-serif">'
                f'<rect width="100%" height="100%" fill="white"/>')
        with open(path, "w") as f:
            f.write(head + "\n" + "\n".join(self.parts) + "\n</svg>\n")


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    results = json.load(open(sys.argv[1]))
    m = results.get("machine", {})
    svg = Svg(900)
    y = 10
    svg.text(20, y + 18, "Corral benchmarks: corrald against Dovecot 2.3, xinetd, tcpserver and "
             "the raw limit", size=17, weight="bold")
    svg.text(20, y + 38, f"{m.get('nproc', '?')} x {m.get('cpu', '?')}, Linux "
             f"{m.get('kernel', '?')}, {results.get('started', '')}; loopback; medians of "
             f"3 to 5 rounds", size=11, color="#555")
    y += 50

    warm = results.get("warm", {})
    if warm:
        groups = []
        for conc in ("c20", "c100"):
            if conc in warm:
                groups.append((f"concurrency {conc[1:]}",
                               [(name, row["rate"]) for name, row in warm[conc].items()
                                if isinstance(row, dict) and "rate" in row]))
        y = svg.panel(y, "Warm pool: connections/s", groups, "/s",
                      "20 processes, client_limit 1, 20,000 connections; same echo worker "
                      "under corrald, dovecot and 'raw pool (same worker)'")

    per = results.get("perconn", {})
    if per:
        y = svg.panel(y, "One process per connection: connections/s",
                      [("", [(name, row["rate"]) for name, row in per.items()])], "/s",
                      "5,000 connections at concurrency 20; "
                      "corral-echo-worker everywhere (service_count=1, or the inetd way); "
                      "spawnloop (echo-once): a 30-line program")

    master_rows = []
    for label, section, key in (("warm pool, c=20", "warm", "c20"),
                                ("warm pool, c=100", "warm", "c100"),
                                ("cold burst", "cold", None),
                                ("one per connection, min_avail 20", "perconn", None)):
        data = results.get(section, {})
        if key:
            data = data.get(key, {})
        bars = []
        for name, row in data.items():
            if not isinstance(row, dict) or "master_us_per_conn" not in row:
                continue
            if not (name.startswith("corrald") or name.startswith("dovecot")):
                continue
            if section == "perconn" and "min_avail 20" not in name:
                continue
            bars.append((name, row["master_us_per_conn"]))
        if bars:
            master_rows.append((label, bars))
    if master_rows:
        y = svg.panel(y, "Master CPU per connection (lower is better)", master_rows, "us",
                      "schedstat of the master process only, divided by connections served")

    scale = results.get("scale", {}).get("rows", {})
    if scale:
        groups = []
        for key, label in (("us_per_record", "master CPU per status record, one per wakeup"),
                           ("prefork_us_per_process", "master CPU per spawn"),
                           ("master_us_per_conn", "master CPU per connection, one at a time"),
                           ("reap_us_per_process", "master CPU per reap at shutdown")):
            bars = []
            for name, rows in scale.items():
                for r in rows:
                    if "ns_per_record" in r:
                        r = dict(r, us_per_record=r["ns_per_record"] / 1000)
                    bars.append((f"{name}, {r['processes']:,} processes", r.get(key)))
            groups.append((label, bars))
        y = svg.panel(y, "Scale: one service of 100 to 10,000 processes", groups, "us")

    svg.height = int(y + 10)
    svg.save(sys.argv[2])


if __name__ == "__main__":
    main()
