/* SPDX-License-Identifier: MIT */
/*
 * ondemand.c - no process until a client comes, none left long after the
 * last one has gone, as PHP-FPM's "ondemand" process manager does.
 *
 * A client that finds no free slot gets one new process (demand.h); at
 * process_limit clients wait in the listen backlog.  A process that has
 * had every slot free for process_idle_timeout, by its own timer from
 * the moment it became idle, is asked to leave with SIGINT.  Failing
 * startups throttle the service (spawner.h).
 */
#include <corral/policy.h>

#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "demand.h"
#include "idle.h"
#include "spawner.h"

#define USEC_PER_MSEC 1000u

enum { KEY_PROCESS_IDLE_TIMEOUT };

static const corral_policy_key ondemand_keys[] = {
    [KEY_PROCESS_IDLE_TIMEOUT] = { "process_idle_timeout", CORRAL_KEY_DURATION, "10s", 1,
                                   86400000, "idle time after which a process is asked to leave" },
    { NULL, 0, NULL, 0, 0, NULL },
};

struct ondemand_process;

struct ondemand_service {
    const corral_host *host;
    corral_service *svc;
    const corral_service_state *state;
    uint64_t idle_timeout_usec;
    struct spawner spawner;
    struct demand demand;
    struct ondemand_process *processes; /* those with a record here */
};

/* Hangs off corral_process.policy_data from its first idle timer on. */
struct ondemand_process {
    struct ondemand_service *service;
    corral_process *process;
    corral_timer *idle_timer;
    struct ondemand_process *prev, *next;
};

static struct ondemand_process *process_record(struct ondemand_service *os, corral_process *proc)
{
    struct ondemand_process *op = proc->policy_data;

    if (op != NULL)
        return op;
    op = calloc(1, sizeof(*op));
    if (op == NULL)
        return NULL;
    op->service = os;
    op->process = proc;
    op->next = os->processes;
    if (os->processes != NULL)
        os->processes->prev = op;
    os->processes = op;
    proc->policy_data = op;
    return op;
}

static void cancel_idle_timer(struct ondemand_service *os, struct ondemand_process *op)
{
    if (op != NULL && op->idle_timer != NULL) {
        os->host->timer_remove(os->svc, op->idle_timer);
        op->idle_timer = NULL;
    }
}

static void forget_process(struct ondemand_service *os, corral_process *proc)
{
    struct ondemand_process *op = proc->policy_data;

    if (op == NULL)
        return;
    cancel_idle_timer(os, op);
    if (op->prev != NULL)
        op->prev->next = op->next;
    else
        os->processes = op->next;
    if (op->next != NULL)
        op->next->prev = op->prev;
    proc->policy_data = NULL;
    free(op);
}

static void idle_timeout(void *data)
{
    struct ondemand_process *op = data;
    struct ondemand_service *os = op->service;

    op->idle_timer = NULL; /* one-shot: gone once it fired */
    if (idle_process_is_idle(os->state, op->process) && !idle_process_is_leaving(op->process))
        os->host->signal(os->svc, op->process->pid, SIGINT);
}

/* The timeout counts from when the process became idle, or from the
 * SIGINT it refused, so that a refusal is not answered by a new SIGINT
 * at once. */
static void arm_idle_timer(struct ondemand_service *os, corral_process *proc)
{
    struct ondemand_process *op = process_record(os, proc);
    uint64_t since, due, now = os->host->now_usec();
    uint64_t msecs = 0;

    if (op == NULL || op->idle_timer != NULL)
        return;
    since = proc->idle_since_usec > proc->last_kill_usec ? proc->idle_since_usec
                                                         : proc->last_kill_usec;
    due = since + os->idle_timeout_usec;
    if (due > now)
        msecs = (due - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC;
    if (msecs > UINT_MAX)
        msecs = UINT_MAX;
    op->idle_timer = os->host->timer_add(os->svc, (unsigned)msecs, false, idle_timeout, op);
}

static void *ondemand_service_new(const corral_host *host, corral_service *svc,
                                  const corral_policy_value *values, char **error)
{
    struct ondemand_service *os = calloc(1, sizeof(*os));

    if (os == NULL) {
        *error = strdup("out of memory");
        return NULL;
    }
    os->host = host;
    os->svc = svc;
    os->state = host->state(svc);
    os->idle_timeout_usec = values[KEY_PROCESS_IDLE_TIMEOUT].u * USEC_PER_MSEC;
    spawner_init(&os->spawner, host, svc);
    demand_init(&os->demand, &os->spawner);
    return os;
}

static void ondemand_service_free(void *state)
{
    struct ondemand_service *os = state;

    /* Processes alive at the stop get no process_exited. */
    while (os->processes != NULL) {
        struct ondemand_process *op = os->processes;
        os->processes = op->next;
        free(op);
    }
    free(os);
}

static void ondemand_start(void *state)
{
    struct ondemand_service *os = state;

    demand_start(&os->demand);
}

static void ondemand_stop(void *state)
{
    struct ondemand_service *os = state;

    for (struct ondemand_process *op = os->processes; op != NULL; op = op->next)
        cancel_idle_timer(os, op);
    demand_stop(&os->demand);
}

/* A record is the process's answer to any SIGINT before it, so only the
 * counts matter here. */
static void ondemand_status_changed(void *state, corral_process *proc, unsigned old_count)
{
    struct ondemand_service *os = state;

    (void)old_count;
    if (idle_process_is_idle(os->state, proc))
        arm_idle_timer(os, proc);
    else
        cancel_idle_timer(os, proc->policy_data);
    demand_update(&os->demand);
}

static void ondemand_listener_readable(void *state)
{
    struct ondemand_service *os = state;

    demand_client_waiting(&os->demand);
}

static void ondemand_process_exited(void *state, const corral_exit *exit)
{
    struct ondemand_service *os = state;

    forget_process(os, exit->process);
    spawner_process_exited(&os->spawner, exit);
    demand_update(&os->demand);
}

static void ondemand_throttle_ended(void *state)
{
    struct ondemand_service *os = state;

    demand_update(&os->demand);
}

static const corral_policy ondemand_policy = {
    .abi_version = CORRAL_POLICY_ABI_VERSION,
    .struct_size = sizeof(corral_policy),
    .name = "ondemand",
    .description = "starts a process when a client finds none free and asks a process to leave "
                   "after process_idle_timeout of idleness, like PHP-FPM's ondemand manager",
    .keys = ondemand_keys,
    .service_new = ondemand_service_new,
    .service_free = ondemand_service_free,
    .start = ondemand_start,
    .stop = ondemand_stop,
    .status_changed = ondemand_status_changed,
    .listener_readable = ondemand_listener_readable,
    .process_exited = ondemand_process_exited,
    .throttle_ended = ondemand_throttle_ended,
};

CORRAL_POLICY_DEFINE(ondemand, ondemand_policy)
