/* SPDX-License-Identifier: MIT */
/*
 * samples.h - the service's state sampled at a fixed interval, written
 * as CSV and drawn by chart.h.
 */
#ifndef CORRAL_SIM_SAMPLES_H
#define CORRAL_SIM_SAMPLES_H

#include <glib.h>
#include <stdbool.h>

typedef struct sim_sample {
    double seconds;       /* simulated time */
    unsigned processes;   /* process_count */
    unsigned available;   /* process_avail */
    unsigned queued;      /* connections in the listen backlog */
    unsigned busy;        /* clients being served */
} sim_sample;

/* A GArray of sim_sample. */
GArray *sim_samples_new(void);

/* time,process_count,process_avail,queued,busy_slots - one line per
 * sample after a header line. */
bool sim_samples_write_csv(const GArray *samples, const char *path, GError **error);

#endif
