/* SPDX-License-Identifier: MIT */
/*
 * demand.h - a process for the client that finds no free slot.
 *
 * The policy has the core watch the listeners exactly while no process
 * has a free slot.  A client waiting then gets one new process, which
 * accepts it itself; the new process counts as available at once, so
 * watching stops until every slot is taken again.
 *
 * At process_limit nothing can be started.  The policy logs Dovecot's
 * "process_limit (N) reached, client connections are being dropped" (at
 * most once a second) and stops watching: clients wait in the listen
 * backlog, as under PHP-FPM and Apache, until a process frees a slot or
 * exits.  Nothing is closed by the policy; the kernel refuses connections
 * only once the backlog (listen_backlog) is full.
 */
#ifndef CORRAL_POLICY_DEMAND_H
#define CORRAL_POLICY_DEMAND_H

#include <corral/policy.h>

#include "spawner.h"

struct demand {
    struct spawner *spawner;
    /* Every process busy at the limit: watching is off until a slot or a
     * process frees. */
    bool waiting_at_limit;
    bool warned;
    uint64_t warned_sec;
};

void demand_init(struct demand *demand, struct spawner *spawner);

/* How often these policies want processes that send no status measured
 * (corral_host.sample_load): a client that waits must be seen soon. */
#define DEMAND_SAMPLE_MSECS 250u

/* start(): asks for load samples (where the host measures any) and
 * watches as demand_update() does. */
void demand_start(struct demand *demand);

/* Watches the listeners if and only if a client would find no free slot
 * (and the service is neither throttled, stopping, nor waiting at the
 * limit).  Call after anything that changes the counts or the throttle. */
void demand_update(struct demand *demand);

/* listener_readable: start a process for each client_limit clients
 * waiting in the listen queues (at least one, as a unix listener's queue
 * cannot be counted), up to process_limit; or warn at the limit. */
void demand_client_waiting(struct demand *demand);

/* stop(): stop watching. */
void demand_stop(struct demand *demand);

#endif
