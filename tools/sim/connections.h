/* SPDX-License-Identifier: MIT */
/*
 * connections.h - the trace's connections in the simulated machine: the
 * listen backlog they wait in, and what became of each.
 *
 * A connection arrives into the backlog, or is refused if the backlog is
 * full, as the kernel refuses it.  It waits there until a worker accepts
 * it or the master closes it (a policy's drop, or a throttle with no
 * process left), is then served for its duration, and ends served, or
 * aborted if its process dies first.
 */
#ifndef CORRAL_SIM_CONNECTIONS_H
#define CORRAL_SIM_CONNECTIONS_H

#include <glib.h>
#include <stdint.h>

#include "trace.h"

typedef enum sim_fate {
    SIM_FATE_PENDING,  /* not arrived yet */
    SIM_FATE_WAITING,  /* in the backlog */
    SIM_FATE_SERVING,
    SIM_FATE_SERVED,
    SIM_FATE_DROPPED,  /* closed by the master */
    SIM_FATE_REFUSED,  /* the backlog was full */
    SIM_FATE_ABORTED,  /* its process died */
    SIM_FATE_COUNT,
} sim_fate;

typedef struct sim_connection {
    uint64_t arrival_usec;   /* on the simulation's clock */
    uint64_t duration_usec;
    sim_fate fate;
} sim_connection;

typedef struct sim_connections {
    sim_connection *all;    /* in order of arrival */
    size_t count;
    GQueue backlog;         /* sim_connection*, oldest first */
    unsigned backlog_capacity;
    unsigned max_queued;
    unsigned in_fate[SIM_FATE_COUNT];
    GArray *waits_usec;     /* uint64_t: arrival to accept, per accepted connection */
} sim_connections;

/* The trace's times count from `epoch_usec` on the clock. */
sim_connections *sim_connections_new(const sim_trace *trace, uint64_t epoch_usec,
                                     unsigned backlog_capacity);
void sim_connections_free(sim_connections *connections);

/* The connection arrives: it waits in the backlog, or is refused. */
void sim_connections_arrive(sim_connections *connections, sim_connection *connection);
unsigned sim_connections_queued(const sim_connections *connections);

/* A worker takes the oldest waiting connection; NULL if none waits. */
sim_connection *sim_connections_accept(sim_connections *connections, uint64_t now_usec);
/* A connection being served ends: SIM_FATE_SERVED or SIM_FATE_ABORTED. */
void sim_connections_end(sim_connections *connections, sim_connection *connection, sim_fate fate);
/* The master closes up to `max` waiting connections, oldest first (0: all). */
unsigned sim_connections_drop(sim_connections *connections, unsigned max);

#endif
