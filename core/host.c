/* SPDX-License-Identifier: MIT */
/*
 * host.c - the corral_host table handed to every policy.
 *
 * Each entry checks what the policy may ask before the service acts, so a
 * plugin cannot signal another service's processes, send a signal outside
 * the allowed set, or spawn past the limits that corral_service_spawn()
 * enforces.
 */
#include <signal.h>
#include <stdio.h>

#include "log.h"
#include "service.h"
#include "supervisor.h"

static const corral_service_state *host_state(corral_service *svc)
{
    return &svc->state;
}

static corral_process *host_process(corral_service *svc, pid_t pid)
{
    corral_process_record *record = corral_service_find_process(svc, pid);

    return record != NULL ? &record->view : NULL;
}

static corral_process *host_process_next(corral_service *svc, corral_process *prev)
{
    GList *link;

    if (prev == NULL) {
        link = svc->processes.head;
    } else {
        corral_process_record *record = corral_service_find_process(svc, prev->pid);
        link = record != NULL ? record->link.next : NULL;
    }
    return link != NULL ? &((corral_process_record *)link->data)->view : NULL;
}

static bool host_spawn(corral_service *svc)
{
    return corral_service_spawn(svc);
}

static uint64_t host_spawn_counter(void)
{
    return corral_supervisor_spawn_counter(corral_supervisor_get());
}

/* Policies ask processes to leave or re-read state; anything else (a
 * SIGSTOP, say) is refused and logged. */
static bool signal_allowed(corral_service *svc, int signo)
{
    if (signo == SIGINT || signo == SIGTERM || signo == SIGUSR1 || signo == SIGKILL)
        return true;
    corral_log(CORRAL_LEVEL_WARNING,
               "service(%s): policy %s asked to send signal %d, refused: "
               "policies may send SIGINT, SIGTERM, SIGUSR1 and SIGKILL",
               svc->config->name, svc->policy_module->name, signo);
    return false;
}

static bool host_signal(corral_service *svc, pid_t pid, int signo)
{
    corral_process_record *record;

    if (!signal_allowed(svc, signo))
        return false;
    record = corral_service_find_process(svc, pid);
    if (record == NULL) {
        corral_log(CORRAL_LEVEL_WARNING,
                   "service(%s): policy %s asked to signal pid %d, refused: "
                   "not a process of this service",
                   svc->config->name, svc->policy_module->name, (int)pid);
        return false;
    }
    return corral_service_signal(svc, record, signo);
}

static unsigned host_signal_all(corral_service *svc, int signo)
{
    if (!signal_allowed(svc, signo))
        return 0;
    return corral_service_signal_all(svc, signo);
}

static bool host_mark_busy(corral_service *svc, pid_t pid)
{
    corral_process_record *record = corral_service_find_process(svc, pid);

    return record != NULL && corral_service_mark_busy(svc, record);
}

static void host_listen(corral_service *svc, bool on)
{
    corral_service_listen(svc, on);
}

static unsigned host_drop_queued(corral_service *svc)
{
    return corral_service_drop_queued(svc, 0);
}

static unsigned host_queued_clients(corral_service *svc)
{
    return corral_service_queued_clients(svc);
}

static bool host_drop_one(corral_service *svc)
{
    return corral_service_drop_queued(svc, 1) == 1;
}

static bool host_throttle(corral_service *svc, unsigned msecs)
{
    return corral_service_throttle(svc, msecs);
}

static void host_login_notify(corral_service *svc, bool full)
{
    corral_service_login_notify(svc, full);
}

static corral_timer *host_timer_add(corral_service *svc, unsigned msecs, bool repeat,
                                    corral_timer_fn *fn, void *data)
{
    return corral_service_timer_add(svc, msecs, repeat, fn, data);
}

static void host_timer_remove(corral_service *svc, corral_timer *timer)
{
    corral_service_timer_remove(svc, timer);
}

static uint64_t host_now_usec(void)
{
    return corral_supervisor_now_usec();
}

static uint32_t host_random(uint32_t bound)
{
    return bound == 0 ? 0 : (uint32_t)g_random_int_range(0, (gint32)MIN(bound, (uint32_t)G_MAXINT32));
}

static corral_level level_from_policy(corral_log_level level)
{
    switch (level) {
    case CORRAL_LOG_DEBUG: return CORRAL_LEVEL_DEBUG;
    case CORRAL_LOG_INFO: return CORRAL_LEVEL_INFO;
    case CORRAL_LOG_WARNING: return CORRAL_LEVEL_WARNING;
    case CORRAL_LOG_ERROR: return CORRAL_LEVEL_ERROR;
    }
    return CORRAL_LEVEL_ERROR;
}

__attribute__((format(printf, 3, 4)))
static void host_log(corral_service *svc, corral_log_level level, const char *fmt, ...)
{
    char text[2048];
    va_list args;

    va_start(args, fmt);
    vsnprintf(text, sizeof(text), fmt, args);
    va_end(args);
    corral_log_about_line(level_from_policy(level),
                          &(corral_log_about){ svc->config->name, svc->policy_module->name, 0 },
                          "service(%s): %s", svc->config->name, text);
}

static void host_sample_load(corral_service *svc, unsigned interval_msecs)
{
    corral_service_sample_load(svc, interval_msecs);
}

static const corral_host host_table = {
    .state = host_state,
    .process = host_process,
    .process_next = host_process_next,
    .spawn = host_spawn,
    .spawn_counter = host_spawn_counter,
    .signal = host_signal,
    .signal_all = host_signal_all,
    .mark_busy = host_mark_busy,
    .listen = host_listen,
    .drop_queued = host_drop_queued,
    .drop_one = host_drop_one,
    .throttle = host_throttle,
    .login_notify = host_login_notify,
    .timer_add = host_timer_add,
    .timer_remove = host_timer_remove,
    .now_usec = host_now_usec,
    .random = host_random,
    .log = host_log,
    .queued_clients = host_queued_clients,
    .sample_load = host_sample_load,
};

const corral_host *corral_host_get(void)
{
    return &host_table;
}
