#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes the simulator's sample traces: steady, burst and diurnal.

Each is 300 seconds of Poisson arrivals whose rate follows a shape, with
log-normal service times (mean 0.25 s), from a fixed seed, so the files
come out the same on every run:

    tools/sim/make-traces.py [OUTPUT_DIR]    # default: tools/sim/traces
"""
import math
import os
import random
import sys

SEED = 20240601
LENGTH = 300.0          # seconds
MEAN_DURATION = 0.25    # seconds
DURATION_SIGMA = 0.6    # spread of the log-normal service time


def steady(t):
    return 20.0


def burst(t):
    """A quiet service hit by two sudden bursts of ten seconds, needing
    about 20 and 35 busy slots: the second comes close to the process_limit
    of 40 that docs/simulator.md uses."""
    if 60 <= t < 70:
        return 80.0
    if 180 <= t < 190:
        return 140.0
    return 4.0


def diurnal(t):
    """One compressed day: from 1/s at night to 30/s at noon (t = 150)."""
    return 1.0 + 29.0 * (1 - math.cos(2 * math.pi * t / LENGTH)) / 2


SHAPES = {
    "steady": (steady, 20.0, "a constant 20 connections/s"),
    "burst": (burst, 140.0, "4/s, with bursts of 80/s (60-70 s) and 140/s (180-190 s)"),
    "diurnal": (diurnal, 30.0, "a day in 300 s: 1/s at the ends, 30/s at 150 s"),
}


def arrivals(rng, rate, peak):
    """Poisson arrivals at a varying rate, by thinning a peak-rate stream."""
    t = 0.0
    while True:
        t += rng.expovariate(peak)
        if t >= LENGTH:
            return
        if rng.random() < rate(t) / peak:
            yield t


def duration(rng):
    # A log-normal with mean MEAN_DURATION: mu = ln(mean) - sigma^2 / 2.
    mu = math.log(MEAN_DURATION) - DURATION_SIGMA ** 2 / 2
    return rng.lognormvariate(mu, DURATION_SIGMA)


def write_trace(directory, name):
    rate, peak, description = SHAPES[name]
    rng = random.Random(f"{SEED}-{name}")
    path = os.path.join(directory, name + ".trace")
    lines = [f"{t:.4f} {duration(rng):.4f}\n" for t in arrivals(rng, rate, peak)]
    with open(path, "w") as out:
        out.write(f"# {name}: {description}.\n")
        out.write(f"# {len(lines)} connections in {LENGTH:.0f} s; service times log-normal, "
                  f"mean {MEAN_DURATION} s.\n")
        out.write("# Made by tools/sim/make-traces.py (seeded); <arrival s> <duration s>\n")
        out.writelines(lines)
    print(f"{path}: {len(lines)} connections")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    directory = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "traces")
    os.makedirs(directory, exist_ok=True)
    for name in SHAPES:
        write_trace(directory, name)


if __name__ == "__main__":
    main()
