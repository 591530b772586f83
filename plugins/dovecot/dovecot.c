/* SPDX-License-Identifier: MIT */
/*
 * dovecot.c - the default policy: the service monitor of Dovecot 2.3.19.1.
 *
 * Every decision Dovecot's master takes for a service is taken here, with
 * the same thresholds, timers and log lines; README.md lists the rules
 * (M1-M27 of the reference) and where each one lives.  The core keeps the
 * accounting (process_count, process_avail, each process's
 * available_count) and does the forking, signalling, accepting and
 * timing, so this file only decides when.
 *
 * What only this file knows about a service: whether it is full and
 * inside the 10 s grace period before queued clients are dropped
 * ("pending"), the length of the next throttle, the prefork timer and the
 * spawn counter it last saw, when the drop warning was last logged, the
 * login FULL/NONFULL state and when processes were last told about it,
 * and one idle timer for each surplus idle process.
 */
#include <corral/policy.h>

#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#define USEC_PER_SEC 1000000u

#define DROP_TIMEOUT_MSECS 10000
#define DROP_WARNING_INTERVAL_SECS 1
#define WORKER_DROP_WARNING_MSECS 500
#define THROTTLE_MIN_MSECS 2000
#define THROTTLE_MAX_MSECS 60000
#define EXIT_FAILURES_PER_SEC_MAX 10
#define PREFORK_BATCH 10
#define IDLE_JITTER_STEPS 100
#define IDLE_JITTER_STEP_MSECS 10
#define LOGIN_SIGNAL_INTERVAL_SECS 2

struct dovecot_process;

struct dovecot_service {
    const corral_host *host;
    corral_service *svc;
    const corral_service_state *state;
    bool stopped;

    /* Full: listening is paused until the drop timer fires, after which
     * queued clients are accepted and closed. */
    bool listen_pending;
    corral_timer *drop_timer;
    corral_timer *drop_warning_timer; /* worker services only */
    bool drop_warned;
    uint64_t drop_warned_sec;
    uint64_t drop_warned_usec; /* the same moment, for doveadm */

    unsigned throttle_msecs; /* length of the next throttle */

    corral_timer *prefork_timer;
    uint64_t prefork_spawn_counter;

    bool login_full;          /* the state last published */
    bool login_signalled;
    uint64_t login_signalled_sec;
    corral_timer *login_signal_timer;

    struct dovecot_process *processes; /* those with a record here */
};

/* Hangs off corral_process.policy_data from the first idle timer on. */
struct dovecot_process {
    struct dovecot_service *service;
    corral_process *process;
    corral_timer *idle_timer;
    /* When the idle SIGINT was attempted: Dovecot counts the attempt even
     * when kill() fails, which last_kill_usec (successes only) would not. */
    uint64_t idle_sigint_usec;
    struct dovecot_process *prev, *next;
};

static uint64_t now_sec(const struct dovecot_service *ds)
{
    return ds->host->now_usec() / USEC_PER_SEC;
}

static bool is_stopping(const struct dovecot_service *ds)
{
    return ds->stopped || ds->state->stopping;
}

static bool is_type(const struct dovecot_service *ds, corral_service_type type)
{
    return ds->state->type == type;
}

static void remove_timer(struct dovecot_service *ds, corral_timer **timer)
{
    if (*timer != NULL) {
        ds->host->timer_remove(ds->svc, *timer);
        *timer = NULL;
    }
}

/* ------------------------------------------------------------------ */
/* Per-process records.                                                */

static struct dovecot_process *process_record(struct dovecot_service *ds, corral_process *proc)
{
    struct dovecot_process *dp = proc->policy_data;

    if (dp != NULL)
        return dp;
    dp = calloc(1, sizeof(*dp));
    if (dp == NULL)
        return NULL;
    dp->service = ds;
    dp->process = proc;
    dp->next = ds->processes;
    if (ds->processes != NULL)
        ds->processes->prev = dp;
    ds->processes = dp;
    proc->policy_data = dp;
    return dp;
}

static void unlink_process_record(struct dovecot_service *ds, struct dovecot_process *dp)
{
    if (dp->prev != NULL)
        dp->prev->next = dp->next;
    else
        ds->processes = dp->next;
    if (dp->next != NULL)
        dp->next->prev = dp->prev;
}

static void cancel_idle_timer(struct dovecot_service *ds, corral_process *proc)
{
    struct dovecot_process *dp = proc->policy_data;

    if (dp != NULL)
        remove_timer(ds, &dp->idle_timer);
}

static void forget_process(struct dovecot_service *ds, corral_process *proc)
{
    struct dovecot_process *dp = proc->policy_data;

    if (dp == NULL)
        return;
    remove_timer(ds, &dp->idle_timer);
    unlink_process_record(ds, dp);
    proc->policy_data = NULL;
    free(dp);
}

/* ------------------------------------------------------------------ */
/* Login notification (M24).                                            */

static void login_signal_now(struct dovecot_service *ds)
{
    remove_timer(ds, &ds->login_signal_timer);
    ds->login_signalled = true;
    ds->login_signalled_sec = now_sec(ds);
    ds->host->signal_all(ds->svc, SIGUSR1);
}

static void login_signal_timeout(void *data)
{
    struct dovecot_service *ds = data;

    ds->login_signal_timer = NULL; /* one-shot: gone once it fired */
    login_signal_now(ds);
}

/* The state itself is published at once; only the SIGUSR1 that makes
 * processes look at it is held back to one per interval. */
static void login_notify(struct dovecot_service *ds, bool full)
{
    uint64_t elapsed;

    if (!is_type(ds, CORRAL_SERVICE_LOGIN) || is_stopping(ds) || ds->login_full == full)
        return;
    ds->login_full = full;
    ds->host->login_notify(ds->svc, full);

    elapsed = now_sec(ds) - ds->login_signalled_sec;
    if (ds->login_signalled && elapsed < LOGIN_SIGNAL_INTERVAL_SECS) {
        if (ds->login_signal_timer == NULL) {
            unsigned wait_msecs = (unsigned)(LOGIN_SIGNAL_INTERVAL_SECS - elapsed) * 1000;
            ds->login_signal_timer = ds->host->timer_add(ds->svc, wait_msecs, false,
                                                         login_signal_timeout, ds);
        }
        return;
    }
    login_signal_now(ds);
}

/* ------------------------------------------------------------------ */
/* Listening on behalf of the service (M3-M5).                         */

static void forget_drop_state(struct dovecot_service *ds)
{
    ds->listen_pending = false;
    remove_timer(ds, &ds->drop_timer);
    remove_timer(ds, &ds->drop_warning_timer);
}

/* M4 */
static void listen_stop(struct dovecot_service *ds)
{
    if (ds->state->listening)
        ds->host->listen(ds->svc, false);
    forget_drop_state(ds);
}

static void listen_start_now(struct dovecot_service *ds)
{
    if (!ds->state->listening)
        ds->host->listen(ds->svc, true);
    forget_drop_state(ds);
}

/* M5: the master watches the listeners only while no process can take a
 * client, and not while a full service waits out its drop timer. */
static void listen_start(struct dovecot_service *ds)
{
    const corral_service_state *st = ds->state;

    if (st->process_avail > 0 || st->throttled || is_stopping(ds) ||
        (st->process_count == st->process_limit && ds->listen_pending))
        return;
    listen_start_now(ds);
}

/* ------------------------------------------------------------------ */
/* Throttling (M20).                                                   */

static void throttle(struct dovecot_service *ds)
{
    unsigned msecs = ds->throttle_msecs;

    if (ds->state->throttled || is_stopping(ds))
        return;
    ds->host->log(ds->svc, CORRAL_LOG_ERROR, "command startup failed, throttling for %u.%03u secs",
                  msecs / 1000, msecs % 1000);
    if (!ds->host->throttle(ds->svc, msecs))
        return;
    /* The core stopped listening; a throttle ends any drop grace period. */
    forget_drop_state(ds);
    ds->throttle_msecs = msecs >= THROTTLE_MAX_MSECS / 2 ? THROTTLE_MAX_MSECS : msecs * 2;
}

/* Dovecot fails a spawn quietly while throttled or stopping.  Asking the
 * core anyway would only add its refusal to the log. */
static bool spawn_one(struct dovecot_service *ds)
{
    const corral_service_state *st = ds->state;

    if (st->throttled || is_stopping(ds) || st->process_count >= st->process_limit)
        return false;
    return ds->host->spawn(ds->svc);
}

/* ------------------------------------------------------------------ */
/* Pre-forking for process_min_avail (M10, M12, M13).                 */

/* M12: true when the whole batch was created. */
static bool start_processes(struct dovecot_service *ds, unsigned batch)
{
    const corral_service_state *st = ds->state;
    unsigned wanted = st->process_min_avail > st->process_avail
                          ? st->process_min_avail - st->process_avail : 0;
    unsigned room = st->process_limit > st->process_count
                        ? st->process_limit - st->process_count : 0;
    unsigned count = wanted < room ? wanted : room;
    unsigned created = 0;

    if (count > batch)
        count = batch;
    for (; created < count; created++) {
        if (!spawn_one(ds)) {
            throttle(ds);
            break;
        }
    }
    if (created > 0)
        listen_stop(ds); /* the new processes take the clients now */
    return created >= batch;
}

/* M13.  A change in the spawn counter since the last tick means the
 * master has been forking for someone else; wait for a quiet tick. */
static void prefork_tick(void *data)
{
    struct dovecot_service *ds = data;
    const corral_service_state *st = ds->state;
    uint64_t counter = ds->host->spawn_counter();

    if (counter != ds->prefork_spawn_counter) {
        ds->prefork_spawn_counter = counter;
        return;
    }
    if (st->process_avail < st->process_min_avail && start_processes(ds, PREFORK_BATCH) &&
        st->process_avail < st->process_min_avail)
        return;
    remove_timer(ds, &ds->prefork_timer);
}

/* M10 */
static void start_extra_avail(struct dovecot_service *ds)
{
    const corral_service_state *st = ds->state;

    if (st->process_avail >= st->process_min_avail || st->process_count >= st->process_limit ||
        is_stopping(ds))
        return;
    if (st->process_avail == 0) {
        /* Nobody can take a client: one process right now. */
        if (!start_processes(ds, 1) || st->process_avail >= st->process_min_avail)
            return;
    }
    if (ds->prefork_timer == NULL) {
        /* A timer rather than a loop, so that forks made for clients in
         * this loop iteration are seen before preforking starts. */
        ds->prefork_timer = ds->host->timer_add(ds->svc, 0, true, prefork_tick, ds);
    }
}

/* ------------------------------------------------------------------ */
/* Idle processes (M11, M11a).                                         */

/* M8's tail: a process has no free slot any more. */
static void process_filled(struct dovecot_service *ds)
{
    const corral_service_state *st = ds->state;

    if (is_type(ds, CORRAL_SERVICE_LOGIN) && st->process_avail == 0 &&
        st->process_count == st->process_limit)
        login_notify(ds, true);
    start_extra_avail(ds);
    listen_start(ds);
}

/* M11a */
static void idle_tick(void *data)
{
    struct dovecot_process *dp = data;
    struct dovecot_service *ds = dp->service;
    const corral_service_state *st = ds->state;
    corral_process *proc = dp->process;

    if (st->process_avail <= st->process_min_avail) {
        remove_timer(ds, &dp->idle_timer);
        return;
    }
    /* A process that refuses SIGINT still sends a status record, so
     * silence for more than a second after the signal means it hangs. */
    if (dp->idle_sigint_usec != 0 &&
        dp->idle_sigint_usec / USEC_PER_SEC > proc->last_status_usec / USEC_PER_SEC + 1) {
        ds->host->log(ds->svc, CORRAL_LOG_ERROR, "Process %d is ignoring idle SIGINT",
                      (int)proc->pid);
        remove_timer(ds, &dp->idle_timer);
        ds->host->mark_busy(ds->svc, proc->pid);
        process_filled(ds);
        return;
    }
    ds->host->signal(ds->svc, proc->pid, SIGINT);
    dp->idle_sigint_usec = ds->host->now_usec();
}

/* M11: only processes beyond process_min_avail are asked to leave, each
 * on its own jittered timer so that they do not all go at once. */
static void check_idle(struct dovecot_service *ds, corral_process *proc)
{
    const corral_service_state *st = ds->state;
    struct dovecot_process *dp;
    uint64_t msecs;

    if (proc->available_count != st->client_limit ||
        st->process_avail <= st->process_min_avail ||
        st->idle_kill_secs == CORRAL_IDLE_KILL_NEVER)
        return;
    dp = process_record(ds, proc);
    if (dp == NULL || dp->idle_timer != NULL)
        return;
    msecs = (uint64_t)st->idle_kill_secs * 1000 +
            (uint64_t)ds->host->random(IDLE_JITTER_STEPS) * IDLE_JITTER_STEP_MSECS;
    if (msecs > UINT_MAX)
        msecs = UINT_MAX;
    dp->idle_timer = ds->host->timer_add(ds->svc, (unsigned)msecs, true, idle_tick, dp);
}

/* ------------------------------------------------------------------ */
/* Dropping clients at process_limit (M14-M17).                        */

/* M14 */
static void log_drop_warning(struct dovecot_service *ds)
{
    const corral_service_state *st = ds->state;
    uint64_t now = now_sec(ds);
    const char *limit_name;
    unsigned limit;

    if (ds->drop_warned && ds->drop_warned_sec + DROP_WARNING_INTERVAL_SECS > now)
        return;
    ds->drop_warned = true;
    ds->drop_warned_sec = now;
    ds->drop_warned_usec = ds->host->now_usec();
    if (st->process_limit > 1) {
        limit_name = "process_limit";
        limit = st->process_limit;
    } else if (st->service_count == 1) {
        limit_name = "client_limit/service_count";
        limit = 1;
    } else {
        limit_name = "client_limit";
        limit = st->client_limit;
    }
    ds->host->log(ds->svc, CORRAL_LOG_WARNING,
                  "%s (%u) reached, client connections are being dropped", limit_name, limit);
}

static void drop_warning_tick(void *data)
{
    log_drop_warning(data);
}

/* M17: the grace period is over; clients still queued are refused by
 * closing them, and so is every later one until capacity returns. */
static void drop_timeout(void *data)
{
    struct dovecot_service *ds = data;

    ds->drop_timer = NULL; /* one-shot: gone once it fired */
    ds->host->drop_queued(ds->svc);
    listen_start_now(ds);
    ds->listen_pending = true;
}

/* M16: maybe a short peak; stop watching and give processes 10 s. */
static void enter_pending(struct dovecot_service *ds)
{
    listen_stop(ds);
    ds->listen_pending = true;
    ds->drop_timer = ds->host->timer_add(ds->svc, DROP_TIMEOUT_MSECS, false, drop_timeout, ds);
}

/* M15 */
static void limit_reached(struct dovecot_service *ds)
{
    /* Workers at their limit are normal; warn only if it lasts. */
    if (!is_type(ds, CORRAL_SERVICE_WORKER))
        log_drop_warning(ds);

    if (is_type(ds, CORRAL_SERVICE_LOGIN)) {
        /* Login processes make room themselves by closing their
         * oldest unauthenticated client. */
        login_notify(ds, true);
        enter_pending(ds);
    } else if (!ds->listen_pending) {
        enter_pending(ds);
        if (is_type(ds, CORRAL_SERVICE_WORKER) && ds->drop_warning_timer == NULL)
            ds->drop_warning_timer = ds->host->timer_add(ds->svc, WORKER_DROP_WARNING_MSECS, true,
                                                         drop_warning_tick, ds);
    } else {
        /* Closing at once tells the client it is the limit, not a
         * slow process. */
        ds->host->drop_one(ds->svc);
    }
}

/* ------------------------------------------------------------------ */
/* Callbacks.                                                           */

static void *dovecot_service_new(const corral_host *host, corral_service *svc,
                                 const corral_policy_value *values, char **error)
{
    struct dovecot_service *ds = calloc(1, sizeof(*ds));

    (void)values;
    if (ds == NULL) {
        *error = strdup("out of memory");
        return NULL;
    }
    ds->host = host;
    ds->svc = svc;
    ds->state = host->state(svc);
    ds->throttle_msecs = THROTTLE_MIN_MSECS;
    return ds;
}

static void dovecot_service_free(void *state)
{
    struct dovecot_service *ds = state;

    /* The core may free processes that outlive the policy without
     * reporting their exit, so free the records from our own list. */
    while (ds->processes != NULL) {
        struct dovecot_process *dp = ds->processes;
        ds->processes = dp->next;
        free(dp);
    }
    free(ds);
}

/* M1 */
static void dovecot_start(void *state)
{
    struct dovecot_service *ds = state;

    ds->stopped = false;
    listen_start(ds);
}

/* M2 */
static void dovecot_started(void *state)
{
    struct dovecot_service *ds = state;

    start_extra_avail(ds);
    if (is_type(ds, CORRAL_SERVICE_STARTUP) && spawn_one(ds))
        listen_stop(ds);
}

/* M25.  The processes' idle timers stay: they still ask surplus idle
 * processes to leave until the processes are gone (the core keeps them,
 * CORRAL_POLICY_TIMERS_OUTLIVE_STOP). */
static void dovecot_stop(void *state)
{
    struct dovecot_service *ds = state;

    ds->stopped = true;
    remove_timer(ds, &ds->prefork_timer);
    remove_timer(ds, &ds->login_signal_timer);
    listen_stop(ds);
}

/* M7's outcome: M8 on a decrease, M9 on an increase, M11 always. */
static void dovecot_status_changed(void *state, corral_process *proc, unsigned old_count)
{
    struct dovecot_service *ds = state;
    const corral_service_state *st = ds->state;

    if (is_stopping(ds))
        return;
    if (proc->available_count < old_count) {
        cancel_idle_timer(ds, proc);
        if (proc->available_count == 0)
            process_filled(ds);
    } else if (proc->available_count > old_count) {
        remove_timer(ds, &ds->drop_warning_timer);
        if (old_count == 0 && st->process_avail == 1)
            listen_stop(ds); /* the first free slot: the process listens */
        if (is_type(ds, CORRAL_SERVICE_LOGIN))
            login_notify(ds, false);
    }
    check_idle(ds, proc);
}

/* M6 */
static void dovecot_listener_readable(void *state)
{
    struct dovecot_service *ds = state;

    if (is_stopping(ds))
        return;
    if (ds->state->process_count >= ds->state->process_limit) {
        limit_reached(ds);
        return;
    }
    /* The new process accepts the waiting client itself. */
    if (spawn_one(ds))
        listen_stop(ds);
    else
        throttle(ds);
}

/* M21 */
static void dovecot_process_exited(void *state, const corral_exit *exit)
{
    struct dovecot_service *ds = state;
    const corral_service_state *st = ds->state;
    bool throttle_now = false;

    if (exit->success) {
        ds->throttle_msecs = THROTTLE_MIN_MSECS;
    } else if (exit->before_first_status) {
        throttle_now = true;
    } else if (!st->have_success && st->exit_failures_in_sec > EXIT_FAILURES_PER_SEC_MAX) {
        /* After one clean exit a crashing client cannot use this to
         * stop the service. */
        throttle_now = true;
    }

    forget_process(ds, exit->process);
    if (is_type(ds, CORRAL_SERVICE_LOGIN) && st->process_count < st->process_limit)
        login_notify(ds, false);
    if (throttle_now)
        throttle(ds);
    if (is_stopping(ds))
        return;
    start_extra_avail(ds);
    if (!st->throttled)
        listen_start(ds);
}

/* M20's end: only listen again; new processes wait for a client or an
 * exit. */
static void dovecot_throttle_ended(void *state)
{
    struct dovecot_service *ds = state;

    if (!is_stopping(ds))
        listen_start(ds);
}

/* doveadm's view, as Dovecot's master reports it. */
static void dovecot_report(void *state, corral_policy_report *report)
{
    struct dovecot_service *ds = state;

    /* The length the next throttle will have. */
    report->throttle_secs = ds->state->throttled ? (ds->throttle_msecs + 999) / 1000 : 0;
    report->last_drop_warning_usec = ds->drop_warned ? ds->drop_warned_usec : 0;
    report->listen_pending = ds->listen_pending;
}

static const corral_policy dovecot_policy = {
    .abi_version = CORRAL_POLICY_ABI_VERSION,
    .struct_size = sizeof(corral_policy),
    .name = "dovecot",
    .description = "scales like Dovecot 2.3.19.1's master: forks on demand, keeps "
                   "process_min_avail ready, kills surplus idle processes, throttles failing "
                   "startups and drops clients at process_limit",
    .keys = NULL,
    .service_new = dovecot_service_new,
    .service_free = dovecot_service_free,
    .start = dovecot_start,
    .started = dovecot_started,
    .stop = dovecot_stop,
    .status_changed = dovecot_status_changed,
    .listener_readable = dovecot_listener_readable,
    .process_exited = dovecot_process_exited,
    .throttle_ended = dovecot_throttle_ended,
    .flags = CORRAL_POLICY_TIMERS_OUTLIVE_STOP,
    .report = dovecot_report,
};

CORRAL_POLICY_DEFINE(dovecot, dovecot_policy)
