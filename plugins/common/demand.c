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
    const corral_service_state *st = demand->spawner->state;

    if (st->stopping)
        return;
    if (st->process_count >= st->process_limit) {
        log_limit_warning(demand);
        demand->waiting_at_limit = true;
    } else {
        /* A failure throttles, which also stops the watching. */
        (void)spawner_spawn(demand->spawner);
    }
    demand_update(demand);
}

void demand_stop(struct demand *demand)
{
    set_listening(demand, false);
}
