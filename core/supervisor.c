/* SPDX-License-Identifier: MIT */
#include "supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "corral-build.h"
#include "log.h"
#include "policy-loader.h"
#include "service.h"
#include "signals.h"

/* Dovecot's MAX_DIE_WAIT_MSECS and the pause after the SIGQUITs. */
#define SHUTDOWN_WAIT_MSECS 5000
#define SHUTDOWN_POLL_MSECS 100
#define SHUTDOWN_AFTER_QUIT_MSECS 1000

struct corral_supervisor {
    corral_config *config;
    corral_policy_loader *loader;
    GPtrArray *services;          /* corral_service*, in config order */
    GHashTable *processes;        /* pid -> corral_process_record* */
    uint64_t spawn_counter;
    uint32_t last_generation;
    int dev_null;
    bool stopping;
    GMainLoop *loop;
    guint shutdown_timer;
    uint64_t shutdown_deadline_usec;
};

static corral_supervisor *running_supervisor;

corral_supervisor *corral_supervisor_get(void)
{
    return running_supervisor;
}

const corral_config *corral_supervisor_config(const corral_supervisor *supervisor)
{
    return supervisor->config;
}

uint64_t corral_supervisor_now_usec(void)
{
    return (uint64_t)g_get_monotonic_time();
}

int corral_supervisor_dev_null(corral_supervisor *supervisor)
{
    return supervisor->dev_null;
}

bool corral_supervisor_is_stopping(const corral_supervisor *supervisor)
{
    return supervisor->stopping;
}

void corral_supervisor_count_spawn(corral_supervisor *supervisor)
{
    supervisor->spawn_counter++;
}

uint64_t corral_supervisor_spawn_counter(const corral_supervisor *supervisor)
{
    return supervisor->spawn_counter;
}

uint32_t corral_supervisor_next_generation(corral_supervisor *supervisor)
{
    return ++supervisor->last_generation;
}

void corral_supervisor_add_process(corral_supervisor *supervisor, corral_process_record *record)
{
    g_hash_table_insert(supervisor->processes, GINT_TO_POINTER(record->view.pid), record);
}

void corral_supervisor_forget_process(corral_supervisor *supervisor,
                                      corral_process_record *record)
{
    g_hash_table_remove(supervisor->processes, GINT_TO_POINTER(record->view.pid));
}

corral_process_record *corral_supervisor_find_process(corral_supervisor *supervisor, pid_t pid)
{
    return g_hash_table_lookup(supervisor->processes, GINT_TO_POINTER(pid));
}

corral_supervisor *corral_supervisor_new(corral_config *config, GError **error)
{
    corral_supervisor *supervisor = g_new0(corral_supervisor, 1);

    supervisor->config = config;
    supervisor->services = g_ptr_array_new();
    supervisor->processes = g_hash_table_new(g_direct_hash, g_direct_equal);
    supervisor->dev_null = open("/dev/null", O_RDWR | O_CLOEXEC);
    supervisor->loader = corral_policy_loader_new(config->policy_dir);
    /* Services reach the supervisor through the host while being built. */
    running_supervisor = supervisor;

    if (g_mkdir_with_parents(config->base_dir, 0755) < 0) {
        g_set_error(error, CORRAL_CONFIG_ERROR, CORRAL_CONFIG_ERROR_IO,
                    "%s: [corral] base_dir: cannot create %s: %s", config->main_file,
                    config->base_dir, g_strerror(errno));
        goto fail;
    }
    for (guint i = 0; i < config->services->len; i++) {
        const corral_service_config *sc = g_ptr_array_index(config->services, i);
        GError *local = NULL;
        corral_policy_module *module;
        corral_service *svc;

        module = corral_policy_loader_load(supervisor->loader, sc->policy, &local);
        if (module == NULL) {
            g_set_error(error, CORRAL_CONFIG_ERROR, CORRAL_CONFIG_ERROR_VALUE,
                        "%s: [service %s] policy: %s", sc->file, sc->name, local->message);
            g_error_free(local);
            goto fail;
        }
        svc = corral_service_new(supervisor, sc, module, error);
        if (svc == NULL) {
            corral_policy_module_unref(module);
            goto fail;
        }
        g_ptr_array_add(supervisor->services, svc);
    }
    return supervisor;
fail:
    corral_supervisor_free(supervisor);
    return NULL;
}

void corral_supervisor_free(corral_supervisor *supervisor)
{
    if (supervisor == NULL)
        return;
    if (supervisor->shutdown_timer != 0)
        g_source_remove(supervisor->shutdown_timer);
    for (guint i = 0; i < supervisor->services->len; i++) {
        corral_service *svc = g_ptr_array_index(supervisor->services, i);
        corral_policy_module *module = svc->policy_module;
        corral_service_free(svc);
        corral_policy_module_unref(module);
    }
    g_ptr_array_unref(supervisor->services);
    g_hash_table_destroy(supervisor->processes);
    corral_policy_loader_free(supervisor->loader);
    if (supervisor->dev_null >= 0)
        close(supervisor->dev_null);
    if (supervisor->loop != NULL)
        g_main_loop_unref(supervisor->loop);
    corral_config_free(supervisor->config);
    if (running_supervisor == supervisor)
        running_supervisor = NULL;
    g_free(supervisor);
}

/* ------------------------------------------------------------------ */
/* Reaping.                                                             */

void corral_supervisor_reap(corral_supervisor *supervisor)
{
    int status;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        corral_process_record *record = corral_supervisor_find_process(supervisor, pid);

        if (record == NULL) {
            log_error("waitpid() returned unknown PID %d", (int)pid);
            continue;
        }
        /* A record written just before exiting may still sit in the pipe:
         * take it first, so a process that did report is not judged as
         * having died before its first status. */
        corral_service_drain_status(record->service);
        corral_service_process_exited(record->service, record, status);
    }
}

/* ------------------------------------------------------------------ */
/* Shutdown.                                                            */

static bool any_process_available(const corral_supervisor *supervisor)
{
    for (guint i = 0; i < supervisor->services->len; i++) {
        const corral_service *svc = g_ptr_array_index(supervisor->services, i);
        if (svc->state.process_avail > 0)
            return true;
    }
    return false;
}

static gboolean on_quit_pause_over(gpointer data)
{
    corral_supervisor *supervisor = data;

    supervisor->shutdown_timer = 0;
    corral_supervisor_reap(supervisor);
    g_main_loop_quit(supervisor->loop);
    return G_SOURCE_REMOVE;
}

/* SIGQUIT asks lib-master processes to give their listeners back, so a new
 * master can bind the same addresses while busy processes finish. */
static void send_quit_and_finish(corral_supervisor *supervisor)
{
    unsigned sent = 0;

    for (guint i = 0; i < supervisor->services->len; i++) {
        corral_service *svc = g_ptr_array_index(supervisor->services, i);
        for (GList *link = svc->processes.head; link != NULL; link = link->next) {
            corral_process_record *record = link->data;
            if (kill(record->view.pid, SIGQUIT) == 0)
                sent++;
        }
    }
    if (sent == 0) {
        g_main_loop_quit(supervisor->loop);
        return;
    }
    supervisor->shutdown_timer = g_timeout_add(SHUTDOWN_AFTER_QUIT_MSECS, on_quit_pause_over,
                                               supervisor);
}

static gboolean on_shutdown_poll(gpointer data)
{
    corral_supervisor *supervisor = data;

    corral_supervisor_reap(supervisor);
    for (guint i = 0; i < supervisor->services->len; i++)
        corral_service_read_status(g_ptr_array_index(supervisor->services, i));
    if (any_process_available(supervisor) &&
        corral_supervisor_now_usec() < supervisor->shutdown_deadline_usec)
        return G_SOURCE_CONTINUE;
    supervisor->shutdown_timer = 0;
    send_quit_and_finish(supervisor);
    return G_SOURCE_REMOVE;
}

static void begin_shutdown(corral_supervisor *supervisor, const struct signalfd_siginfo *info)
{
    log_warning("Killed with signal %u (by pid=%u uid=%u code=%s)", info->ssi_signo,
                info->ssi_pid, info->ssi_uid, corral_signal_code_name(info->ssi_code));
    if (supervisor->stopping)
        return;
    supervisor->stopping = true;
    for (guint i = 0; i < supervisor->services->len; i++)
        corral_service_stop(g_ptr_array_index(supervisor->services, i));
    for (guint i = 0; i < supervisor->services->len; i++)
        corral_service_close_dead_pipe(g_ptr_array_index(supervisor->services, i));
    supervisor->shutdown_deadline_usec =
        corral_supervisor_now_usec() + SHUTDOWN_WAIT_MSECS * (uint64_t)1000;
    supervisor->shutdown_timer = g_timeout_add(SHUTDOWN_POLL_MSECS, on_shutdown_poll, supervisor);
}

static void on_signal(const struct signalfd_siginfo *info, void *data)
{
    corral_supervisor *supervisor = data;

    switch (info->ssi_signo) {
    case SIGCHLD:
        corral_supervisor_reap(supervisor);
        break;
    case SIGTERM:
    case SIGINT:
        begin_shutdown(supervisor, info);
        break;
    case SIGHUP:
        log_warning("SIGHUP received - configuration reload is not supported by this "
                    "version; restart corrald to apply changes");
        break;
    case SIGUSR1:
        /* stderr needs no reopening; file logging would reopen here. */
        log_info("SIGUSR1 received - nothing to reopen when logging to stderr");
        break;
    default:
        break;
    }
}

int corral_supervisor_run(corral_supervisor *supervisor)
{
    GError *error = NULL;
    int exit_code = 0;

    if (!corral_signals_start(on_signal, supervisor, &error)) {
        log_error("%s", error->message);
        g_error_free(error);
        return 1;
    }
    supervisor->loop = g_main_loop_new(NULL, FALSE);
    log_info("corrald v%s starting up with %u service%s", CORRAL_VERSION,
             supervisor->services->len, supervisor->services->len == 1 ? "" : "s");

    for (guint i = 0; i < supervisor->services->len; i++) {
        corral_service *svc = g_ptr_array_index(supervisor->services, i);
        if (!corral_service_start(svc, &error)) {
            log_error("%s", error->message);
            g_clear_error(&error);
            exit_code = 1;
        }
    }
    if (exit_code == 0) {
        for (guint i = 0; i < supervisor->services->len; i++)
            corral_service_started(g_ptr_array_index(supervisor->services, i));
        g_main_loop_run(supervisor->loop);
    }
    corral_supervisor_reap(supervisor);
    corral_signals_stop();
    return exit_code;
}
