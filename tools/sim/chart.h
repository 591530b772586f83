/* SPDX-License-Identifier: MIT */
/*
 * chart.h - an SVG line chart of the samples: processes, available
 * processes, queued connections and busy slots over time, with
 * process_limit as a dashed line when it is in range.
 */
#ifndef CORRAL_SIM_CHART_H
#define CORRAL_SIM_CHART_H

#include <glib.h>
#include <stdbool.h>

typedef struct sim_chart {
    const char *title;
    const char *subtitle;
    unsigned process_limit;
    double seconds;          /* the x axis runs from 0 to here */
} sim_chart;

bool sim_chart_write(const sim_chart *chart, const GArray *samples, const char *path,
                     GError **error);

#endif
