/* SPDX-License-Identifier: MIT */
/*
 * metrics.h - the Prometheus text exposition of corrald's state, for
 * `corralctl metrics` and for GET /metrics on [corral] metrics_listener.
 *
 * Every service contributes one sample, labelled service="NAME", to each
 * family: its gauges (processes, limits, throttled, listening, ...) and
 * its counters (processes spawned, connections dropped, exit failures;
 * named *_total).  The master adds its own CPU time and resident memory.
 * docs/operations.md lists every metric.
 *
 * The HTTP endpoint is deliberately small: it reads one request (at most
 * 8 KiB of request line and headers, within 5 s), answers 200 with the
 * exposition for GET or HEAD /metrics, 404 for any other path, 405 for any
 * other method, 400 for what is not HTTP/1.x, and closes the connection.
 */
#ifndef CORRAL_METRICS_H
#define CORRAL_METRICS_H

#include <glib.h>

#include "supervisor.h"

/* The exposition for the running configuration; g_free() it. */
char *corral_metrics_render(corral_supervisor *supervisor);

typedef struct corral_metrics_http corral_metrics_http;

/* Serves GET /metrics at `address` (numeric, "*" for any IPv4) and `port`. */
corral_metrics_http *corral_metrics_http_open(corral_supervisor *supervisor,
                                              const char *address, guint16 port,
                                              GError **error);
void corral_metrics_http_free(corral_metrics_http *http);

#endif
