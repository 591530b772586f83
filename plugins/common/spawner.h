/* SPDX-License-Identifier: MIT */
/*
 * spawner.h - starting processes, and Dovecot's throttle when they fail to
 * start.
 *
 * A spawn that fails, or a process that dies before its first status
 * record, throttles the service for 2 s, then 4 s, doubling up to 60 s;
 * any clean exit brings the next throttle back to 2 s.  So does more than
 * ten failures within one second, until the service has had a clean exit
 * (after which one client crashing its own process cannot stop the
 * service).  These are rules M20-M22 of the dovecot policy.
 */
#ifndef CORRAL_POLICY_SPAWNER_H
#define CORRAL_POLICY_SPAWNER_H

#include <corral/policy.h>

#define SPAWNER_THROTTLE_MIN_MSECS 2000u
#define SPAWNER_THROTTLE_MAX_MSECS 60000u

struct spawner {
    const corral_host *host;
    corral_service *svc;
    const corral_service_state *state;
    unsigned throttle_msecs; /* length of the next throttle */
};

void spawner_init(struct spawner *spawner, const corral_host *host, corral_service *svc);

/* The core would take a spawn now: not stopping, not throttled, below
 * process_limit.  Asking only then keeps its refusals out of the log. */
bool spawner_can_spawn(const struct spawner *spawner);
/* Room left below process_limit. */
unsigned spawner_room(const struct spawner *spawner);

/* Starts one process; false if the core would refuse or the spawn failed,
 * which throttles. */
bool spawner_spawn(struct spawner *spawner);
/* Starts up to `count` processes and returns how many started. */
unsigned spawner_spawn_many(struct spawner *spawner, unsigned count);

/* Logs "command startup failed, throttling for S.mmm secs" and throttles.
 * Does nothing while throttled or stopping. */
void spawner_throttle(struct spawner *spawner);

/* Takes a reaped process into account; true if the service is now
 * throttled because of it. */
bool spawner_process_exited(struct spawner *spawner, const corral_exit *exit);

#endif
