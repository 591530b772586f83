/* SPDX-License-Identifier: MIT */
/*
 * summary.h - the figures of one simulation run, printed as KEY=VALUE
 * lines (docs/simulator.md lists them).
 */
#ifndef CORRAL_SIM_SUMMARY_H
#define CORRAL_SIM_SUMMARY_H

#include <stdio.h>

#include "connections.h"
#include "host.h"

typedef struct sim_summary {
    const char *policy;
    const char *trace;
    double seconds;
    const sim_connections *connections;
    const sim_host_counters *counters;

    /* Derived by sim_summary_compute(). */
    double mean_processes;
    double mean_wait_ms, p50_wait_ms, p95_wait_ms, p99_wait_ms, max_wait_ms;
} sim_summary;

/* Fills in the derived figures from the inputs above. */
void sim_summary_compute(sim_summary *summary);
void sim_summary_print(FILE *out, const sim_summary *summary);

#endif
