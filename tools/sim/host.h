/* SPDX-License-Identifier: MIT */
/*
 * host.h - the simulated corrald: one service, its policy, and the
 * corral_host table the policy talks to.
 *
 * It keeps the accounting core/service.c keeps (process_count,
 * process_avail, each process's view, the exit bookkeeping), refuses what
 * the core refuses, and runs policy callbacks only while the service is
 * monitored, so a policy sees the same world as under corrald.  Spawns
 * become simulated workers (workers.h); signals reach them; their records
 * and exits come back as status_changed and process_exited.  Listening is
 * level-triggered: while the policy listens and a connection waits,
 * listener_readable is delivered once per loop iteration.
 *
 * As with the fake host of the unit tests, there is one simulated host per
 * process, because the clock and random entries of corral_host take no
 * context.
 */
#ifndef CORRAL_SIM_HOST_H
#define CORRAL_SIM_HOST_H

#include <corral/policy.h>

#include <stdbool.h>
#include <stdint.h>

#include "clock.h"
#include "config.h"
#include "connections.h"

typedef struct sim_host_options {
    uint64_t startup_usec;   /* a new process's start-up latency */
    uint32_t seed;           /* for corral_host.random */
    bool print_log;          /* print the policy's log lines on stderr */
    bool print_debug;        /* ... its debug lines too */
    uint64_t epoch_usec;     /* the clock at simulated time 0 */
} sim_host_options;

/* What happened, for the summary. */
typedef struct sim_host_counters {
    unsigned spawns;
    unsigned refusals;       /* requests the core refused */
    unsigned sigints;
    unsigned throttles;
    unsigned warnings;       /* policy log lines at warning or error level */
    unsigned busy_loops;     /* iterations where the policy kept listening without acting */
    unsigned max_processes;
    double process_usec;     /* integral of process_count over time */
} sim_host_counters;

typedef struct sim_host sim_host;

/* Calls the policy's service_new; NULL with `error` set if it refuses. */
sim_host *sim_host_new(sim_clock *clock, sim_connections *connections,
                       const corral_service_config *config, const corral_policy *policy,
                       const corral_policy_value *values, const sim_host_options *options,
                       GError **error);
/* Stops the service if it runs, then frees the policy state and the rest. */
void sim_host_free(sim_host *host);

/* The policy's start() and started(). */
void sim_host_start(sim_host *host);
/* The policy's stop(). */
void sim_host_stop(sim_host *host);

/* A connection came or went from the backlog: workers may take it. */
void sim_host_connections_changed(sim_host *host);
/* The end of a loop iteration: listener_readable while it applies. */
void sim_host_finish_iteration(sim_host *host);

const corral_service_state *sim_host_state(const sim_host *host);
unsigned sim_host_busy_slots(const sim_host *host);
/* Counters, with the process-time integral brought up to now. */
const sim_host_counters *sim_host_counters_now(sim_host *host);

#endif
