/* SPDX-License-Identifier: MIT */
#include "generation.h"

#include <errno.h>
#include <signal.h>

#include "dir-trust.h"
#include "log.h"
#include "process-group.h"
#include "service.h"
#include "signals.h"

static void free_services(GPtrArray *services)
{
    for (guint i = 0; i < services->len; i++) {
        corral_service *svc = g_ptr_array_index(services, i);
        corral_policy_module *module = svc->policy_module;
        corral_service_free(svc);
        corral_policy_module_unref(module);
    }
    g_ptr_array_set_size(services, 0);
}

corral_generation *corral_generation_build(struct corral_supervisor *supervisor,
                                           corral_config *config,
                                           const corral_generation *predecessor,
                                           GError **error)
{
    corral_generation *generation = g_new0(corral_generation, 1);

    generation->config = config;
    generation->services = g_ptr_array_new();
    generation->loader = corral_policy_loader_new(config->policy_dir,
                                                  predecessor != NULL ? predecessor->loader
                                                                      : NULL);
    if (g_mkdir_with_parents(config->base_dir, 0755) < 0) {
        char *where = corral_config_where(config, "base_dir");
        g_set_error(error, CORRAL_CONFIG_ERROR, CORRAL_CONFIG_ERROR_IO,
                    "%s: cannot create %s: %s", where, config->base_dir, g_strerror(errno));
        g_free(where);
        goto fail;
    }
    {
        GError *local = NULL;
        if (!corral_dir_is_trusted(config->base_dir, &local)) {
            char *where = corral_config_where(config, "base_dir");
            g_set_error(error, CORRAL_CONFIG_ERROR, CORRAL_CONFIG_ERROR_VALUE, "%s: %s", where,
                        local->message);
            g_free(where);
            g_error_free(local);
            goto fail;
        }
    }
    for (guint i = 0; i < config->services->len; i++) {
        const corral_service_config *sc = g_ptr_array_index(config->services, i);
        GError *local = NULL;
        corral_policy_module *module;
        corral_service *svc;

        module = corral_policy_loader_load(generation->loader, sc->policy, &local);
        if (module == NULL) {
            g_set_error(error, CORRAL_CONFIG_ERROR, CORRAL_CONFIG_ERROR_VALUE,
                        "%s: [service %s] policy: %s", sc->file, sc->name, local->message);
            g_error_free(local);
            goto fail;
        }
        svc = corral_service_new(supervisor, sc, module, generation->loader, error);
        if (svc == NULL) {
            corral_policy_module_unref(module);
            goto fail;
        }
        g_ptr_array_add(generation->services, svc);
    }
    corral_policy_loader_forget_previous(generation->loader);
    return generation;
fail:
    corral_generation_free(generation);
    return NULL;
}

bool corral_generation_commit(corral_generation *generation, GError **error)
{
    for (guint i = 0; i < generation->services->len; i++) {
        corral_service *svc = g_ptr_array_index(generation->services, i);
        for (guint j = 0; j < svc->listeners->len; j++) {
            if (!corral_listener_commit(g_ptr_array_index(svc->listeners, j), error))
                return false;
        }
    }
    return true;
}

bool corral_generation_start(corral_generation *generation, GError **error)
{
    for (guint i = 0; i < generation->services->len; i++) {
        if (!corral_service_start(g_ptr_array_index(generation->services, i), error))
            return false;
    }
    for (guint i = 0; i < generation->services->len; i++)
        corral_service_started(g_ptr_array_index(generation->services, i));
    return true;
}

void corral_generation_stop(corral_generation *generation)
{
    for (guint i = 0; i < generation->services->len; i++)
        corral_service_stop(g_ptr_array_index(generation->services, i));
    /* Every dead pipe closes only after every monitor stopped, so no
     * policy sees a process leave because of it. */
    for (guint i = 0; i < generation->services->len; i++)
        corral_service_close_dead_pipe(g_ptr_array_index(generation->services, i));
}

void corral_generation_mute_timers(corral_generation *generation)
{
    for (guint i = 0; i < generation->services->len; i++)
        corral_service_mute_timers(g_ptr_array_index(generation->services, i));
}

void corral_generation_retire(corral_generation *generation)
{
    /* Records already written still tell which processes are initialized,
     * which decides who gets the SIGTERM after reload_kill_timeout. */
    for (guint i = 0; i < generation->services->len; i++)
        corral_service_drain_status(g_ptr_array_index(generation->services, i));
    corral_generation_stop(generation);
    for (guint i = 0; i < generation->services->len; i++)
        corral_service_release_listeners(g_ptr_array_index(generation->services, i));
}

void corral_generation_free(corral_generation *generation)
{
    if (generation == NULL)
        return;
    if (generation->kill_timer != 0)
        g_source_remove(generation->kill_timer);
    free_services(generation->services);
    g_ptr_array_unref(generation->services);
    corral_policy_loader_free(generation->loader);
    corral_config_free(generation->config);
    g_free(generation);
}

unsigned corral_generation_process_count(const corral_generation *generation)
{
    unsigned count = 0;

    for (guint i = 0; i < generation->services->len; i++) {
        const corral_service *svc = g_ptr_array_index(generation->services, i);
        count += svc->state.process_count;
    }
    return count;
}

bool corral_generation_any_available(const corral_generation *generation)
{
    for (guint i = 0; i < generation->services->len; i++) {
        const corral_service *svc = g_ptr_array_index(generation->services, i);
        if (svc->state.process_avail > 0)
            return true;
    }
    return false;
}

unsigned corral_generation_signal(corral_generation *generation, int signo, bool log_each,
                                  unsigned *uninitialized_r)
{
    unsigned total = 0;

    *uninitialized_r = 0;
    for (guint i = 0; i < generation->services->len; i++) {
        corral_service *svc = g_ptr_array_index(generation->services, i);
        unsigned sent;

        /* Counted as corral_service_signal_all() skips them: not yet
         * reported, and the signal is not SIGKILL. */
        for (GList *link = svc->processes.head; link != NULL && signo != SIGKILL;
             link = link->next) {
            if (!((corral_process_record *)link->data)->view.initialized)
                (*uninitialized_r)++;
        }
        sent = corral_service_signal_all(svc, signo);

        if (log_each && sent > 0)
            log_warning("Sent %s to %u %s processes", corral_signal_name(signo), sent,
                        svc->config->name);
        total += sent;
    }
    return total;
}

unsigned corral_generation_quit(corral_generation *generation)
{
    unsigned sent = 0;

    for (guint i = 0; i < generation->services->len; i++) {
        corral_service *svc = g_ptr_array_index(generation->services, i);
        for (GList *link = svc->processes.head; link != NULL; link = link->next) {
            corral_process_record *record = link->data;
            /* SIGQUIT is lib-master's "give the ports back"; other servers
             * had their SIGTERM when the service stopped, and the pause
             * after this is theirs to finish in. */
            if (svc->config->protocol.protocol != CORRAL_WORKER_PROTOCOL_DOVECOT ||
                corral_process_group_signal(record->view.pid, SIGQUIT))
                sent++;
        }
    }
    return sent;
}

unsigned corral_generation_kill_orphans(corral_generation *generation)
{
    unsigned killed = 0;

    for (guint i = 0; i < generation->services->len; i++) {
        corral_service *svc = g_ptr_array_index(generation->services, i);
        for (GList *link = svc->processes.head; link != NULL; link = link->next) {
            corral_process_record *record = link->data;
            /* A server that has no dead pipe must not outlive corrald. */
            if (svc->config->protocol.protocol != CORRAL_WORKER_PROTOCOL_DOVECOT) {
                if (corral_process_group_signal(record->view.pid, SIGKILL))
                    killed++;
            } else if (corral_process_group_kill_if_leader_died(record->view.pid)) {
                killed++;
            }
        }
    }
    return killed;
}

corral_listener *corral_generation_find_listener(const corral_generation *generation,
                                                 const corral_listener_config *config)
{
    for (guint i = 0; i < generation->services->len; i++) {
        corral_service *svc = g_ptr_array_index(generation->services, i);
        for (guint j = 0; j < svc->listeners->len; j++) {
            corral_listener *listener = g_ptr_array_index(svc->listeners, j);
            if (corral_listener_same_address(listener->config, config))
                return listener;
        }
    }
    return NULL;
}
