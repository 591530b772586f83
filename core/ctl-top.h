/* SPDX-License-Identifier: MIT */
/*
 * ctl-top.h - corralctl top: a live view of the services, with rates.
 *
 * Every interval it asks corrald for status and processes and shows, per
 * service, the gauges (processes, free ones, queue) beside the rates of
 * the counters since the previous frame (spawns, drops, failed exits and
 * status records per second) and the processes' memory and CPU use.  On
 * a terminal it redraws one screen until 'q' or Ctrl-C; otherwise (or with
 * a number of iterations) it prints one frame after another.
 */
#ifndef CORRAL_CTL_TOP_H
#define CORRAL_CTL_TOP_H

#include <stdbool.h>

/* `services` (NULL-terminated, may be empty) limits the view; 0
 * `iterations` runs until stopped.  Returns the exit code. */
int ctl_top(const char *socket_path, char **services, double interval_secs, int iterations,
            const char *selection, bool headers);

#endif
