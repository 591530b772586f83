/* SPDX-License-Identifier: MIT */
#include "spawner.h"

#define EXIT_FAILURES_PER_SEC_MAX 10u

void spawner_init(struct spawner *spawner, const corral_host *host, corral_service *svc)
{
    spawner->host = host;
    spawner->svc = svc;
    spawner->state = host->state(svc);
    spawner->throttle_msecs = SPAWNER_THROTTLE_MIN_MSECS;
}

bool spawner_can_spawn(const struct spawner *spawner)
{
    const corral_service_state *st = spawner->state;

    return !st->stopping && !st->throttled && st->process_count < st->process_limit;
}

unsigned spawner_room(const struct spawner *spawner)
{
    const corral_service_state *st = spawner->state;

    return st->process_limit > st->process_count ? st->process_limit - st->process_count : 0;
}

bool spawner_spawn(struct spawner *spawner)
{
    if (!spawner_can_spawn(spawner))
        return false;
    if (spawner->host->spawn(spawner->svc))
        return true;
    spawner_throttle(spawner);
    return false;
}

unsigned spawner_spawn_many(struct spawner *spawner, unsigned count)
{
    unsigned started = 0;

    while (started < count && spawner_spawn(spawner))
        started++;
    return started;
}

void spawner_throttle(struct spawner *spawner)
{
    unsigned msecs = spawner->throttle_msecs;

    if (spawner->state->throttled || spawner->state->stopping)
        return;
    spawner->host->log(spawner->svc, CORRAL_LOG_ERROR,
                       "command startup failed, throttling for %u.%03u secs", msecs / 1000,
                       msecs % 1000);
    if (!spawner->host->throttle(spawner->svc, msecs))
        return;
    spawner->throttle_msecs = msecs >= SPAWNER_THROTTLE_MAX_MSECS / 2 ? SPAWNER_THROTTLE_MAX_MSECS
                                                                       : msecs * 2;
}

bool spawner_process_exited(struct spawner *spawner, const corral_exit *exit)
{
    const corral_service_state *st = spawner->state;

    if (exit->success) {
        spawner->throttle_msecs = SPAWNER_THROTTLE_MIN_MSECS;
        return false;
    }
    if (!exit->before_first_status &&
        (st->have_success || st->exit_failures_in_sec <= EXIT_FAILURES_PER_SEC_MAX))
        return false;
    spawner_throttle(spawner);
    return st->throttled;
}
