/* SPDX-License-Identifier: MIT */
/*
 * static.c - exactly `processes` processes, as PHP-FPM's "static"
 * process manager keeps pm.max_children.
 *
 * All of them start with the service.  One that exits is replaced after
 * a back-off: restart_backoff at first, doubling with each replacement
 * round up to restart_backoff_max, and back to restart_backoff once a
 * process has lived stable_after or has exited cleanly.  The policy never
 * watches the listeners: clients wait in the listen backlog until a
 * process has a free slot.
 */
#include <corral/policy.h>

#include <stdlib.h>
#include <string.h>

#include "policy-error.h"

#define USEC_PER_MSEC 1000u

enum { KEY_PROCESSES, KEY_RESTART_BACKOFF, KEY_RESTART_BACKOFF_MAX, KEY_STABLE_AFTER };

static const corral_policy_key static_keys[] = {
    [KEY_PROCESSES] = { "processes", CORRAL_KEY_UINT, "1", 1, 100000,
                        "processes to keep running" },
    [KEY_RESTART_BACKOFF] = { "restart_backoff", CORRAL_KEY_DURATION, "100ms", 1, 3600000,
                              "first wait before replacing a process that exited" },
    [KEY_RESTART_BACKOFF_MAX] = { "restart_backoff_max", CORRAL_KEY_DURATION, "30s", 1, 3600000,
                                  "longest wait before replacing a process" },
    [KEY_STABLE_AFTER] = { "stable_after", CORRAL_KEY_DURATION, "10s", 0, 86400000,
                           "a process that lived this long resets the wait" },
    { NULL, 0, NULL, 0, 0, NULL },
};

struct static_service {
    const corral_host *host;
    corral_service *svc;
    const corral_service_state *state;

    unsigned processes;
    unsigned backoff_min_msecs, backoff_max_msecs;
    uint64_t stable_after_usec;

    unsigned backoff_msecs; /* the wait before the next replacement round */
    corral_timer *restart_timer;
};

static void schedule_restart(struct static_service *ss);

/* Starts whatever is missing; a failed spawn waits for the next round. */
static void top_up(struct static_service *ss)
{
    const corral_service_state *st = ss->state;

    while (st->process_count < ss->processes && !st->stopping) {
        if (!ss->host->spawn(ss->svc)) {
            schedule_restart(ss);
            return;
        }
    }
}

static void restart_due(void *data)
{
    struct static_service *ss = data;

    ss->restart_timer = NULL; /* one-shot: gone once it fired */
    top_up(ss);
}

static void schedule_restart(struct static_service *ss)
{
    if (ss->restart_timer != NULL || ss->state->stopping)
        return;
    ss->restart_timer = ss->host->timer_add(ss->svc, ss->backoff_msecs, false, restart_due, ss);
    ss->backoff_msecs = ss->backoff_msecs >= ss->backoff_max_msecs / 2 ? ss->backoff_max_msecs
                                                                       : ss->backoff_msecs * 2;
}

static void *static_service_new(const corral_host *host, corral_service *svc,
                                const corral_policy_value *values, char **error)
{
    const corral_service_state *st = host->state(svc);
    struct static_service *ss;

    if (values[KEY_PROCESSES].u > st->process_limit)
        return policy_error(error, "processes (%llu) is greater than process_limit (%u)",
                            (unsigned long long)values[KEY_PROCESSES].u, st->process_limit);
    if (values[KEY_RESTART_BACKOFF].u > values[KEY_RESTART_BACKOFF_MAX].u)
        return policy_error(error,
                            "restart_backoff (%llu ms) is greater than restart_backoff_max (%llu ms)",
                            (unsigned long long)values[KEY_RESTART_BACKOFF].u,
                            (unsigned long long)values[KEY_RESTART_BACKOFF_MAX].u);
    ss = calloc(1, sizeof(*ss));
    if (ss == NULL) {
        *error = strdup("out of memory");
        return NULL;
    }
    ss->host = host;
    ss->svc = svc;
    ss->state = st;
    ss->processes = (unsigned)values[KEY_PROCESSES].u;
    ss->backoff_min_msecs = (unsigned)values[KEY_RESTART_BACKOFF].u;
    ss->backoff_max_msecs = (unsigned)values[KEY_RESTART_BACKOFF_MAX].u;
    ss->stable_after_usec = values[KEY_STABLE_AFTER].u * USEC_PER_MSEC;
    ss->backoff_msecs = ss->backoff_min_msecs;
    return ss;
}

static void static_started(void *state)
{
    top_up(state);
}

static void static_stop(void *state)
{
    struct static_service *ss = state;

    if (ss->restart_timer != NULL) {
        ss->host->timer_remove(ss->svc, ss->restart_timer);
        ss->restart_timer = NULL;
    }
}

static void static_process_exited(void *state, const corral_exit *exit)
{
    struct static_service *ss = state;
    uint64_t lived = ss->host->now_usec() - exit->process->created_usec;

    if (exit->success || lived >= ss->stable_after_usec)
        ss->backoff_msecs = ss->backoff_min_msecs;
    if (!exit->success && ss->restart_timer == NULL) {
        ss->host->log(ss->svc, CORRAL_LOG_WARNING, "restarting in %u.%03u secs",
                      ss->backoff_msecs / 1000, ss->backoff_msecs % 1000);
    }
    schedule_restart(ss);
}

static const corral_policy static_policy = {
    .abi_version = CORRAL_POLICY_ABI_VERSION,
    .struct_size = sizeof(corral_policy),
    .name = "static",
    .description = "keeps exactly `processes` processes, replacing one that exits after a "
                   "doubling back-off, like PHP-FPM's static manager",
    .keys = static_keys,
    .service_new = static_service_new,
    .service_free = free,
    .started = static_started,
    .stop = static_stop,
    .process_exited = static_process_exited,
};

CORRAL_POLICY_DEFINE(static, static_policy)
