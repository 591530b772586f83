/* SPDX-License-Identifier: MIT */
/*
 * load-sampler.h - the load of processes that send no status
 * (worker_protocol = systemd), measured from the kernel.
 *
 * Every interval the sampler counts, for each process, the established TCP
 * connections on the service's inet listener ports held by any process of
 * its process group (a gunicorn master's workers hold its connections),
 * with socket-diag.h.  The count becomes the process's available_count,
 * client_limit minus the connections (never below 0), and a change reaches
 * the policy as a status change: the policies that scale on status records
 * scale such pools unchanged, and a process with no connection counts as
 * idle from then on, for idle kill.  Connections not accepted yet are the
 * policy's queued_clients.  Unix listeners' connections are not counted.
 *
 * The interval is the shortest any policy asked for with
 * corral_host.sample_load, or CORRAL_LOAD_SAMPLE_DEFAULT_MSECS.
 */
#ifndef CORRAL_LOAD_SAMPLER_H
#define CORRAL_LOAD_SAMPLER_H

#include <stdbool.h>

#define CORRAL_LOAD_SAMPLE_DEFAULT_MSECS 1000u
#define CORRAL_LOAD_SAMPLE_MIN_MSECS 50u
#define CORRAL_LOAD_SAMPLE_MAX_MSECS 60000u

struct corral_service;
typedef struct corral_load_sampler corral_load_sampler;

/* Starts sampling the service's processes at the default interval. */
corral_load_sampler *corral_load_sampler_new(struct corral_service *svc);
void corral_load_sampler_free(corral_load_sampler *sampler);

/* A policy asked for `msecs` (clamped to the bounds above); 0 withdraws
 * the request, going back to the default. */
void corral_load_sampler_set_interval(corral_load_sampler *sampler, unsigned msecs);
unsigned corral_load_sampler_interval(const corral_load_sampler *sampler);

/* Measures now, then carries on at the interval. */
void corral_load_sampler_sample(corral_load_sampler *sampler);

#endif
