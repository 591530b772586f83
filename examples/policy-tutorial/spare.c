/* SPDX-License-Identifier: MIT */
/*
 * spare.c - keeps `spare` processes with a free slot, and waits
 * `retry_after` when a process fails to start.  The policy of
 * docs/policy-guide.md.
 */
#include <corral/policy.h>

#include <stdlib.h>
#include <string.h>

/* Keys, in the order of the values the core hands to service_new. */
enum { KEY_SPARE, KEY_RETRY_AFTER };

static const corral_policy_key spare_keys[] = {
    [KEY_SPARE] = { "spare", CORRAL_KEY_UINT, "2", 1, 1000,
                    "processes with a free slot to keep" },
    [KEY_RETRY_AFTER] = { "retry_after", CORRAL_KEY_DURATION, "5s", 100, 600000,
                          "pause after a process fails to start" },
    { NULL, 0, NULL, 0, 0, NULL },
};

struct spare {
    const corral_host *host;
    corral_service *svc;
    const corral_service_state *state; /* kept up to date by the core */
    unsigned spare;
    unsigned retry_after_msecs;
};

/* Starts processes until `spare` of them have a free slot.  A process
 * counts as having free slots from the moment it is started. */
static void top_up(struct spare *s)
{
    const corral_service_state *st = s->state;
    unsigned started = 0;

    while (st->process_avail < s->spare && st->process_count < st->process_limit &&
           !st->throttled && !st->stopping) {
        if (!s->host->spawn(s->svc))
            break; /* the core has logged why */
        started++;
    }
    if (started > 0)
        s->host->log(s->svc, CORRAL_LOG_INFO,
                     "spare: started %u, now %u processes, %u with a free slot", started,
                     st->process_count, st->process_avail);
}

static void *spare_new(const corral_host *host, corral_service *svc,
                       const corral_policy_value *values, char **error)
{
    struct spare *s = calloc(1, sizeof(*s));

    if (s == NULL) {
        *error = strdup("out of memory");
        return NULL;
    }
    s->host = host;
    s->svc = svc;
    s->state = host->state(svc);
    s->spare = (unsigned)values[KEY_SPARE].u;
    s->retry_after_msecs = (unsigned)values[KEY_RETRY_AFTER].u;
    return s;
}

static void spare_started(void *state)
{
    struct spare *s = state;

    s->host->log(s->svc, CORRAL_LOG_INFO, "spare: keeping %u processes with a free slot",
                 s->spare);
    top_up(s);
}

static void spare_status_changed(void *state, corral_process *proc, unsigned old_count)
{
    (void)proc;
    (void)old_count;
    top_up(state);
}

/* A process that died before its first status record will most likely
 * die again: pause instead of starting the next one at once. */
static void spare_process_exited(void *state, const corral_exit *exit)
{
    struct spare *s = state;

    if (exit->before_first_status && !s->state->throttled) {
        s->host->log(s->svc, CORRAL_LOG_WARNING,
                     "spare: process %d failed to start, pausing %u ms",
                     (int)exit->process->pid, s->retry_after_msecs);
        s->host->throttle(s->svc, s->retry_after_msecs);
        return;
    }
    top_up(s);
}

static void spare_throttle_ended(void *state)
{
    top_up(state);
}

static const corral_policy spare_policy = {
    .abi_version = CORRAL_POLICY_ABI_VERSION,
    .struct_size = sizeof(corral_policy),
    .name = "spare",
    .description = "keeps `spare` processes with a free slot",
    .keys = spare_keys,
    .service_new = spare_new,
    .service_free = free,
    .started = spare_started,
    .status_changed = spare_status_changed,
    .process_exited = spare_process_exited,
    .throttle_ended = spare_throttle_ended,
};

CORRAL_POLICY_DEFINE(spare, spare_policy)
