/* SPDX-License-Identifier: MIT */
/*
 * queue.c - sizes the pool from the measured load, by Little's law.
 *
 * The estimator (estimator.h) turns status records into an arrival rate
 * lambda and a mean service time S.  Once a tick the policy sets a target
 * of
 *
 *   target = ceil(lambda * S * headroom / client_limit) + min_spare
 *
 * processes, at most process_limit, where lambda is the larger of its
 * average and the last window's rate, so that the target rises with a
 * burst at once and falls only with the average.  Clients that found every
 * slot taken since the last tick raise the target to at least the pool
 * plus their slots.
 * Then the policy moves the pool towards the target:
 *   - short of it by one or more: start the difference now, at most
 *     max_spawn_per_tick per tick;
 *   - above it: only once the target has stayed lower for shrink_after,
 *     with no client finding every slot taken meanwhile, then one SIGINT
 *     per tick to the process idle the longest.
 * Processes asked to leave do not count.  Between ticks a client that
 * finds no free slot gets a process at once (demand.h), and failing
 * startups throttle the service (spawner.h).  README.md has the math.
 */
#include <corral/policy.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "demand.h"
#include "estimator.h"
#include "idle.h"
#include "policy-error.h"
#include "spawner.h"

#define USEC_PER_MSEC 1000u
#define HEADROOM_MIN 1.0
#define HEADROOM_MAX 10.0

enum { KEY_TICK, KEY_SMOOTHING, KEY_HEADROOM, KEY_MIN_SPARE, KEY_SHRINK_AFTER,
       KEY_MAX_SPAWN_PER_TICK };

static const corral_policy_key queue_keys[] = {
    [KEY_TICK] = { "tick", CORRAL_KEY_DURATION, "1s", 10, 3600000,
                   "how often the estimate and the target are updated" },
    [KEY_SMOOTHING] = { "smoothing", CORRAL_KEY_DURATION, "5s", 1, 3600000,
                        "time constant of the moving averages" },
    [KEY_HEADROOM] = { "headroom", CORRAL_KEY_STRING, "1.2", 0, 0,
                       "capacity per unit of measured load, 1.0 to 10.0" },
    [KEY_MIN_SPARE] = { "min_spare", CORRAL_KEY_UINT, "1", 0, 100000,
                        "processes on top of the load's needs" },
    [KEY_SHRINK_AFTER] = { "shrink_after", CORRAL_KEY_DURATION, "30s", 0, 86400000,
                           "how long the target must stay lower before shrinking" },
    [KEY_MAX_SPAWN_PER_TICK] = { "max_spawn_per_tick", CORRAL_KEY_UINT, "32", 1, 1024,
                                 "most processes started in one tick" },
    { NULL, 0, NULL, 0, 0, NULL },
};

struct queue_service {
    const corral_host *host;
    corral_service *svc;
    const corral_service_state *state;

    unsigned tick_msecs;
    double headroom;
    unsigned min_spare;
    uint64_t shrink_after_usec;
    unsigned max_spawn_per_tick;

    queue_estimator estimator;
    unsigned clients_found_full; /* since the last tick */
    unsigned target;
    bool target_lower;          /* the target is below the pool ... */
    uint64_t target_lower_since; /* ... since then */
    corral_timer *tick_timer;
    struct spawner spawner;
    struct demand demand;
};

/* "1", "1.2", "1.25": a decimal number read without the C library, whose
 * idea of the decimal point follows the locale. */
static bool parse_headroom(const char *text, double *value)
{
    double number = 0, scale = 1;
    bool digits = false, point = false;

    for (const char *p = text; *p != '\0'; p++) {
        if (*p == '.' && !point) {
            point = true;
        } else if (*p >= '0' && *p <= '9') {
            digits = true;
            if (point) {
                scale /= 10;
                number += (*p - '0') * scale;
            } else {
                number = number * 10 + (*p - '0');
            }
        } else {
            return false;
        }
    }
    *value = number;
    return digits && number >= HEADROOM_MIN && number <= HEADROOM_MAX;
}

/* Sized on the rising load, so that a burst is met at the next tick; the
 * average brings the target down, and shrink_after slows that again.
 *
 * Records show only the clients that were accepted, so while the pool is
 * full the rate seen is the pool's own, lower than the real one.  Each
 * client that found every slot taken is a slot that was missing: the
 * target is at least the pool plus those slots. */
static unsigned target_processes(const struct queue_service *qs, unsigned current)
{
    const corral_service_state *st = qs->state;
    double slots = queue_estimator_rising_load(&qs->estimator) * qs->headroom;
    double processes = ceil(slots / st->client_limit) + qs->min_spare;
    double missing = ceil((double)qs->clients_found_full / st->client_limit);

    if (missing > 0 && processes < current + missing)
        processes = current + missing;
    return processes < st->process_limit ? (unsigned)processes : st->process_limit;
}

static void grow(struct queue_service *qs, unsigned current)
{
    unsigned wanted = qs->target - current;

    if (wanted > qs->max_spawn_per_tick)
        wanted = qs->max_spawn_per_tick;
    spawner_spawn_many(&qs->spawner, wanted);
}

static void shrink(struct queue_service *qs, uint64_t now)
{
    if (!qs->target_lower) {
        qs->target_lower = true;
        qs->target_lower_since = now;
    }
    if (now - qs->target_lower_since >= qs->shrink_after_usec)
        idle_ask_longest_idle_to_leave(qs->host, qs->svc);
}

static void queue_tick(void *data)
{
    struct queue_service *qs = data;
    const queue_estimator *est = &qs->estimator;
    uint64_t now = qs->host->now_usec();
    unsigned target, current;

    queue_estimator_tick(&qs->estimator, now);
    current = qs->state->process_count - idle_count_leaving(qs->host, qs->svc);
    target = target_processes(qs, current);
    if (target != qs->target) {
        qs->host->log(qs->svc, CORRAL_LOG_DEBUG,
                      "target %u processes: %.2f arrivals/s (last %.2f), service time %.3f s, "
                      "%.2f busy slots, %u clients found the pool full",
                      target, est->arrival_rate, est->last_arrival_rate, est->service_time,
                      queue_estimator_rising_load(est), qs->clients_found_full);
        qs->target = target;
    }
    qs->clients_found_full = 0;

    if (current < target) {
        qs->target_lower = false;
        grow(qs, current);
    } else if (current > target) {
        shrink(qs, now);
    } else {
        qs->target_lower = false;
    }
    demand_update(&qs->demand);
}

static void *queue_service_new(const corral_host *host, corral_service *svc,
                               const corral_policy_value *values, char **error)
{
    struct queue_service *qs;
    double headroom;

    if (!parse_headroom(values[KEY_HEADROOM].s, &headroom))
        return policy_error(error, "headroom '%s' is not a number from 1.0 to 10.0",
                            values[KEY_HEADROOM].s);
    qs = calloc(1, sizeof(*qs));
    if (qs == NULL) {
        *error = strdup("out of memory");
        return NULL;
    }
    qs->host = host;
    qs->svc = svc;
    qs->state = host->state(svc);
    qs->tick_msecs = (unsigned)values[KEY_TICK].u;
    qs->headroom = headroom;
    qs->min_spare = (unsigned)values[KEY_MIN_SPARE].u;
    qs->shrink_after_usec = values[KEY_SHRINK_AFTER].u * USEC_PER_MSEC;
    qs->max_spawn_per_tick = (unsigned)values[KEY_MAX_SPAWN_PER_TICK].u;
    queue_estimator_init(&qs->estimator, host->now_usec(),
                         values[KEY_SMOOTHING].u * USEC_PER_MSEC);
    qs->target = qs->min_spare < qs->state->process_limit ? qs->min_spare
                                                          : qs->state->process_limit;
    spawner_init(&qs->spawner, host, svc);
    demand_init(&qs->demand, &qs->spawner);
    return qs;
}

static void queue_start(void *state)
{
    struct queue_service *qs = state;

    demand_start(&qs->demand);
}

static void queue_started(void *state)
{
    struct queue_service *qs = state;

    queue_estimator_init(&qs->estimator, qs->host->now_usec(), qs->estimator.smoothing_usec);
    spawner_spawn_many(&qs->spawner, qs->target);
    demand_update(&qs->demand);
    if (qs->tick_timer == NULL)
        qs->tick_timer = qs->host->timer_add(qs->svc, qs->tick_msecs, true, queue_tick, qs);
}

static void queue_stop(void *state)
{
    struct queue_service *qs = state;

    if (qs->tick_timer != NULL) {
        qs->host->timer_remove(qs->svc, qs->tick_timer);
        qs->tick_timer = NULL;
    }
    demand_stop(&qs->demand);
}

static void queue_status_changed(void *state, corral_process *proc, unsigned old_count)
{
    struct queue_service *qs = state;
    uint64_t now = qs->host->now_usec();

    if (proc->available_count < old_count)
        queue_estimator_taken(&qs->estimator, now, old_count - proc->available_count);
    else if (proc->available_count > old_count)
        queue_estimator_freed(&qs->estimator, now, proc->available_count - old_count);
    demand_update(&qs->demand);
}

/* A client found every slot taken: the pool is not too big, whatever the
 * target says, so the shrink countdown starts again. */
static void queue_listener_readable(void *state)
{
    struct queue_service *qs = state;

    qs->target_lower = false;
    qs->clients_found_full++;
    demand_client_waiting(&qs->demand);
}

static void queue_process_exited(void *state, const corral_exit *exit)
{
    struct queue_service *qs = state;
    const corral_process *proc = exit->process;

    queue_estimator_dropped(&qs->estimator, qs->host->now_usec(),
                            qs->state->client_limit - proc->available_count);
    spawner_process_exited(&qs->spawner, exit);
    demand_update(&qs->demand);
}

static void queue_throttle_ended(void *state)
{
    struct queue_service *qs = state;

    demand_update(&qs->demand);
}

static const corral_policy queue_policy = {
    .abi_version = CORRAL_POLICY_ABI_VERSION,
    .struct_size = sizeof(corral_policy),
    .name = "queue",
    .description = "sizes the pool by Little's law from the arrival rate and service time "
                   "measured on the status records, with headroom, hysteresis and rate limits",
    .keys = queue_keys,
    .service_new = queue_service_new,
    .service_free = free,
    .start = queue_start,
    .started = queue_started,
    .stop = queue_stop,
    .status_changed = queue_status_changed,
    .listener_readable = queue_listener_readable,
    .process_exited = queue_process_exited,
    .throttle_ended = queue_throttle_ended,
};

CORRAL_POLICY_DEFINE(queue, queue_policy)
