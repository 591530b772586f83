/* SPDX-License-Identifier: MIT */
#include "supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "corral-build.h"
#include "generation.h"
#include "listener.h"
#include "rlimits.h"
#include "log.h"
#include "orphans.h"
#include "sd-notify.h"
#include "service.h"
#include "signals.h"

/* Dovecot's MAX_DIE_WAIT_MSECS and the pause after the SIGQUITs. */
#define SHUTDOWN_WAIT_MSECS 5000
#define SHUTDOWN_POLL_MSECS 100
#define SHUTDOWN_AFTER_QUIT_MSECS 1000

struct corral_supervisor {
    corral_generation *current;
    GPtrArray *retiring;          /* corral_generation*, draining after reloads */
    const corral_generation *predecessor; /* while a reload is being built */
    const corral_config *building_config; /* likewise: the config being built */
    GHashTable *processes;        /* pid -> corral_process_record*, every generation */
    uint64_t spawn_counter;
    uint32_t last_generation;
    int dev_null;
    bool stopping;
    bool quitting;                /* SIGQUIT sent: only the final pause is left */
    GMainLoop *loop;
    guint shutdown_timer;
    int64_t start_usec;           /* unix time */
    int64_t reload_usec;          /* unix time of the last reload, 0 before any */
    char *reload_error;           /* NULL when the last reload succeeded */
    int64_t load_success_usec;    /* the start, or the last reload that worked */
    uint64_t shutdown_deadline_usec;
};

static corral_supervisor *running_supervisor;

corral_supervisor *corral_supervisor_get(void)
{
    return running_supervisor;
}

const corral_config *corral_supervisor_config(const corral_supervisor *supervisor)
{
    /* While a reload builds a generation, its services must see the
     * configuration they come from, not the running one. */
    return supervisor->building_config != NULL ? supervisor->building_config
                                               : supervisor->current->config;
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

corral_listener *corral_supervisor_running_listener(corral_supervisor *supervisor,
                                                   const corral_listener_config *config)
{
    return supervisor->predecessor != NULL
               ? corral_generation_find_listener(supervisor->predecessor, config)
               : NULL;
}

corral_supervisor *corral_supervisor_new(corral_config *config, GError **error)
{
    corral_supervisor *supervisor = g_new0(corral_supervisor, 1);

    supervisor->retiring = g_ptr_array_new();
    supervisor->start_usec = g_get_real_time();
    supervisor->load_success_usec = supervisor->start_usec;
    supervisor->processes = g_hash_table_new(g_direct_hash, g_direct_equal);
    supervisor->dev_null = open("/dev/null", O_RDWR | O_CLOEXEC);
    /* Services reach the supervisor through the host while being built. */
    running_supervisor = supervisor;
    supervisor->building_config = config;
    supervisor->current = corral_generation_build(supervisor, config, NULL, error);
    supervisor->building_config = NULL;
    if (supervisor->current == NULL) {
        corral_supervisor_free(supervisor);
        return NULL;
    }
    return supervisor;
}

void corral_supervisor_free(corral_supervisor *supervisor)
{
    if (supervisor == NULL)
        return;
    if (supervisor->shutdown_timer != 0)
        g_source_remove(supervisor->shutdown_timer);
    corral_generation_free(supervisor->current);
    for (guint i = 0; i < supervisor->retiring->len; i++)
        corral_generation_free(g_ptr_array_index(supervisor->retiring, i));
    g_ptr_array_unref(supervisor->retiring);
    g_hash_table_destroy(supervisor->processes);
    if (supervisor->dev_null >= 0)
        close(supervisor->dev_null);
    if (supervisor->loop != NULL)
        g_main_loop_unref(supervisor->loop);
    if (running_supervisor == supervisor)
        running_supervisor = NULL;
    g_free(supervisor->reload_error);
    g_free(supervisor);
}

/* ------------------------------------------------------------------ */
/* Reaping.                                                             */

void corral_supervisor_drain_status(corral_supervisor *supervisor)
{
    GPtrArray *services = supervisor->current->services;

    for (guint i = 0; i < services->len; i++)
        corral_service_drain_status(g_ptr_array_index(services, i));
}

void corral_supervisor_reap(corral_supervisor *supervisor)
{
    int status;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        corral_process_record *record = corral_supervisor_find_process(supervisor, pid);

        if (record == NULL) {
            corral_orphans_reaped(pid);
            continue;
        }
        /* A record written just before exiting may still sit in the pipe:
         * take it first, so a process that did report is not judged as
         * having died before its first status. */
        corral_service_drain_status(record->service);
        corral_service_process_exited(record->service, record, status);
    }
    corral_supervisor_free_drained_generations(supervisor);
}

void corral_supervisor_free_drained_generations(corral_supervisor *supervisor)
{
    for (guint i = 0; i < supervisor->retiring->len;) {
        corral_generation *generation = g_ptr_array_index(supervisor->retiring, i);
        if (corral_generation_process_count(generation) == 0) {
            g_ptr_array_remove_index(supervisor->retiring, i);
            corral_generation_free(generation);
        } else {
            i++;
        }
    }
}

/* ------------------------------------------------------------------ */
/* Reload.                                                              */

/* Like Dovecot's post-reload timer: the first round asks stragglers to
 * leave with SIGTERM, every later round kills them. */
static gboolean on_reload_kill_timer(gpointer data)
{
    corral_generation *generation = data;
    int signo = generation->kill_rounds++ == 0 ? SIGTERM : SIGKILL;
    unsigned uninitialized;
    unsigned sent = corral_generation_signal(generation, signo, true, &uninitialized);

    if (sent == 0)
        return G_SOURCE_CONTINUE;
    if (uninitialized > 0)
        log_warning("Processes aren't dying after reload, sent %s to %u processes. "
                    "(%u processes still uninitialized)",
                    signo == SIGTERM ? "SIGTERM" : "SIGKILL", sent, uninitialized);
    else
        log_warning("Processes aren't dying after reload, sent %s to %u processes.",
                    signo == SIGTERM ? "SIGTERM" : "SIGKILL", sent);
    return G_SOURCE_CONTINUE;
}

int64_t corral_supervisor_start_usec(const corral_supervisor *supervisor)
{
    return supervisor->start_usec;
}

void corral_supervisor_last_reload(const corral_supervisor *supervisor,
                                   corral_reload_outcome *outcome)
{
    outcome->time_usec = supervisor->reload_usec;
    outcome->ok = supervisor->reload_error == NULL;
    outcome->error = supervisor->reload_error;
    outcome->success_usec = supervisor->load_success_usec;
}

/* Said at the more verbose of the two levels, so that the line shows. */
static void apply_log_level(corral_level old, corral_level fresh)
{
    if (old == fresh)
        return;
    if (fresh > old)
        log_warning("log_level is now %s", corral_log_level_name(fresh));
    corral_log_set_level(fresh);
    if (fresh < old)
        log_warning("log_level is now %s", corral_log_level_name(fresh));
}

/* Kept for corralctl status, the metrics and the sd_notify status line. */
static void record_reload(corral_supervisor *supervisor, const GError *error)
{
    supervisor->reload_usec = g_get_real_time();
    g_clear_pointer(&supervisor->reload_error, g_free);
    if (error != NULL)
        supervisor->reload_error = g_strdup(error->message);
    else
        supervisor->load_success_usec = supervisor->reload_usec;
}


/* What an empty or truncated configuration file would do to the running
 * services; see corral_supervisor_reload(). */
static bool reload_is_plausible(const corral_generation *old, const corral_config *config,
                                GError **error)
{
    if (config->services->len == 0 && old->services->len > 0) {
        g_set_error(error, CORRAL_CONFIG_ERROR, CORRAL_CONFIG_ERROR_VALUE,
                    "%s: the new configuration defines no service, and %u %s running: an "
                    "empty or half-written file? (corralctl reload --force applies it)",
                    config->main_file, old->services->len,
                    old->services->len == 1 ? "is" : "are");
        return false;
    }
    for (guint i = 0; i < old->services->len; i++) {
        const corral_service *svc = g_ptr_array_index(old->services, i);

        if (svc->stopped_by_operator || svc->config->listeners->len == 0)
            continue;
        for (guint j = 0; j < config->services->len; j++) {
            const corral_service_config *sc = g_ptr_array_index(config->services, j);

            if (strcmp(sc->name, svc->config->name) == 0 && sc->listeners->len == 0) {
                g_set_error(error, CORRAL_CONFIG_ERROR, CORRAL_CONFIG_ERROR_VALUE,
                            "%s: [service %s] would lose all %u of its listeners: a "
                            "half-written file? (corralctl reload --force applies it)",
                            sc->file, sc->name, svc->config->listeners->len);
                return false;
            }
        }
    }
    return true;
}

bool corral_supervisor_reload(corral_supervisor *supervisor, bool force, GError **error)
{
    corral_generation *old = supervisor->current;
    corral_generation *fresh;
    corral_config *config;
    GError *local = NULL;

    if (supervisor->stopping) {
        g_set_error(error, CORRAL_CONFIG_ERROR, CORRAL_CONFIG_ERROR_IO,
                    "corrald is shutting down");
        return false;
    }
    corral_notify_reloading();
    config = corral_config_load(old->config->main_file, &local);
    if (config != NULL && !force && !reload_is_plausible(old, config, &local)) {
        corral_config_free(config);
        config = NULL;
    }
    if (config != NULL) {
        supervisor->predecessor = old;
        supervisor->building_config = config;
        fresh = corral_generation_build(supervisor, config, old, &local);
        supervisor->predecessor = NULL;
        supervisor->building_config = NULL;
        if (fresh != NULL && !corral_generation_commit(fresh, &local)) {
            corral_generation_free(fresh);
            fresh = NULL;
        }
    } else {
        fresh = NULL;
    }
    if (fresh == NULL) {
        log_error("Config reload failed: %s", local->message);
        record_reload(supervisor, local);
        g_propagate_error(error, local);
        corral_notify_ready();
        return false;
    }

    record_reload(supervisor, NULL);
    apply_log_level((corral_level)old->config->log_level,
                    (corral_level)fresh->config->log_level);
    corral_generation_retire(old);
    supervisor->current = fresh;
    if (!corral_generation_start(fresh, &local)) {
        log_error("%s", local->message);
        g_clear_error(&local);
    }
    if (corral_generation_process_count(old) == 0) {
        corral_generation_free(old);
    } else {
        g_ptr_array_add(supervisor->retiring, old);
        old->kill_timer = g_timeout_add(fresh->config->reload_kill_timeout_msecs,
                                        on_reload_kill_timer, old);
    }
    log_info("Configuration reloaded: %u service%s", fresh->services->len,
             fresh->services->len == 1 ? "" : "s");
    corral_notify_ready();
    return true;
}

/* ------------------------------------------------------------------ */
/* Shutdown.                                                            */

/* A process that died of the SIGQUIT is not reaped, but what it forked
 * must not outlive corrald (process-group.h). */
static void kill_orphans(corral_supervisor *supervisor)
{
    unsigned killed = corral_generation_kill_orphans(supervisor->current);

    for (guint i = 0; i < supervisor->retiring->len; i++)
        killed += corral_generation_kill_orphans(g_ptr_array_index(supervisor->retiring, i));
    if (killed > 0)
        log_info("Killed what was left of %u process group%s", killed,
                 killed == 1 ? "" : "es");
}

static gboolean on_quit_pause_over(gpointer data)
{
    corral_supervisor *supervisor = data;

    supervisor->shutdown_timer = 0;
    kill_orphans(supervisor);
    g_main_loop_quit(supervisor->loop);
    return G_SOURCE_REMOVE;
}

/* SIGQUIT asks lib-master processes to give their listeners back, so a new
 * master can bind the same addresses while busy processes finish. */
static void send_quit_and_finish(corral_supervisor *supervisor)
{
    /* Like Dovecot: every process of the current configuration, reported
     * or not; processes of retired ones are already on their way out. */
    unsigned sent = corral_generation_quit(supervisor->current);

    supervisor->quitting = true;
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
    corral_supervisor_drain_status(supervisor);
    if (corral_generation_any_available(supervisor->current) &&
        corral_supervisor_now_usec() < supervisor->shutdown_deadline_usec)
        return G_SOURCE_CONTINUE;
    supervisor->shutdown_timer = 0;
    send_quit_and_finish(supervisor);
    return G_SOURCE_REMOVE;
}

void corral_supervisor_shutdown(corral_supervisor *supervisor)
{
    if (supervisor->stopping)
        return;
    supervisor->stopping = true;
    corral_notify_stopping();
    corral_generation_stop(supervisor->current);
    /* Dovecot waits for its processes in a loop of its own, where no
     * policy timer (an idle kill) of any configuration fires any more. */
    corral_generation_mute_timers(supervisor->current);
    for (guint i = 0; i < supervisor->retiring->len; i++)
        corral_generation_mute_timers(g_ptr_array_index(supervisor->retiring, i));
    supervisor->shutdown_deadline_usec =
        corral_supervisor_now_usec() + SHUTDOWN_WAIT_MSECS * (uint64_t)1000;
    supervisor->shutdown_timer = g_timeout_add(SHUTDOWN_POLL_MSECS, on_shutdown_poll, supervisor);
}

static void on_signal(const struct signalfd_siginfo *info, void *data)
{
    corral_supervisor *supervisor = data;

    switch (info->ssi_signo) {
    case SIGCHLD:
        /* After the SIGQUITs the master only pauses and leaves, as
         * Dovecot's does: what dies then is not judged or logged. */
        if (!supervisor->quitting)
            corral_supervisor_reap(supervisor);
        break;
    case SIGTERM:
    case SIGINT:
    case SIGHUP:
        /* Dovecot's shutdown waits in a loop of its own that handles no
         * signal but SIGCHLD: once stopping, these go unseen. */
        if (supervisor->stopping)
            break;
        if (info->ssi_signo == SIGHUP) {
            log_warning("SIGHUP received - reloading configuration");
            (void)corral_supervisor_reload(supervisor, false, NULL);
            break;
        }
        log_warning("Killed with signal %u (by pid=%u uid=%u code=%s)", info->ssi_signo,
                    info->ssi_pid, info->ssi_uid, corral_signal_code_name(info->ssi_code));
        corral_supervisor_shutdown(supervisor);
        break;
    case SIGUSR1:
        corral_log_reopen();
        break;
    default:
        break;
    }
}

/* The accept queues fill and empty between any two looks; a look every
 * second gives the high-water mark that php-fpm's "max listen queue" is. */
static gboolean on_queue_sample(gpointer data)
{
    GPtrArray *services = ((corral_supervisor *)data)->current->services;

    for (guint i = 0; i < services->len; i++) {
        corral_service *svc = g_ptr_array_index(services, i);

        if (svc->monitoring)
            corral_service_sample_queue(svc);
    }
    return G_SOURCE_CONTINUE;
}

/* True when process `pid` holds a descriptor for the socket `fd` is. */
static bool process_holds_socket(pid_t pid, int fd)
{
    char *dir_path = g_strdup_printf("/proc/%d/fd", (int)pid);
    GDir *dir = g_dir_open(dir_path, 0, NULL);
    struct stat ours;
    const char *name;
    char *wanted;
    bool found = false;

    if (dir == NULL || fstat(fd, &ours) < 0) {
        if (dir != NULL)
            g_dir_close(dir);
        g_free(dir_path);
        return false;
    }
    wanted = g_strdup_printf("socket:[%lu]", (unsigned long)ours.st_ino);
    while (!found && (name = g_dir_read_name(dir)) != NULL) {
        char *link_path = g_build_filename(dir_path, name, NULL);
        char *target = g_file_read_link(link_path, NULL);

        found = target != NULL && strcmp(target, wanted) == 0;
        g_free(target);
        g_free(link_path);
    }
    g_dir_close(dir);
    g_free(wanted);
    g_free(dir_path);
    return found;
}

/* Processes still alive as corrald leaves are named.  One that gave its
 * listeners back on SIGQUIT is finishing its clients, as in Dovecot (which
 * says nothing of it: a debug line); one that kept them keeps their
 * addresses bound, and a new corrald cannot bind them until it exits:
 * that is a warning, with the pid to kill. */
static void warn_about_survivors(corral_supervisor *supervisor)
{
    GHashTableIter iter;
    gpointer value;

    g_hash_table_iter_init(&iter, supervisor->processes);
    while (g_hash_table_iter_next(&iter, NULL, &value)) {
        corral_process_record *record = value;
        corral_service *svc = record->service;
        pid_t pid = record->view.pid;
        GString *held;
        int status;

        if (waitpid(pid, &status, WNOHANG) != 0)
            continue; /* gone (or not ours to wait for) */
        held = g_string_new(NULL);
        for (guint i = 0; i < supervisor->current->services->len; i++) {
            corral_service *any = g_ptr_array_index(supervisor->current->services, i);
            for (guint j = 0; j < any->listeners->len; j++) {
                corral_listener *listener = g_ptr_array_index(any->listeners, j);
                if (process_holds_socket(pid, listener->fd))
                    g_string_append_printf(held, "%s%s", held->len > 0 ? ", " : "",
                                           listener->label);
            }
        }
        if (held->len > 0)
            log_warning("service(%s): process %d is still running after shutdown (it did not "
                        "leave on SIGQUIT or the closed master-dead pipe) and still holds "
                        "listener %s: the address stays bound until it exits (kill %d)",
                        svc->config->name, (int)pid, held->str, (int)pid);
        else
            log_debug("service(%s): process %d is still finishing its clients after shutdown",
                      svc->config->name, (int)pid);
        g_string_free(held, TRUE);
    }
}

int corral_supervisor_run(corral_supervisor *supervisor)
{
    GError *error = NULL;
    int exit_code = 0;
    guint sample_timer;

    if (!corral_signals_start(on_signal, supervisor, &error)) {
        log_error("%s", error->message);
        g_error_free(error);
        return 1;
    }
    supervisor->loop = g_main_loop_new(NULL, FALSE);
    corral_exit_texts_init();
    corral_limits_check(supervisor->current->config);
    log_info("corrald v%s starting up with %u service%s", CORRAL_VERSION,
             supervisor->current->services->len,
             supervisor->current->services->len == 1 ? "" : "s");

    sample_timer = g_timeout_add_seconds(1, on_queue_sample, supervisor);
    if (corral_generation_start(supervisor->current, &error)) {
        corral_notify_ready();
        g_main_loop_run(supervisor->loop);
    } else {
        log_error("%s", error->message);
        g_clear_error(&error);
        exit_code = 1;
    }
    g_source_remove(sample_timer);
    if (!supervisor->quitting)
        corral_supervisor_reap(supervisor);
    warn_about_survivors(supervisor);
    corral_signals_stop();
    return exit_code;
}

GPtrArray *corral_supervisor_services(corral_supervisor *supervisor)
{
    return supervisor->current->services;
}
