/* SPDX-License-Identifier: MIT */
/*
 * dynamic.c - keeps between min_spare and max_spare processes available,
 * as PHP-FPM's "dynamic" process manager and Apache's prefork MPM do.
 *
 * Once a tick the policy counts the available processes (those with a
 * free slot, not counting any it has asked to leave):
 *   - above max_spare, it asks the one idle the longest to leave (one
 *     SIGINT per tick) and the spawn rate goes back to 1;
 *   - below min_spare, it starts min(rate, shortfall, room) processes and
 *     doubles the rate, up to max_spawn_rate, so a sustained shortage is
 *     met in 1, 2, 4, 8... steps;
 *   - in between, the spawn rate goes back to 1.
 * Between ticks a client that finds no free slot gets a process at once
 * (demand.h), and failing startups throttle the service (spawner.h).
 */
#include <corral/policy.h>

#include <stdlib.h>
#include <string.h>

#include "demand.h"
#include "idle.h"
#include "policy-error.h"
#include "spawner.h"

/* PHP-FPM and Apache tell the operator from this rate on. */
#define BUSY_SPAWN_RATE 8u

enum { KEY_MIN_SPARE, KEY_MAX_SPARE, KEY_START_SERVERS, KEY_MAX_SPAWN_RATE, KEY_TICK };

static const corral_policy_key dynamic_keys[] = {
    [KEY_MIN_SPARE] = { "min_spare", CORRAL_KEY_UINT, "1", 0, 100000,
                        "fewest available processes to keep" },
    [KEY_MAX_SPARE] = { "max_spare", CORRAL_KEY_UINT, "3", 0, 100000,
                        "most available processes to keep" },
    [KEY_START_SERVERS] = { "start_servers", CORRAL_KEY_UINT, "2", 0, 100000,
                            "processes started with the service" },
    [KEY_MAX_SPAWN_RATE] = { "max_spawn_rate", CORRAL_KEY_UINT, "32", 1, 1024,
                             "most processes started in one tick" },
    [KEY_TICK] = { "tick", CORRAL_KEY_DURATION, "1s", 10, 3600000,
                   "how often the pool is checked" },
    { NULL, 0, NULL, 0, 0, NULL },
};

struct dynamic_service {
    const corral_host *host;
    corral_service *svc;
    const corral_service_state *state;

    unsigned min_spare, max_spare, start_servers, max_spawn_rate;
    unsigned tick_msecs;

    unsigned spawn_rate; /* processes the next short tick may start */
    corral_timer *tick_timer;
    struct spawner spawner;
    struct demand demand;
};

static void dynamic_tick(void *data)
{
    struct dynamic_service *ds = data;
    unsigned available = idle_count_available(ds->host, ds->svc);
    unsigned wanted, started;

    if (available > ds->max_spare) {
        idle_ask_longest_idle_to_leave(ds->host, ds->svc);
        ds->spawn_rate = 1;
        return;
    }
    if (available >= ds->min_spare) {
        ds->spawn_rate = 1;
        return;
    }
    wanted = ds->min_spare - available;
    if (wanted > ds->spawn_rate)
        wanted = ds->spawn_rate;
    if (wanted > spawner_room(&ds->spawner))
        wanted = spawner_room(&ds->spawner);
    if (wanted == 0 || !spawner_can_spawn(&ds->spawner))
        return;
    if (ds->spawn_rate >= BUSY_SPAWN_RATE) {
        ds->host->log(ds->svc, CORRAL_LOG_WARNING,
                      "seems busy (you may need to increase start_servers, or min_spare/max_spare), "
                      "spawning %u processes, there are %u available, and %u total processes",
                      wanted, available, ds->state->process_count);
    }
    started = spawner_spawn_many(&ds->spawner, wanted);
    if (started == wanted)
        ds->spawn_rate = ds->spawn_rate * 2 < ds->max_spawn_rate ? ds->spawn_rate * 2
                                                                   : ds->max_spawn_rate;
    demand_update(&ds->demand);
}

static void *dynamic_service_new(const corral_host *host, corral_service *svc,
                                 const corral_policy_value *values, char **error)
{
    const corral_service_state *st = host->state(svc);
    struct dynamic_service *ds;

    if (values[KEY_MIN_SPARE].u > values[KEY_MAX_SPARE].u)
        return policy_error(error, "min_spare (%llu) is greater than max_spare (%llu)",
                            (unsigned long long)values[KEY_MIN_SPARE].u,
                            (unsigned long long)values[KEY_MAX_SPARE].u);
    if (values[KEY_START_SERVERS].u > st->process_limit)
        return policy_error(error, "start_servers (%llu) is greater than process_limit (%u)",
                            (unsigned long long)values[KEY_START_SERVERS].u, st->process_limit);
    ds = calloc(1, sizeof(*ds));
    if (ds == NULL) {
        *error = strdup("out of memory");
        return NULL;
    }
    ds->host = host;
    ds->svc = svc;
    ds->state = st;
    ds->min_spare = (unsigned)values[KEY_MIN_SPARE].u;
    ds->max_spare = (unsigned)values[KEY_MAX_SPARE].u;
    ds->start_servers = (unsigned)values[KEY_START_SERVERS].u;
    ds->max_spawn_rate = (unsigned)values[KEY_MAX_SPAWN_RATE].u;
    ds->tick_msecs = (unsigned)values[KEY_TICK].u;
    ds->spawn_rate = 1;
    spawner_init(&ds->spawner, host, svc);
    demand_init(&ds->demand, &ds->spawner);
    return ds;
}

static void dynamic_start(void *state)
{
    struct dynamic_service *ds = state;

    demand_start(&ds->demand);
}

static void dynamic_started(void *state)
{
    struct dynamic_service *ds = state;

    spawner_spawn_many(&ds->spawner, ds->start_servers);
    demand_update(&ds->demand);
    if (ds->tick_timer == NULL)
        ds->tick_timer = ds->host->timer_add(ds->svc, ds->tick_msecs, true, dynamic_tick, ds);
}

static void dynamic_stop(void *state)
{
    struct dynamic_service *ds = state;

    if (ds->tick_timer != NULL) {
        ds->host->timer_remove(ds->svc, ds->tick_timer);
        ds->tick_timer = NULL;
    }
    demand_stop(&ds->demand);
}

static void dynamic_status_changed(void *state, corral_process *proc, unsigned old_count)
{
    struct dynamic_service *ds = state;

    (void)proc;
    (void)old_count;
    demand_update(&ds->demand);
}

static void dynamic_listener_readable(void *state)
{
    struct dynamic_service *ds = state;

    demand_client_waiting(&ds->demand);
}

static void dynamic_process_exited(void *state, const corral_exit *exit)
{
    struct dynamic_service *ds = state;

    spawner_process_exited(&ds->spawner, exit);
    demand_update(&ds->demand);
}

static void dynamic_throttle_ended(void *state)
{
    struct dynamic_service *ds = state;

    demand_update(&ds->demand);
}

static const corral_policy dynamic_policy = {
    .abi_version = CORRAL_POLICY_ABI_VERSION,
    .struct_size = sizeof(corral_policy),
    .name = "dynamic",
    .description = "keeps between min_spare and max_spare processes available, like PHP-FPM's "
                   "dynamic manager: spawns at a doubling rate, kills one idle process per tick",
    .keys = dynamic_keys,
    .service_new = dynamic_service_new,
    .service_free = free,
    .start = dynamic_start,
    .started = dynamic_started,
    .stop = dynamic_stop,
    .status_changed = dynamic_status_changed,
    .listener_readable = dynamic_listener_readable,
    .process_exited = dynamic_process_exited,
    .throttle_ended = dynamic_throttle_ended,
};

CORRAL_POLICY_DEFINE(dynamic, dynamic_policy)
