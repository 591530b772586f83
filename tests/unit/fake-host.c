/* SPDX-License-Identifier: MIT */
/*
 * fake-host.c - the fake corral_host described in fake-host.h.
 *
 * Status and exit records are counted by the core's own accounting.c.
 * Where the fake decides something else the core also decides (refusals,
 * accounting on spawn), it follows core/service.c; keep the two in step.
 */
#include "fake-host.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accounting.h"

#include <setjmp.h>
#include <cmocka.h>

struct corral_timer {
    corral_service *svc;
    unsigned msecs;
    bool repeat;
    bool internal;  /* the fake's own throttle timer */
    bool armed;     /* will fire when due */
    bool released;  /* the policy may no longer name it */
    bool firing;
    corral_timer_fn *fn;
    void *data;
    uint64_t due_usec;
    uint64_t seq;
    struct corral_timer *next;
};

struct fake_process {
    corral_process view; /* first, so a corral_process* leads back here */
    struct fake_process *next;
};

/* One array handed out by fake_host_policy_values(), with the copies of
 * its string values. */
struct policy_values {
    corral_policy_value *values;
    char **strings;
    size_t count;
    struct policy_values *next;
};

struct corral_service {
    corral_service_state state;
    char *name;
    const corral_policy *policy;
    void *policy_state;
    bool monitoring;
    struct fake_process *processes; /* creation order */
    unsigned queued;
    unsigned sample_interval;    /* last sample_load ask; 0 = none */
    unsigned failing_spawns;
    corral_timer *throttle_timer;
    struct corral_service *next;
};

static struct {
    bool initialized;
    bool trace;
    uint64_t now;
    uint64_t spawn_counter;
    pid_t next_pid;
    uint64_t timer_seq;
    corral_timer *timers; /* also released ones, freed at deinit */
    corral_service *services;
    fake_action *actions;
    size_t action_count, action_capacity;
    uint32_t *random_values;
    size_t random_count, random_next;
    uint32_t random_state;
    struct policy_values *policy_values; /* from fake_host_policy_values() */
} fake;

/* ------------------------------------------------------------------ */
/* Recording.                                                          */

static const char *kind_name(fake_action_kind kind)
{
    static const char *const names[] = {
        [FAKE_SPAWN] = "spawn",
        [FAKE_SPAWN_FAILED] = "spawn-failed",
        [FAKE_SIGNAL] = "signal",
        [FAKE_SIGNAL_ALL] = "signal-all",
        [FAKE_MARK_BUSY] = "mark-busy",
        [FAKE_LISTEN] = "listen",
        [FAKE_DROP_QUEUED] = "drop-queued",
        [FAKE_DROP_ONE] = "drop-one",
        [FAKE_THROTTLE] = "throttle",
        [FAKE_LOGIN_NOTIFY] = "login-notify",
        [FAKE_LOG] = "log",
        [FAKE_REFUSED] = "refused",
    };
    return names[kind];
}

static fake_action *record(corral_service *svc, fake_action_kind kind)
{
    fake_action *action;

    if (fake.action_count == fake.action_capacity) {
        fake.action_capacity = fake.action_capacity == 0 ? 64 : fake.action_capacity * 2;
        fake.actions = realloc(fake.actions, fake.action_capacity * sizeof(*fake.actions));
        assert_non_null(fake.actions);
    }
    action = &fake.actions[fake.action_count++];
    memset(action, 0, sizeof(*action));
    action->kind = kind;
    action->svc = svc;
    action->usec = fake.now;
    return action;
}

static void trace(const fake_action *action)
{
    char detail[64] = "";

    if (!fake.trace)
        return;
    switch (action->kind) {
    case FAKE_SPAWN:
    case FAKE_MARK_BUSY:
        snprintf(detail, sizeof(detail), "pid %d", (int)action->pid);
        break;
    case FAKE_SIGNAL:
        snprintf(detail, sizeof(detail), "pid %d signal %d", (int)action->pid, action->signo);
        break;
    case FAKE_SIGNAL_ALL:
        snprintf(detail, sizeof(detail), "signal %d to %u", action->signo, action->count);
        break;
    case FAKE_LISTEN:
    case FAKE_LOGIN_NOTIFY:
        snprintf(detail, sizeof(detail), "%s", action->on ? "on" : "off");
        break;
    case FAKE_DROP_QUEUED:
    case FAKE_DROP_ONE:
        snprintf(detail, sizeof(detail), "%u closed", action->count);
        break;
    case FAKE_THROTTLE:
        snprintf(detail, sizeof(detail), "%u ms", action->msecs);
        break;
    case FAKE_REFUSED:
        snprintf(detail, sizeof(detail), "%s", kind_name(action->refused));
        break;
    case FAKE_SPAWN_FAILED:
    case FAKE_LOG:
        break;
    }
    fprintf(stderr, "[%llu.%06llu] %s %s %s%s\n", (unsigned long long)(action->usec / 1000000),
            (unsigned long long)(action->usec % 1000000), action->svc->name,
            kind_name(action->kind), detail, action->text != NULL ? action->text : "");
}

static void record_refusal(corral_service *svc, fake_action_kind request)
{
    fake_action *action = record(svc, FAKE_REFUSED);

    action->refused = request;
    trace(action);
}

/* ------------------------------------------------------------------ */
/* Lookups.                                                            */

static struct fake_process *find_process(corral_service *svc, pid_t pid)
{
    for (struct fake_process *p = svc->processes; p != NULL; p = p->next) {
        if (p->view.pid == pid)
            return p;
    }
    return NULL;
}

static struct fake_process *require_process(corral_service *svc, pid_t pid)
{
    struct fake_process *p = find_process(svc, pid);

    if (p == NULL) {
        fail_msg("service %s has no process %d", svc->name, (int)pid);
        abort(); /* not reached: fail_msg leaves the test */
    }
    return p;
}

/* Policy callbacks are delivered only while the service is monitored. */
static bool policy_listens(const corral_service *svc)
{
    return svc->policy != NULL && svc->monitoring && !svc->state.stopping;
}

/* As the core reads CORRAL_POLICY_TIMERS_OUTLIVE_STOP: version 3 on. */
static bool timers_outlive_stop(const corral_service *svc)
{
    return svc->policy != NULL && svc->policy->abi_version >= 3 &&
           (svc->policy->flags & CORRAL_POLICY_TIMERS_OUTLIVE_STOP) != 0;
}

/* ------------------------------------------------------------------ */
/* Timers.                                                             */

static corral_timer *timer_new(corral_service *svc, unsigned msecs, bool repeat,
                               corral_timer_fn *fn, void *data, bool internal)
{
    corral_timer *timer = calloc(1, sizeof(*timer));

    assert_non_null(timer);
    timer->svc = svc;
    timer->msecs = msecs;
    timer->repeat = repeat;
    timer->internal = internal;
    timer->armed = true;
    timer->fn = fn;
    timer->data = data;
    timer->due_usec = fake.now + (uint64_t)msecs * 1000;
    timer->seq = fake.timer_seq++;
    timer->next = fake.timers;
    fake.timers = timer;
    return timer;
}

static void timer_release(corral_timer *timer)
{
    timer->armed = false;
    timer->released = true;
}

static int timer_order(const void *a, const void *b)
{
    const corral_timer *x = *(corral_timer *const *)a;
    const corral_timer *y = *(corral_timer *const *)b;

    if (x->due_usec != y->due_usec)
        return x->due_usec < y->due_usec ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static bool next_due_after(uint64_t after, uint64_t *due)
{
    bool found = false;

    for (corral_timer *t = fake.timers; t != NULL; t = t->next) {
        if (t->armed && t->due_usec > after && (!found || t->due_usec < *due)) {
            *due = t->due_usec;
            found = true;
        }
    }
    return found;
}

static void fire_due_timers(void)
{
    corral_timer **due = NULL;
    size_t count = 0, capacity = 0;

    /* Only timers due when the iteration starts fire in it. */
    for (corral_timer *t = fake.timers; t != NULL; t = t->next) {
        if (!t->armed || t->due_usec > fake.now)
            continue;
        if (count == capacity) {
            capacity = capacity == 0 ? 16 : capacity * 2;
            due = realloc(due, capacity * sizeof(*due));
            assert_non_null(due);
        }
        due[count++] = t;
    }
    if (count > 1)
        qsort(due, count, sizeof(*due), timer_order);

    for (size_t i = 0; i < count; i++) {
        corral_timer *timer = due[i];

        if (!timer->armed)
            continue; /* removed by an earlier callback */
        if (timer->repeat)
            timer->due_usec = fake.now + (uint64_t)timer->msecs * 1000;
        else
            timer_release(timer);
        timer->firing = true;
        timer->fn(timer->data);
        timer->firing = false;
    }
    free(due);
}

/* A listener with a connection queued stays readable, like a level-
 * triggered watch. */
static void deliver_readable(void)
{
    for (corral_service *svc = fake.services; svc != NULL; svc = svc->next) {
        if (svc->state.listening && svc->queued > 0 && policy_listens(svc) &&
            svc->policy->listener_readable != NULL)
            svc->policy->listener_readable(svc->policy_state);
    }
}

static void run_iteration(void)
{
    fire_due_timers();
    deliver_readable();
}

/* ------------------------------------------------------------------ */
/* The host table.                                                     */

static const corral_service_state *host_state(corral_service *svc)
{
    return &svc->state;
}

static corral_process *host_process(corral_service *svc, pid_t pid)
{
    struct fake_process *p = find_process(svc, pid);

    return p != NULL ? &p->view : NULL;
}

static corral_process *host_process_next(corral_service *svc, corral_process *prev)
{
    struct fake_process *p = prev == NULL ? svc->processes : ((struct fake_process *)prev)->next;

    return p != NULL ? &p->view : NULL;
}

static bool host_spawn(corral_service *svc)
{
    corral_service_state *st = &svc->state;
    struct fake_process *p, **tail;
    fake_action *action;

    if (st->stopping || st->throttled || st->process_count >= st->process_limit) {
        record_refusal(svc, FAKE_SPAWN);
        return false;
    }
    fake.spawn_counter++;
    if (svc->failing_spawns > 0) {
        svc->failing_spawns--;
        trace(record(svc, FAKE_SPAWN_FAILED));
        return false;
    }

    p = calloc(1, sizeof(*p));
    assert_non_null(p);
    p->view.pid = fake.next_pid++;
    p->view.available_count = st->client_limit;
    p->view.created_usec = fake.now;
    for (tail = &svc->processes; *tail != NULL; tail = &(*tail)->next)
        ;
    *tail = p;
    st->process_count++;
    if (st->client_limit > 0)
        st->process_avail++;

    action = record(svc, FAKE_SPAWN);
    action->pid = p->view.pid;
    trace(action);
    return true;
}

static uint64_t host_spawn_counter(void)
{
    return fake.spawn_counter;
}

static bool signal_allowed(int signo)
{
    return signo == SIGINT || signo == SIGTERM || signo == SIGUSR1 || signo == SIGKILL;
}

static bool host_signal(corral_service *svc, pid_t pid, int signo)
{
    struct fake_process *p = find_process(svc, pid);
    fake_action *action;

    if (p == NULL || !signal_allowed(signo)) {
        record_refusal(svc, FAKE_SIGNAL);
        return false;
    }
    p->view.last_kill_usec = fake.now;
    action = record(svc, FAKE_SIGNAL);
    action->pid = pid;
    action->signo = signo;
    trace(action);
    return true;
}

static unsigned host_signal_all(corral_service *svc, int signo)
{
    fake_action *action;
    unsigned sent = 0;

    if (!signal_allowed(signo)) {
        record_refusal(svc, FAKE_SIGNAL);
        return 0;
    }
    for (struct fake_process *p = svc->processes; p != NULL; p = p->next) {
        if (!p->view.initialized && signo != SIGKILL)
            continue;
        /* As in the core, signal_all leaves last_kill_usec alone. */
        sent++;
    }
    action = record(svc, FAKE_SIGNAL_ALL);
    action->signo = signo;
    action->count = sent;
    trace(action);
    return sent;
}

static bool host_mark_busy(corral_service *svc, pid_t pid)
{
    struct fake_process *p = find_process(svc, pid);
    fake_action *action;

    if (p == NULL)
        return false;
    if (p->view.available_count > 0)
        svc->state.process_avail--;
    p->view.clients_seen += p->view.available_count;
    p->view.available_count = 0;
    p->view.idle_since_usec = 0;
    action = record(svc, FAKE_MARK_BUSY);
    action->pid = pid;
    trace(action);
    return true;
}

static void host_listen(corral_service *svc, bool on)
{
    fake_action *action;

    if (on && (svc->state.throttled || svc->state.stopping)) {
        record_refusal(svc, FAKE_LISTEN);
        return;
    }
    svc->state.listening = on;
    action = record(svc, FAKE_LISTEN);
    action->on = on;
    trace(action);
}

static unsigned host_drop_queued(corral_service *svc)
{
    fake_action *action = record(svc, FAKE_DROP_QUEUED);

    action->count = svc->queued;
    svc->queued = 0;
    trace(action);
    return action->count;
}

/* A query, not an action: not recorded. */
static unsigned host_queued_clients(corral_service *svc)
{
    return svc->queued;
}

/* A request, not an action: kept for fake_host_sample_interval. */
static void host_sample_load(corral_service *svc, unsigned interval_msecs)
{
    svc->sample_interval = interval_msecs;
}

static bool host_drop_one(corral_service *svc)
{
    fake_action *action = record(svc, FAKE_DROP_ONE);

    if (svc->queued > 0) {
        svc->queued--;
        action->count = 1;
    }
    trace(action);
    return action->count == 1;
}

static void throttle_over(void *data)
{
    corral_service *svc = data;

    svc->throttle_timer = NULL;
    svc->state.throttled = false;
    if (policy_listens(svc) && svc->policy->throttle_ended != NULL)
        svc->policy->throttle_ended(svc->policy_state);
}

static bool host_throttle(corral_service *svc, unsigned msecs)
{
    fake_action *action;

    if (svc->state.throttled || svc->state.stopping) {
        record_refusal(svc, FAKE_THROTTLE);
        return false;
    }
    /* Clients get EOF rather than a hang when nobody is left to serve. */
    if (svc->state.process_count == 0)
        svc->queued = 0;
    svc->state.listening = false;
    svc->state.throttled = true;
    svc->throttle_timer = timer_new(svc, msecs, false, throttle_over, svc, true);
    action = record(svc, FAKE_THROTTLE);
    action->msecs = msecs;
    trace(action);
    return true;
}

static void host_login_notify(corral_service *svc, bool full)
{
    fake_action *action = record(svc, FAKE_LOGIN_NOTIFY);

    action->on = full;
    trace(action);
}

static corral_timer *host_timer_add(corral_service *svc, unsigned msecs, bool repeat,
                                    corral_timer_fn *fn, void *data)
{
    assert_non_null(fn);
    return timer_new(svc, msecs, repeat, fn, data, false);
}

static void host_timer_remove(corral_service *svc, corral_timer *timer)
{
    assert_non_null(timer);
    if (timer->svc != svc)
        fail_msg("timer removed through service %s, armed by %s", svc->name, timer->svc->name);
    if (timer->released && !timer->firing)
        fail_msg("service %s: timer of %u ms removed after it fired or was removed",
                 svc->name, timer->msecs);
    timer_release(timer);
}

static uint64_t host_now_usec(void)
{
    return fake.now;
}

static uint32_t host_random(uint32_t bound)
{
    uint32_t value;

    if (bound == 0)
        return 0;
    if (fake.random_count > 0) {
        value = fake.random_values[fake.random_next++ % fake.random_count];
    } else {
        /* xorshift32: deterministic and good enough for jitter */
        fake.random_state ^= fake.random_state << 13;
        fake.random_state ^= fake.random_state >> 17;
        fake.random_state ^= fake.random_state << 5;
        value = fake.random_state;
    }
    return value % bound;
}

__attribute__((format(printf, 3, 4)))
static void host_log(corral_service *svc, corral_log_level level, const char *fmt, ...)
{
    fake_action *action = record(svc, FAKE_LOG);
    char message[2048];
    va_list args;
    int length;

    va_start(args, fmt);
    vsnprintf(message, sizeof(message), fmt, args);
    va_end(args);
    length = snprintf(NULL, 0, "service(%s): %s", svc->name, message);
    action->text = malloc((size_t)length + 1);
    assert_non_null(action->text);
    snprintf(action->text, (size_t)length + 1, "service(%s): %s", svc->name, message);
    action->level = level;
    trace(action);
}

static const corral_host fake_host_table = {
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

/* ------------------------------------------------------------------ */
/* Life cycle.                                                         */

void fake_host_init(void)
{
    const char *trace_env = getenv("FAKE_HOST_TRACE");

    assert_false(fake.initialized);
    memset(&fake, 0, sizeof(fake));
    fake.initialized = true;
    fake.trace = trace_env != NULL && *trace_env != '\0' && strcmp(trace_env, "0") != 0;
    fake.now = FAKE_HOST_START_USEC;
    fake.next_pid = FAKE_HOST_FIRST_PID;
    fake.random_state = 2463534242u;
}

static void remove_service_timers(corral_service *svc, unsigned *left_by_policy)
{
    for (corral_timer *t = fake.timers; t != NULL; t = t->next) {
        if (t->svc != svc || !t->armed)
            continue;
        if (!t->internal && left_by_policy != NULL)
            (*left_by_policy)++;
        timer_release(t);
    }
    svc->throttle_timer = NULL;
}

void fake_host_deinit(void)
{
    assert_true(fake.initialized);
    for (corral_service *svc = fake.services; svc != NULL; svc = svc->next) {
        if (svc->monitoring)
            fake_host_stop(svc);
        if (svc->policy != NULL && svc->policy->service_free != NULL)
            svc->policy->service_free(svc->policy_state);
    }
    while (fake.services != NULL) {
        corral_service *svc = fake.services;
        fake.services = svc->next;
        while (svc->processes != NULL) {
            struct fake_process *p = svc->processes;
            svc->processes = p->next;
            free(p);
        }
        free(svc->name);
        free(svc);
    }
    while (fake.timers != NULL) {
        corral_timer *timer = fake.timers;
        fake.timers = timer->next;
        free(timer);
    }
    while (fake.policy_values != NULL) {
        struct policy_values *pv = fake.policy_values;
        fake.policy_values = pv->next;
        for (size_t i = 0; i < pv->count; i++)
            free(pv->strings[i]);
        free(pv->strings);
        free(pv->values);
        free(pv);
    }
    fake_host_clear_actions();
    free(fake.actions);
    free(fake.random_values);
    memset(&fake, 0, sizeof(fake));
}

const corral_host *fake_host_get(void)
{
    return &fake_host_table;
}

int fake_host_setup(void **state)
{
    (void)state;
    fake_host_init();
    return 0;
}

int fake_host_teardown(void **state)
{
    (void)state;
    fake_host_deinit();
    return 0;
}

/* ------------------------------------------------------------------ */
/* Policy key values, parsed as core/policy-loader.c does.             */

static bool parse_number(const char *text, uint64_t *value, const char **rest)
{
    char *end;

    if (*text < '0' || *text > '9')
        return false;
    *value = strtoull(text, &end, 10);
    *rest = end;
    return true;
}

static bool parse_duration_msecs(const char *text, uint64_t *msecs)
{
    static const struct { const char *suffix; uint64_t msecs; } units[] = {
        { "", 1000 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 },
    };
    const char *unit;
    uint64_t number;

    if (!parse_number(text, &number, &unit))
        return false;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(unit, units[i].suffix) == 0) {
            *msecs = number * units[i].msecs;
            return true;
        }
    }
    return false;
}

static void parse_policy_value(const corral_policy_key *key, const char *text,
                               corral_policy_value *value, char **string_copy)
{
    const char *rest = "";
    uint64_t max = key->max != 0 ? key->max : UINT64_MAX;
    bool ok;

    switch (key->type) {
    case CORRAL_KEY_BOOL:
        value->b = strcmp(text, "yes") == 0 || strcmp(text, "true") == 0 || strcmp(text, "1") == 0;
        if (!value->b && strcmp(text, "no") != 0 && strcmp(text, "false") != 0 &&
            strcmp(text, "0") != 0)
            fail_msg("policy key %s: '%s' is not a boolean", key->name, text);
        return;
    case CORRAL_KEY_STRING:
        *string_copy = strdup(text);
        assert_non_null(*string_copy);
        value->s = *string_copy;
        return;
    case CORRAL_KEY_UINT:
        ok = parse_number(text, &value->u, &rest) && *rest == '\0';
        break;
    case CORRAL_KEY_DURATION:
        ok = parse_duration_msecs(text, &value->u);
        break;
    default:
        ok = false;
    }
    if (!ok)
        fail_msg("policy key %s: cannot parse '%s'", key->name, text);
    if (value->u < key->min || value->u > max)
        fail_msg("policy key %s: '%s' is outside %llu..%llu", key->name, text,
                 (unsigned long long)key->min, (unsigned long long)max);
}

/* "name=value" -> "value" if the setting is for `name`, else NULL. */
static const char *setting_value(const char *setting, const char *name)
{
    size_t length = strlen(name);

    return strncmp(setting, name, length) == 0 && setting[length] == '=' ? setting + length + 1
                                                                        : NULL;
}

static void check_settings_are_declared(const corral_policy *policy, const char *const *settings)
{
    for (size_t i = 0; settings != NULL && settings[i] != NULL; i++) {
        const corral_policy_key *key = policy->keys;

        while (key != NULL && key->name != NULL && setting_value(settings[i], key->name) == NULL)
            key++;
        if (key == NULL || key->name == NULL)
            fail_msg("policy %s declares no key for '%s'", policy->name, settings[i]);
    }
}

static const char *setting_for(const char *const *settings, const char *name)
{
    const char *found = NULL;

    for (size_t i = 0; settings != NULL && settings[i] != NULL; i++) {
        if (setting_value(settings[i], name) != NULL)
            found = setting_value(settings[i], name); /* the last one wins */
    }
    return found;
}

const corral_policy_value *fake_host_policy_values(const corral_policy *policy,
                                                   const char *const *settings)
{
    struct policy_values *pv = calloc(1, sizeof(*pv));

    assert_non_null(pv);
    while (policy->keys != NULL && policy->keys[pv->count].name != NULL)
        pv->count++;
    pv->values = calloc(pv->count + 1, sizeof(*pv->values));
    pv->strings = calloc(pv->count + 1, sizeof(*pv->strings));
    assert_non_null(pv->values);
    assert_non_null(pv->strings);
    pv->next = fake.policy_values;
    fake.policy_values = pv;

    check_settings_are_declared(policy, settings);
    for (size_t i = 0; i < pv->count; i++) {
        const corral_policy_key *key = &policy->keys[i];
        const char *text = setting_for(settings, key->name);

        if (text == NULL)
            text = key->default_value != NULL ? key->default_value
                                              : key->type == CORRAL_KEY_STRING ? "" : "0";
        parse_policy_value(key, text, &pv->values[i], &pv->strings[i]);
    }
    return pv->values;
}

corral_service *fake_host_add_service(const fake_service_settings *settings,
                                      const corral_policy *policy,
                                      const corral_policy_value *values)
{
    corral_service *svc = calloc(1, sizeof(*svc));
    corral_service_state *st;
    corral_service **tail;

    assert_non_null(svc);
    svc->name = strdup(settings->name != NULL ? settings->name : "test");
    assert_non_null(svc->name);
    svc->policy = policy;

    st = &svc->state;
    st->name = svc->name;
    st->type = settings->type;
    st->process_limit = settings->process_limit != 0 ? settings->process_limit : 100;
    st->process_min_avail = settings->process_min_avail;
    st->client_limit = settings->client_limit != 0 ? settings->client_limit : 1000;
    st->service_count = settings->service_count;
    if (st->service_count != 0 && st->client_limit > st->service_count)
        st->client_limit = st->service_count;
    st->idle_kill_secs = settings->idle_kill_secs != 0 ? settings->idle_kill_secs : 60;
    st->have_listeners = true;

    for (tail = &fake.services; *tail != NULL; tail = &(*tail)->next)
        ;
    *tail = svc;

    if (policy != NULL) {
        char *error = NULL;
        svc->policy_state = policy->service_new(&fake_host_table, svc, values, &error);
        if (svc->policy_state == NULL) {
            fail_msg("policy %s refused service %s: %s", policy->name, svc->name,
                     error != NULL ? error : "(no message)");
        }
    }
    return svc;
}

const corral_service_state *fake_host_state(corral_service *svc)
{
    return &svc->state;
}

void *fake_host_policy_state(corral_service *svc)
{
    return svc->policy_state;
}

void fake_host_start(corral_service *svc)
{
    svc->monitoring = true;
    svc->state.stopping = false;
    if (policy_listens(svc) && svc->policy->start != NULL)
        svc->policy->start(svc->policy_state);
}

void fake_host_started(corral_service *svc)
{
    if (policy_listens(svc) && svc->policy->started != NULL)
        svc->policy->started(svc->policy_state);
}

unsigned fake_host_stop(corral_service *svc)
{
    unsigned left = 0;

    if (policy_listens(svc) && svc->policy->stop != NULL)
        svc->policy->stop(svc->policy_state);
    svc->monitoring = false;
    svc->state.stopping = true;
    svc->state.listening = false;
    svc->state.throttled = false;
    if (!timers_outlive_stop(svc)) {
        remove_service_timers(svc, &left);
        return left;
    }
    for (corral_timer *t = fake.timers; t != NULL; t = t->next) {
        if (t->svc == svc && t->armed && t->internal)
            timer_release(t);
        else if (t->svc == svc && t->armed)
            left++;
    }
    svc->throttle_timer = NULL;
    return left;
}

/* ------------------------------------------------------------------ */
/* Clock and randomness.                                               */

uint64_t fake_host_now(void)
{
    return fake.now;
}

void fake_host_run_pending(void)
{
    run_iteration();
}

void fake_host_advance_to(uint64_t target)
{
    uint64_t due = 0;

    assert_true(target >= fake.now);
    while (next_due_after(fake.now, &due) && due < target) {
        fake.now = due;
        run_iteration();
    }
    fake.now = target;
    run_iteration();
}

void fake_host_advance(uint64_t usec)
{
    fake_host_advance_to(fake.now + usec);
}

void fake_host_advance_ms(uint64_t msecs)
{
    fake_host_advance(msecs * 1000);
}

void fake_host_set_random(const uint32_t *values, size_t count)
{
    free(fake.random_values);
    fake.random_values = NULL;
    fake.random_count = 0;
    fake.random_next = 0;
    if (count == 0)
        return;
    fake.random_values = malloc(count * sizeof(*values));
    assert_non_null(fake.random_values);
    memcpy(fake.random_values, values, count * sizeof(*values));
    fake.random_count = count;
}

/* ------------------------------------------------------------------ */
/* Processes.                                                          */

corral_process *fake_host_process(corral_service *svc, pid_t pid)
{
    return host_process(svc, pid);
}

pid_t fake_host_pid(corral_service *svc, unsigned index)
{
    struct fake_process *p = svc->processes;

    for (unsigned i = 0; p != NULL && i < index; i++)
        p = p->next;
    if (p == NULL) {
        fail_msg("service %s has no process #%u", svc->name, index);
        abort(); /* not reached: fail_msg leaves the test */
    }
    return p->view.pid;
}

void fake_host_fail_spawns(corral_service *svc, unsigned count)
{
    svc->failing_spawns = count;
}

void fake_host_status(corral_service *svc, pid_t pid, unsigned available_count)
{
    corral_process *proc = &require_process(svc, pid)->view;
    unsigned old_count;

    if (available_count > svc->state.client_limit)
        fail_msg("pid %d reported %u free slots, client_limit is %u", (int)pid, available_count,
                 svc->state.client_limit);
    old_count = corral_account_status(&svc->state, proc, available_count, fake.now);

    if (policy_listens(svc) && svc->policy->status_changed != NULL)
        svc->policy->status_changed(svc->policy_state, proc, old_count);
}

void fake_host_first_status_timeout(corral_service *svc, pid_t pid)
{
    corral_process *proc = &require_process(svc, pid)->view;

    if (proc->initialized)
        fail_msg("pid %d already sent its first status", (int)pid);
    proc->initialized = true;
}

void fake_host_exit(corral_service *svc, pid_t pid, int wait_status)
{
    struct fake_process *p = require_process(svc, pid), **link;
    corral_exit exit_info;

    for (link = &svc->processes; *link != p; link = &(*link)->next)
        ;
    *link = p->next;
    corral_account_exit(&svc->state, &p->view, wait_status, fake.now, &exit_info);

    if ((policy_listens(svc) || (timers_outlive_stop(svc) && svc->policy_state != NULL)) &&
        svc->policy->process_exited != NULL)
        svc->policy->process_exited(svc->policy_state, &exit_info);
    free(p);
}

/* ------------------------------------------------------------------ */
/* Connections.                                                        */

void fake_host_connect(corral_service *svc, unsigned count)
{
    svc->queued += count;
    if (svc->state.listening && policy_listens(svc) && svc->policy->listener_readable != NULL)
        svc->policy->listener_readable(svc->policy_state);
}

void fake_host_accept(corral_service *svc, pid_t pid)
{
    corral_process *proc = &require_process(svc, pid)->view;

    if (proc->available_count == 0)
        fail_msg("pid %d has no free slot to accept a client", (int)pid);
    if (svc->queued > 0)
        svc->queued--;
    fake_host_status(svc, pid, proc->available_count - 1);
}

void fake_host_release(corral_service *svc, pid_t pid)
{
    corral_process *proc = &require_process(svc, pid)->view;

    fake_host_status(svc, pid, proc->available_count + 1);
}

unsigned fake_host_queued(corral_service *svc)
{
    return svc->queued;
}

unsigned fake_host_sample_interval(corral_service *svc)
{
    return svc->sample_interval;
}

/* ------------------------------------------------------------------ */
/* Timers and records.                                                 */

unsigned fake_host_timer_count(corral_service *svc)
{
    unsigned count = 0;

    for (corral_timer *t = fake.timers; t != NULL; t = t->next) {
        if (t->svc == svc && t->armed && !t->internal)
            count++;
    }
    return count;
}

bool fake_host_has_timer(corral_service *svc, unsigned msecs, bool repeat)
{
    for (corral_timer *t = fake.timers; t != NULL; t = t->next) {
        if (t->svc == svc && t->armed && !t->internal && t->msecs == msecs && t->repeat == repeat)
            return true;
    }
    return false;
}

size_t fake_host_action_count(void)
{
    return fake.action_count;
}

const fake_action *fake_host_action(size_t index)
{
    assert_true(index < fake.action_count);
    return &fake.actions[index];
}

unsigned fake_host_count(corral_service *svc, fake_action_kind kind)
{
    unsigned count = 0;

    for (size_t i = 0; i < fake.action_count; i++) {
        const fake_action *action = &fake.actions[i];
        if (action->kind == kind && (svc == NULL || action->svc == svc))
            count++;
    }
    return count;
}

const fake_action *fake_host_last(corral_service *svc, fake_action_kind kind)
{
    for (size_t i = fake.action_count; i > 0; i--) {
        const fake_action *action = &fake.actions[i - 1];
        if (action->kind == kind && (svc == NULL || action->svc == svc))
            return action;
    }
    return NULL;
}

unsigned fake_host_count_log(corral_log_level level, const char *line)
{
    unsigned count = 0;

    for (size_t i = 0; i < fake.action_count; i++) {
        const fake_action *action = &fake.actions[i];
        if (action->kind == FAKE_LOG && action->level == level && strcmp(action->text, line) == 0)
            count++;
    }
    return count;
}

void fake_host_clear_actions(void)
{
    for (size_t i = 0; i < fake.action_count; i++)
        free(fake.actions[i].text);
    fake.action_count = 0;
}
