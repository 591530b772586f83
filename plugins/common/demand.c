/* SPDX-License-Identifier: MIT */
#include "demand.h"

#define USEC_PER_SEC 1000000u
#define LIMIT_WARNING_INTERVAL_SECS 1u

void demand_init(struct demand *demand, struct spawner *spawner)
{
    *demand = (struct demand){ .spawner = spawner };
}

static void set_listening(struct demand *demand, bool on)
{
    const struct spawner *sp = demand->spawner;

    if (sp->state->listening != on)
        sp->host->listen(sp->svc, on);
}

void demand_start(struct demand *demand)
{
    const corral_host *host = demand->spawner->host;

    /* A host older than ABI version 3 has no such function. */
    if (host->sample_load != NULL)
        host->sample_load(demand->spawner->svc, DEMAND_SAMPLE_MSECS);
    demand_update(demand);
}

void demand_update(struct demand *demand)
{
    const corral_service_state *st = demand->spawner->state;

    if (st->process_avail > 0 || st->process_count < st->process_limit)
        demand->waiting_at_limit = false;
    set_listening(demand, st->process_avail == 0 && !st->throttled && !st->stopping &&
                              !demand->waiting_at_limit);
}

/* Whole seconds on the host's monotonic clock, with "never warned" kept
 * apart so that a clock starting near zero does not hide the first. */
static void log_limit_warning(struct demand *demand)
{
    const struct spawner *sp = demand->spawner;
    uint64_t now_sec = sp->host->now_usec() / USEC_PER_SEC;

    if (demand->warned && demand->warned_sec + LIMIT_WARNING_INTERVAL_SECS > now_sec)
        return;
    demand->warned = true;
    demand->warned_sec = now_sec;
    sp->host->log(sp->svc, CORRAL_LOG_WARNING,
                  "process_limit (%u) reached, client connections are being dropped",
                  sp->state->process_limit);
}

void demand_client_waiting(struct demand *demand)
{
    const struct spawner *sp = demand->spawner;
    const corral_service_state *st = sp->state;

    if (st->stopping)
        return;
    if (st->process_count >= st->process_limit) {
        log_limit_warning(demand);
        demand->waiting_at_limit = true;
    } else {
        /* We watch only while no process has a free slot, so every client
         * in the queue needs a new one: start them all now rather than one
         * per wakeup, which would wait for each new process to take its
         * client before the next could start.  spawner_spawn_many stops
         * at process_limit, or at a failure, which throttles. */
        unsigned queued = sp->host->queued_clients(sp->svc);
        unsigned needed = (queued + st->client_limit - 1) / st->client_limit;

        (void)spawner_spawn_many(demand->spawner, needed > 0 ? needed : 1);
    }
    demand_update(demand);
}

void demand_stop(struct demand *demand)
{
    set_listening(demand, false);
}
