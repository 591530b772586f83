/* SPDX-License-Identifier: MIT */
/*
 * host.c - the simulated corrald described in host.h.
 *
 * Where it decides what the core decides (refusals, accounting on spawn,
 * status and exit), it follows core/service.c and core/host.c; keep them
 * in step.
 */
#include "host.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "accounting.h"
#include "process.h"
#include "workers.h"

#define USEC_PER_SEC 1000000u
#define FIRST_PID 1000

struct corral_timer {
    corral_service *svc;
    sim_event *event;       /* NULL while firing or once removed */
    unsigned msecs;
    bool repeat;
    bool firing;
    bool removed;
    corral_timer_fn *fn;
    void *data;
};

struct corral_service {
    corral_service_state state;
    const corral_policy *policy;
    void *policy_state;
    bool monitoring;
    GQueue processes;       /* corral_process*, by age */
    GPtrArray *timers;      /* corral_timer* armed by the policy */
    sim_event *throttle_end;
};

struct sim_host {
    corral_service service;
    sim_clock *clock;
    sim_connections *connections;
    sim_workers *workers;
    sim_host_options options;
    sim_host_counters counters;
    uint64_t spawn_counter;
    pid_t next_pid;
    uint32_t random_state;
    uint64_t counted_until; /* the process-time integral is up to here */
};

/* The one simulated host (see host.h). */
static sim_host *the_host;

#define POLICY_CALL(svc, method, ...)                                                   \
    do {                                                                                \
        if ((svc)->monitoring && !(svc)->state.stopping && (svc)->policy->method != NULL) \
            (svc)->policy->method((svc)->policy_state, ##__VA_ARGS__);                  \
    } while (0)

static sim_host *host_of(corral_service *svc)
{
    return (sim_host *)svc; /* the service is the host's first member */
}

static uint64_t now(const sim_host *host)
{
    return sim_clock_now(host->clock);
}

/* ------------------------------------------------------------------ */
/* Logging, as corrald prints it but with the simulated time.          */

static const char *const level_names[] = {
    [CORRAL_LOG_DEBUG] = "Debug",
    [CORRAL_LOG_INFO] = "Info",
    [CORRAL_LOG_WARNING] = "Warning",
    [CORRAL_LOG_ERROR] = "Error",
};

__attribute__((format(printf, 3, 4)))
static void sim_log(sim_host *host, corral_log_level level, const char *fmt, ...)
{
    uint64_t t = now(host) - host->options.epoch_usec;
    char text[2048];
    va_list args;

    if (level >= CORRAL_LOG_WARNING)
        host->counters.warnings++;
    if (!host->options.print_log || (level == CORRAL_LOG_DEBUG && !host->options.print_debug))
        return;
    va_start(args, fmt);
    vsnprintf(text, sizeof(text), fmt, args);
    va_end(args);
    fprintf(stderr, "%7llu.%03llu %s: service(%s): %s\n", (unsigned long long)(t / USEC_PER_SEC),
            (unsigned long long)(t % USEC_PER_SEC / 1000), level_names[level],
            host->service.state.name, text);
}

/* ------------------------------------------------------------------ */
/* Process time, for the mean number of processes.                     */

static void count_process_time(sim_host *host)
{
    uint64_t t = now(host);

    host->counters.process_usec +=
        (double)host->service.state.process_count * (double)(t - host->counted_until);
    host->counted_until = t;
}

static corral_process *find_process(corral_service *svc, pid_t pid)
{
    for (GList *link = svc->processes.head; link != NULL; link = link->next) {
        corral_process *proc = link->data;
        if (proc->pid == pid)
            return proc;
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* What the workers report.                                            */

static void worker_status(void *context, pid_t pid, unsigned count)
{
    sim_host *host = context;
    corral_service *svc = &host->service;
    corral_process *proc = find_process(svc, pid);
    unsigned old_count;

    if (proc == NULL)
        return; /* already reaped */
    old_count = corral_account_status(&svc->state, proc, count, now(host));
    POLICY_CALL(svc, status_changed, proc, old_count);
}

static void worker_exited(void *context, pid_t pid, int wait_status)
{
    sim_host *host = context;
    corral_service *svc = &host->service;
    corral_process *proc = find_process(svc, pid);
    char *text;
    corral_exit exit_info;

    if (proc == NULL)
        return;
    text = corral_exit_text(pid, wait_status, NULL);
    if (text != NULL) {
        sim_log(host, CORRAL_LOG_ERROR, "%s", text);
        g_free(text);
    }
    count_process_time(host);
    corral_account_exit(&svc->state, proc, wait_status, now(host), &exit_info);
    POLICY_CALL(svc, process_exited, &exit_info);
    g_queue_remove(&svc->processes, proc);
    g_free(proc);
}

/* ------------------------------------------------------------------ */
/* The host table.                                                     */

static const corral_service_state *host_state(corral_service *svc)
{
    return &svc->state;
}

static corral_process *host_process(corral_service *svc, pid_t pid)
{
    return find_process(svc, pid);
}

static corral_process *host_process_next(corral_service *svc, corral_process *prev)
{
    GList *link = svc->processes.head;

    if (prev != NULL) {
        link = g_queue_find(&svc->processes, prev);
        link = link != NULL ? link->next : NULL;
    }
    return link != NULL ? link->data : NULL;
}

static const char *refusal_reason(const corral_service *svc)
{
    if (svc->state.stopping)
        return "the service is stopping";
    if (svc->state.throttled)
        return "the service is throttled";
    if (svc->state.process_count >= svc->state.process_limit)
        return "process_limit reached";
    return NULL;
}

static bool host_spawn(corral_service *svc)
{
    sim_host *host = host_of(svc);
    corral_service_state *st = &svc->state;
    const char *refusal = refusal_reason(svc);
    corral_process *proc;

    if (refusal != NULL) {
        host->counters.refusals++;
        sim_log(host, CORRAL_LOG_WARNING,
                "policy %s asked for a process (%u of process_limit %u), refused: %s",
                svc->policy->name, st->process_count, st->process_limit, refusal);
        return false;
    }
    host->spawn_counter++;
    proc = g_new0(corral_process, 1);
    proc->pid = host->next_pid++;
    proc->available_count = st->client_limit;
    proc->created_usec = now(host);
    g_queue_push_tail(&svc->processes, proc);
    count_process_time(host);
    st->process_count++;
    if (st->client_limit > 0)
        st->process_avail++;
    if (st->process_count > host->counters.max_processes)
        host->counters.max_processes = st->process_count;
    host->counters.spawns++;
    sim_workers_start(host->workers, proc->pid);
    return true;
}

static uint64_t host_spawn_counter(void)
{
    return the_host->spawn_counter;
}

static bool signal_allowed(int signo)
{
    return signo == SIGINT || signo == SIGTERM || signo == SIGUSR1 || signo == SIGKILL;
}

static bool refuse_signal(sim_host *host, int signo)
{
    host->counters.refusals++;
    sim_log(host, CORRAL_LOG_WARNING,
            "policy %s asked to send signal %d, refused: policies may send SIGINT, SIGTERM, "
            "SIGUSR1 and SIGKILL",
            host->service.policy->name, signo);
    return false;
}

static bool host_signal(corral_service *svc, pid_t pid, int signo)
{
    sim_host *host = host_of(svc);
    corral_process *proc;

    if (!signal_allowed(signo))
        return refuse_signal(host, signo);
    proc = find_process(svc, pid);
    if (proc == NULL) {
        host->counters.refusals++;
        sim_log(host, CORRAL_LOG_WARNING,
                "policy %s asked to signal pid %d, refused: not a process of this service",
                svc->policy->name, (int)pid);
        return false;
    }
    if (!sim_workers_signal(host->workers, pid, signo))
        return false; /* ESRCH: it has exited and waits to be reaped */
    proc->last_kill_usec = now(host);
    if (signo == SIGINT)
        host->counters.sigints++;
    return true;
}

static unsigned host_signal_all(corral_service *svc, int signo)
{
    sim_host *host = host_of(svc);
    unsigned sent = 0;
    GList *link, *next;

    if (!signal_allowed(signo)) {
        refuse_signal(host, signo);
        return 0;
    }
    /* A signal may end a worker, but its record stays until the reap. */
    for (link = svc->processes.head; link != NULL; link = next) {
        corral_process *proc = link->data;

        next = link->next;
        if (!proc->initialized && signo != SIGKILL)
            continue;
        if (sim_workers_signal(host->workers, proc->pid, signo))
            sent++;
    }
    return sent;
}

static bool host_mark_busy(corral_service *svc, pid_t pid)
{
    corral_process *proc = find_process(svc, pid);

    if (proc == NULL)
        return false;
    if (proc->available_count > 0)
        svc->state.process_avail--;
    proc->available_count = 0;
    proc->idle_since_usec = 0;
    return true;
}

static void host_listen(corral_service *svc, bool on)
{
    sim_host *host = host_of(svc);

    if (on && (svc->state.throttled || svc->state.stopping)) {
        host->counters.refusals++;
        sim_log(host, CORRAL_LOG_WARNING, "policy %s asked to listen, refused: %s",
                svc->policy->name, refusal_reason(svc));
        return;
    }
    svc->state.listening = on;
}

static unsigned host_drop_queued(corral_service *svc)
{
    return sim_connections_drop(host_of(svc)->connections, 0);
}

static bool host_drop_one(corral_service *svc)
{
    return sim_connections_drop(host_of(svc)->connections, 1) == 1;
}

static unsigned host_queued_clients(corral_service *svc)
{
    return sim_connections_queued(host_of(svc)->connections);
}

static void throttle_over(void *data)
{
    corral_service *svc = data;

    svc->throttle_end = NULL;
    svc->state.throttled = false;
    POLICY_CALL(svc, throttle_ended);
}

static bool host_throttle(corral_service *svc, unsigned msecs)
{
    sim_host *host = host_of(svc);

    if (svc->state.throttled || svc->state.stopping)
        return false;
    /* With nobody left to serve them, waiting clients get EOF now. */
    if (svc->state.process_count == 0)
        sim_connections_drop(host->connections, 0);
    svc->state.listening = false;
    svc->state.throttled = true;
    svc->throttle_end = sim_clock_after(host->clock, (uint64_t)msecs * 1000, throttle_over, svc);
    host->counters.throttles++;
    return true;
}

static void host_login_notify(corral_service *svc, bool full)
{
    (void)svc;
    (void)full; /* simulated login workers need no notice */
}

static void timer_fire(void *data)
{
    corral_timer *timer = data;
    corral_service *svc = timer->svc;

    timer->event = NULL;
    timer->firing = true;
    timer->fn(timer->data);
    timer->firing = false;
    if (timer->repeat && !timer->removed) {
        timer->event = sim_clock_after(host_of(svc)->clock, (uint64_t)timer->msecs * 1000,
                                       timer_fire, timer);
        return;
    }
    /* One-shot, or removed from its own callback. */
    g_ptr_array_remove_fast(svc->timers, timer);
}

static corral_timer *host_timer_add(corral_service *svc, unsigned msecs, bool repeat,
                                    corral_timer_fn *fn, void *data)
{
    corral_timer *timer = g_new0(corral_timer, 1);

    timer->svc = svc;
    timer->msecs = msecs;
    timer->repeat = repeat;
    timer->fn = fn;
    timer->data = data;
    timer->event = sim_clock_after(host_of(svc)->clock, (uint64_t)msecs * 1000, timer_fire, timer);
    g_ptr_array_add(svc->timers, timer);
    return timer;
}

static void host_timer_remove(corral_service *svc, corral_timer *timer)
{
    if (timer == NULL || timer->removed)
        return;
    if (timer->firing) {
        timer->removed = true; /* timer_fire frees it on return */
        return;
    }
    if (timer->event != NULL)
        sim_clock_cancel(host_of(svc)->clock, timer->event);
    g_ptr_array_remove_fast(svc->timers, timer);
}

static uint64_t host_now_usec(void)
{
    return now(the_host);
}

static uint32_t host_random(uint32_t bound)
{
    uint32_t *state = &the_host->random_state;

    if (bound == 0)
        return 0;
    /* xorshift32: deterministic for a given seed */
    *state ^= *state << 13;
    *state ^= *state >> 17;
    *state ^= *state << 5;
    return *state % bound;
}

__attribute__((format(printf, 3, 4)))
static void host_log(corral_service *svc, corral_log_level level, const char *fmt, ...)
{
    char text[2048];
    va_list args;

    va_start(args, fmt);
    vsnprintf(text, sizeof(text), fmt, args);
    va_end(args);
    sim_log(host_of(svc), level, "%s", text);
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
};

/* ------------------------------------------------------------------ */
/* Life cycle.                                                         */

static void sync_limits_into_state(corral_service_state *st, const corral_service_config *config)
{
    st->name = config->name;
    st->type = config->type;
    st->process_limit = config->process_limit;
    st->process_min_avail = config->process_min_avail;
    st->client_limit = config->client_limit;
    st->service_count = config->service_count;
    st->idle_kill_secs = config->idle_kill_secs;
    st->have_listeners = true;
}

sim_host *sim_host_new(sim_clock *clock, sim_connections *connections,
                       const corral_service_config *config, const corral_policy *policy,
                       const corral_policy_value *values, const sim_host_options *options,
                       GError **error)
{
    sim_host *host;
    corral_service *svc;
    char *problem = NULL;
    const sim_worker_settings worker_settings = {
        .client_limit = config->client_limit,
        .service_count = config->service_count,
        .login = config->type == CORRAL_SERVICE_LOGIN,
        .startup_usec = options->startup_usec,
    };

    g_return_val_if_fail(the_host == NULL, NULL);
    host = g_new0(sim_host, 1);
    host->clock = clock;
    host->connections = connections;
    host->options = *options;
    host->next_pid = FIRST_PID;
    host->random_state = options->seed != 0 ? options->seed : 1;
    host->counted_until = sim_clock_now(clock);
    the_host = host;

    svc = &host->service;
    svc->policy = policy;
    svc->timers = g_ptr_array_new_with_free_func(g_free);
    g_queue_init(&svc->processes);
    sync_limits_into_state(&svc->state, config);
    host->workers = sim_workers_new(clock, connections, &worker_settings,
                                    &(sim_worker_listener){ worker_status, worker_exited, host });

    svc->policy_state = policy->service_new(&host_table, svc, values, &problem);
    if (svc->policy_state == NULL) {
        g_set_error(error, g_quark_from_static_string("corral-sim"), 0,
                    "policy %s refused the service: %s",
                    policy->name, problem != NULL ? problem : "no reason given");
        free(problem);
        sim_host_free(host);
        return NULL;
    }
    return host;
}

void sim_host_start(sim_host *host)
{
    corral_service *svc = &host->service;

    svc->monitoring = true;
    POLICY_CALL(svc, start);
    POLICY_CALL(svc, started);
}

void sim_host_stop(sim_host *host)
{
    corral_service *svc = &host->service;

    if (svc->monitoring) {
        POLICY_CALL(svc, stop);
        svc->monitoring = false;
    }
    svc->state.stopping = true;
    svc->state.listening = false;
    while (svc->timers->len > 0) {
        corral_timer *timer = g_ptr_array_index(svc->timers, 0);
        host_timer_remove(svc, timer);
    }
    if (svc->throttle_end != NULL) {
        sim_clock_cancel(host->clock, svc->throttle_end);
        svc->throttle_end = NULL;
    }
}

void sim_host_free(sim_host *host)
{
    corral_service *svc;

    if (host == NULL)
        return;
    svc = &host->service;
    sim_host_stop(host);
    if (svc->policy_state != NULL && svc->policy->service_free != NULL)
        svc->policy->service_free(svc->policy_state);
    sim_workers_free(host->workers);
    g_queue_clear_full(&svc->processes, g_free);
    g_ptr_array_unref(svc->timers);
    g_free(host);
    the_host = NULL;
}

void sim_host_connections_changed(sim_host *host)
{
    sim_workers_dispatch(host->workers);
}

/* Each delivery stands for one turn of corrald's loop.  A turn that
 * neither takes a connection out of the backlog nor starts a process
 * leaves the listener readable for the next turn at once: corrald would
 * spin until something else happens, which is counted, not simulated. */
void sim_host_finish_iteration(sim_host *host)
{
    corral_service *svc = &host->service;

    while (svc->state.listening && sim_connections_queued(host->connections) > 0 &&
           svc->monitoring && !svc->state.stopping) {
        unsigned queued = sim_connections_queued(host->connections);
        uint64_t spawns = host->spawn_counter;

        POLICY_CALL(svc, listener_readable);
        if (sim_connections_queued(host->connections) == queued && host->spawn_counter == spawns) {
            if (svc->state.listening)
                host->counters.busy_loops++;
            return;
        }
    }
}

const corral_service_state *sim_host_state(const sim_host *host)
{
    return &host->service.state;
}

unsigned sim_host_busy_slots(const sim_host *host)
{
    return sim_workers_busy_slots(host->workers);
}

const sim_host_counters *sim_host_counters_now(sim_host *host)
{
    count_process_time(host);
    return &host->counters;
}
