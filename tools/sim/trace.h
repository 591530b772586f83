/* SPDX-License-Identifier: MIT */
/*
 * trace.h - a load trace: when each connection arrives and how long it
 * keeps its slot once a process has accepted it.
 *
 * One connection per line, two numbers in seconds (decimals allowed):
 *
 *     # arrival  duration
 *     0.000      0.250
 *     0.125      1.5
 *
 * `#` starts a comment; blank lines are skipped.  Lines need not be in
 * order of arrival.  docs/simulator.md documents the format.
 */
#ifndef CORRAL_SIM_TRACE_H
#define CORRAL_SIM_TRACE_H

#include <glib.h>
#include <stdint.h>

typedef struct sim_trace_entry {
    uint64_t arrival_usec;
    uint64_t duration_usec;
} sim_trace_entry;

typedef struct sim_trace {
    char *path;
    GArray *entries;          /* sim_trace_entry, by arrival */
    uint64_t last_finish_usec; /* latest arrival + duration: the end without queueing */
} sim_trace;

/* Errors name the file and the line. */
sim_trace *sim_trace_load(const char *path, GError **error);
void sim_trace_free(sim_trace *trace);

#endif
