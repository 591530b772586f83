/* SPDX-License-Identifier: MIT */
#include "shadow.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "service.h"
#include "supervisor.h"

/* One shadow instance.  Its address is the corral_service handle the
 * shadow receives, so the shadow host can tell it from the real service. */
typedef struct shadow {
    corral_shadows *owner;
    unsigned index;                 /* into each process's view array */
    corral_policy_module *module;
    corral_policy_value *values;
    void *state;
} shadow;

struct corral_shadows {
    corral_service *svc;
    GPtrArray *members;             /* shadow* */
    GQueue journal;                 /* corral_decision*, oldest first */
};

static corral_process_record *record_of(corral_process *view)
{
    return (corral_process_record *)((char *)view - offsetof(corral_process_record, view));
}

/* Brings a shadow's view of a process up to date with the real one,
 * keeping the shadow's own policy_data. */
static corral_process *view_for(const shadow *sh, corral_process_record *record)
{
    corral_process *view = &record->shadow_views[sh->index];
    void *data = view->policy_data;

    *view = record->view;
    view->policy_data = data;
    return view;
}

static void journal_add(shadow *sh, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void journal_add(shadow *sh, const char *fmt, ...)
{
    corral_shadows *shadows = sh->owner;
    corral_decision *decision = g_new0(corral_decision, 1);
    va_list args;

    va_start(args, fmt);
    decision->text = g_strdup_vprintf(fmt, args);
    va_end(args);
    decision->usec = corral_supervisor_now_usec();
    decision->policy = g_strdup(sh->module->name);
    corral_log_about_line(CORRAL_LEVEL_INFO,
                          &(corral_log_about){ shadows->svc->config->name, decision->policy, 0 },
                          "service(%s): shadow %s would: %s", shadows->svc->config->name,
                          decision->policy, decision->text);
    g_queue_push_tail(&shadows->journal, decision);
    while (shadows->journal.length > CORRAL_DECISION_JOURNAL_SIZE) {
        corral_decision *old = g_queue_pop_head(&shadows->journal);
        g_free(old->policy);
        g_free(old->text);
        g_free(old);
    }
}

/* ------------------------------------------------------------------ */
/* The shadow host: reads are real, actions go to the journal.          */

static shadow *shadow_of(corral_service *handle)
{
    return (shadow *)(void *)handle;
}

static const corral_service_state *sh_state(corral_service *handle)
{
    return &shadow_of(handle)->owner->svc->state;
}

static corral_process *sh_process(corral_service *handle, pid_t pid)
{
    shadow *sh = shadow_of(handle);
    corral_process_record *record = corral_service_find_process(sh->owner->svc, pid);

    return record != NULL ? view_for(sh, record) : NULL;
}

static corral_process *sh_process_next(corral_service *handle, corral_process *prev)
{
    shadow *sh = shadow_of(handle);
    GList *link = sh->owner->svc->processes.head;

    /* `prev` is one of this shadow's views: its record is found by pid. */
    if (prev != NULL) {
        corral_process_record *record = corral_service_find_process(sh->owner->svc, prev->pid);
        link = record != NULL ? record->link.next : NULL;
    }
    return link != NULL ? view_for(sh, link->data) : NULL;
}

static bool sh_spawn(corral_service *handle)
{
    journal_add(shadow_of(handle), "spawn a process");
    return true;
}

static uint64_t sh_spawn_counter(void)
{
    return corral_supervisor_spawn_counter(corral_supervisor_get());
}

static bool sh_signal(corral_service *handle, pid_t pid, int signo)
{
    journal_add(shadow_of(handle), "send signal %d to %d", signo, (int)pid);
    return true;
}

static unsigned sh_signal_all(corral_service *handle, int signo)
{
    journal_add(shadow_of(handle), "send signal %d to every process", signo);
    return 0;
}

static bool sh_mark_busy(corral_service *handle, pid_t pid)
{
    journal_add(shadow_of(handle), "count process %d as busy", (int)pid);
    return true;
}

static void sh_listen(corral_service *handle, bool on)
{
    journal_add(shadow_of(handle), "%s listening", on ? "start" : "stop");
}

static unsigned sh_drop_queued(corral_service *handle)
{
    journal_add(shadow_of(handle), "drop every queued connection");
    return 0;
}

static bool sh_drop_one(corral_service *handle)
{
    journal_add(shadow_of(handle), "drop one queued connection");
    return false;
}

/* A query: the shadow sees the real queue. */
static unsigned sh_queued_clients(corral_service *handle)
{
    return corral_service_queued_clients(shadow_of(handle)->owner->svc);
}

static bool sh_throttle(corral_service *handle, unsigned msecs)
{
    journal_add(shadow_of(handle), "throttle for %u ms", msecs);
    return true;
}

static void sh_login_notify(corral_service *handle, bool full)
{
    journal_add(shadow_of(handle), "notify login processes %s", full ? "FULL" : "NONFULL");
}

static corral_timer *sh_timer_add(corral_service *handle, unsigned msecs, bool repeat,
                                  corral_timer_fn *fn, void *data)
{
    return corral_service_shadow_timer_add(shadow_of(handle)->owner->svc, msecs, repeat, fn,
                                           data);
}

static void sh_timer_remove(corral_service *handle, corral_timer *timer)
{
    corral_service_timer_remove(shadow_of(handle)->owner->svc, timer);
}

__attribute__((format(printf, 3, 4)))
static void sh_log(corral_service *handle, corral_log_level level, const char *fmt, ...)
{
    char text[1024];
    va_list args;

    (void)level;
    va_start(args, fmt);
    vsnprintf(text, sizeof(text), fmt, args);
    va_end(args);
    journal_add(shadow_of(handle), "log \"%s\"", text);
}

/* Sampling is the active policy's to ask for; a shadow only watches. */
static void sh_sample_load(corral_service *handle, unsigned interval_msecs)
{
    journal_add(shadow_of(handle), "sample_load %u", interval_msecs);
}

static const corral_host shadow_host_template = {
    .state = sh_state,
    .process = sh_process,
    .process_next = sh_process_next,
    .spawn = sh_spawn,
    .spawn_counter = sh_spawn_counter,
    .signal = sh_signal,
    .signal_all = sh_signal_all,
    .mark_busy = sh_mark_busy,
    .listen = sh_listen,
    .drop_queued = sh_drop_queued,
    .drop_one = sh_drop_one,
    .throttle = sh_throttle,
    .login_notify = sh_login_notify,
    .timer_add = sh_timer_add,
    .timer_remove = sh_timer_remove,
    .log = sh_log,
    .queued_clients = sh_queued_clients,
    .sample_load = sh_sample_load,
};

static corral_host shadow_host;

static const corral_host *shadow_host_get(void)
{
    /* The clock and randomness are the core's own. */
    if (shadow_host.state == NULL) {
        shadow_host = shadow_host_template;
        shadow_host.now_usec = corral_host_get()->now_usec;
        shadow_host.random = corral_host_get()->random;
    }
    return &shadow_host;
}

/* ------------------------------------------------------------------ */
/* Building.                                                            */

bool corral_shadows_owns_key(const char *const *shadow_names, const char *key)
{
    const char *dot = strchr(key, '.');

    if (shadow_names == NULL || dot == NULL)
        return false;
    for (const char *const *name = shadow_names; *name != NULL; name++) {
        if (strlen(*name) == (size_t)(dot - key) && strncmp(*name, key, dot - key) == 0)
            return true;
    }
    return false;
}

static void free_member(shadow *sh)
{
    if (sh->state != NULL && sh->module->policy->service_free != NULL)
        sh->module->policy->service_free(sh->state);
    corral_policy_values_free(sh->module, sh->values);
    corral_policy_module_unref(sh->module);
    g_free(sh);
}

corral_shadows *corral_shadows_new(corral_service *svc, corral_policy_loader *loader,
                                   GError **error)
{
    const corral_service_config *config = svc->config;
    corral_shadows *shadows;

    if (config->shadow_policies == NULL || config->shadow_policies[0] == NULL)
        return NULL;
    shadows = g_new0(corral_shadows, 1);
    shadows->svc = svc;
    shadows->members = g_ptr_array_new();
    g_queue_init(&shadows->journal);
    for (char **name = config->shadow_policies; *name != NULL; name++) {
        shadow *sh = g_new0(shadow, 1);
        char *problem = NULL;
        GError *local = NULL;

        sh->owner = shadows;
        sh->index = shadows->members->len;
        sh->module = corral_policy_loader_load(loader, *name, &local);
        if (sh->module == NULL) {
            g_set_error(error, CORRAL_CONFIG_ERROR, CORRAL_CONFIG_ERROR_VALUE,
                        "%s: [service %s] shadow_policies: %s", config->file, config->name,
                        local->message);
            g_error_free(local);
            g_free(sh);
            goto fail;
        }
        g_ptr_array_add(shadows->members, sh);
        sh->values = corral_policy_values_parse_prefixed(sh->module, config, *name, error);
        if (sh->values == NULL)
            goto fail;
        sh->state = sh->module->policy->service_new(shadow_host_get(), (corral_service *)(void *)sh,
                                                    sh->values, &problem);
        if (sh->state == NULL) {
            g_set_error(error, CORRAL_CONFIG_ERROR, CORRAL_CONFIG_ERROR_VALUE,
                        "%s: [service %s] shadow policy %s (%s): init failed: %s",
                        config->file, config->name, sh->module->name, sh->module->path,
                        problem != NULL ? problem : "no reason given");
            free(problem);
            goto fail;
        }
    }
    return shadows;
fail:
    corral_shadows_free(shadows);
    return NULL;
}

void corral_shadows_free(corral_shadows *shadows)
{
    corral_decision *decision;

    if (shadows == NULL)
        return;
    for (guint i = 0; i < shadows->members->len; i++)
        free_member(g_ptr_array_index(shadows->members, i));
    g_ptr_array_unref(shadows->members);
    while ((decision = g_queue_pop_head(&shadows->journal)) != NULL) {
        g_free(decision->policy);
        g_free(decision->text);
        g_free(decision);
    }
    g_free(shadows);
}

unsigned corral_shadows_count(const corral_shadows *shadows)
{
    return shadows != NULL ? shadows->members->len : 0;
}

const GQueue *corral_shadows_journal(const corral_shadows *shadows)
{
    return shadows != NULL ? &shadows->journal : NULL;
}

corral_process *corral_shadows_new_views(const corral_shadows *shadows)
{
    return shadows != NULL ? g_new0(corral_process, shadows->members->len) : NULL;
}

void corral_shadows_free_views(const corral_shadows *shadows, corral_process *views)
{
    (void)shadows;
    g_free(views);
}

/* ------------------------------------------------------------------ */
/* Events.                                                              */

#define EACH_SHADOW(shadows, sh)                                                   \
    for (guint i_ = 0; (shadows) != NULL && i_ < (shadows)->members->len; i_++)     \
        for (shadow *sh = g_ptr_array_index((shadows)->members, i_); sh != NULL; sh = NULL)

void corral_shadows_start(corral_shadows *shadows)
{
    EACH_SHADOW(shadows, sh) {
        if (sh->module->policy->start != NULL)
            sh->module->policy->start(sh->state);
    }
}

void corral_shadows_started(corral_shadows *shadows)
{
    EACH_SHADOW(shadows, sh) {
        if (sh->module->policy->started != NULL)
            sh->module->policy->started(sh->state);
    }
}

void corral_shadows_stop(corral_shadows *shadows)
{
    EACH_SHADOW(shadows, sh) {
        if (sh->module->policy->stop != NULL)
            sh->module->policy->stop(sh->state);
    }
}

void corral_shadows_status_changed(corral_shadows *shadows, corral_process *process,
                                   unsigned old_count)
{
    EACH_SHADOW(shadows, sh) {
        if (sh->module->policy->status_changed != NULL)
            sh->module->policy->status_changed(sh->state, view_for(sh, record_of(process)),
                                               old_count);
    }
}

void corral_shadows_listener_readable(corral_shadows *shadows)
{
    EACH_SHADOW(shadows, sh) {
        if (sh->module->policy->listener_readable != NULL)
            sh->module->policy->listener_readable(sh->state);
    }
}

void corral_shadows_process_exited(corral_shadows *shadows, const corral_exit *exit_info)
{
    EACH_SHADOW(shadows, sh) {
        corral_exit mirrored = *exit_info;

        if (sh->module->policy->process_exited == NULL)
            continue;
        mirrored.process = view_for(sh, record_of(exit_info->process));
        sh->module->policy->process_exited(sh->state, &mirrored);
    }
}

void corral_shadows_throttle_ended(corral_shadows *shadows)
{
    EACH_SHADOW(shadows, sh) {
        if (sh->module->policy->throttle_ended != NULL)
            sh->module->policy->throttle_ended(sh->state);
    }
}
