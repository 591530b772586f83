/* SPDX-License-Identifier: MIT */
/*
 * workers.h - simulated worker processes, the child side of the protocol.
 *
 * A worker behaves as libcorral-worker does (docs/protocol.md, "A minimal
 * worker"): after its start-up latency it sends a first status record and
 * watches the listeners; it accepts waiting connections while it has free
 * slots, serves each for the connection's duration, and reports its free
 * slots with the library's rate limit (at once when the count reaches 0
 * or leaves 0, or when the second has changed since the last record;
 * otherwise at most one record a second).  With service_count it retires
 * slots and exits after its last client.  SIGINT makes an idle worker exit
 * and is ignored, without a record, by a busy one; SIGTERM ends it, and
 * SIGKILL, or SIGUSR1 outside login services, kill it.  A signal before
 * the worker is up kills it, as the default action would.
 *
 * Of the workers with a free slot, the one that has watched the listeners
 * the longest takes the next connection, as with EPOLLEXCLUSIVE, where a
 * worker that stops watching when full goes to the back of the queue.
 *
 * Records and exits reach the master through the clock, in the next loop
 * iteration, as through the status pipe and SIGCHLD.
 */
#ifndef CORRAL_SIM_WORKERS_H
#define CORRAL_SIM_WORKERS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "clock.h"
#include "connections.h"

typedef struct sim_worker_settings {
    unsigned client_limit;
    unsigned service_count;   /* 0 = unlimited */
    bool login;               /* SIGUSR1 is a notification, not death */
    uint64_t startup_usec;    /* from spawn to the first record */
} sim_worker_settings;

/* What the master hears from its children. */
typedef struct sim_worker_listener {
    void (*status)(void *context, pid_t pid, unsigned available_count);
    void (*exited)(void *context, pid_t pid, int wait_status);
    void *context;
} sim_worker_listener;

typedef struct sim_workers sim_workers;

sim_workers *sim_workers_new(sim_clock *clock, sim_connections *connections,
                             const sim_worker_settings *settings,
                             const sim_worker_listener *listener);
/* Frees every worker still alive (their clients are left as they are). */
void sim_workers_free(sim_workers *workers);

/* A process was spawned with this pid. */
void sim_workers_start(sim_workers *workers, pid_t pid);
/* kill(): false if no such worker is alive (ESRCH). */
bool sim_workers_signal(sim_workers *workers, pid_t pid, int signo);
/* Waiting connections go to watching workers with free slots. */
void sim_workers_dispatch(sim_workers *workers);

/* Clients being served right now, over every worker. */
unsigned sim_workers_busy_slots(const sim_workers *workers);

#endif
