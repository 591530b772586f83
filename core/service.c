/* SPDX-License-Identifier: MIT */
#include "service.h"

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "accounting.h"
#include "build-tree.h"
#include "corral-build.h"
#include "credentials.h"
#include "inetd.h"
#include "listener.h"
#include "log-limit.h"
#include "load-sampler.h"
#include "log.h"
#include "process-group.h"
#include "signals.h"
#include "spawn.h"
#include "status.h"
#include "supervisor.h"
#include "tab-escape.h"

/* Descriptor layout of Dovecot 2.3's lib-master children. */
enum {
    CHILD_FD_ANVIL = 3,
    CHILD_FD_LOGIN_NOTIFY = 4,
    CHILD_FD_STATUS = 5,
    CHILD_FD_MASTER_DEAD = 6,
    CHILD_FD_FIRST_LISTENER = 7,
};

struct corral_timer {
    corral_service *svc;
    guint source;
    bool repeat;
    bool firing;
    bool removed;
    bool muted;     /* no longer fires; the policy may still remove it */
    bool shadow;    /* a shadow policy's: never outlives stop() */
    corral_timer_fn *fn;
    void *data;
};

static void watch_listeners(struct corral_service *svc);

/* Lines about a service carry its name and policy as journal fields. */
#define svc_log(svc, level, fmt, ...)                                                   \
    corral_log_about_line(level,                                                        \
                          &(corral_log_about){ (svc)->config->name,                      \
                                               (svc)->policy_module->name, 0 },          \
                          "service(%s): " fmt, (svc)->config->name, ##__VA_ARGS__)

/* Policy callbacks run only while the service is monitored; during a stop
 * the core alone finishes the work. */
#define POLICY_CALL(svc, method, ...)                                             \
    do {                                                                          \
        if ((svc)->monitoring && !(svc)->state.stopping) {                        \
            if ((svc)->policy_module->policy->method != NULL)                     \
                (svc)->policy_module->policy->method((svc)->policy_state, ##__VA_ARGS__); \
            corral_shadows_##method((svc)->shadows, ##__VA_ARGS__);               \
        }                                                                         \
    } while (0)

static void close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

/* ------------------------------------------------------------------ */
/* Preparing what every spawn needs.                                    */

/* "FILE:LINE: [service NAME] KEY: problem", for a value found bad only
 * now that it is used. */
static void key_error(GError **error, const corral_service_config *config, const char *key,
                      const char *format, ...) G_GNUC_PRINTF(4, 5);

static void key_error(GError **error, const corral_service_config *config, const char *key,
                      const char *format, ...)
{
    char *where = corral_service_config_where(config, key);
    char *problem;
    va_list args;

    va_start(args, format);
    problem = g_strdup_vprintf(format, args);
    va_end(args);
    g_set_error(error, CORRAL_CONFIG_ERROR, CORRAL_CONFIG_ERROR_VALUE, "%s: %s", where, problem);
    g_free(problem);
    g_free(where);
}

/* Dovecot escapes listener names in SOCKET<n>_SETTINGS this way. */
static char *tab_escape(const char *text)
{
    GString *out = g_string_new(NULL);

    corral_tab_escape_append(out, text);
    return g_string_free(out, FALSE);
}

/* A bare name is looked up in the installed libexec folder, then, for a
 * corrald run from its build folder, in that build's examples; a relative
 * path is taken from the config folder. */
static char *resolve_executable(const char *word, const char *config_dir)
{
    const char *build_root = corral_build_tree_root();
    char *path;

    if (g_path_is_absolute(word))
        return g_strdup(word);
    if (strchr(word, '/') != NULL)
        return g_build_filename(config_dir, word, NULL);
    path = g_build_filename(CORRAL_LIBEXEC_DIR, word, NULL);
    if (access(path, X_OK) == 0 || build_root == NULL)
        return path;
    g_free(path);
    path = g_build_filename(build_root, "examples", word, NULL);
    if (access(path, X_OK) == 0)
        return path;
    g_free(path);
    return g_build_filename(CORRAL_LIBEXEC_DIR, word, NULL);
}

static bool prepare_command(corral_service *svc, GError **error)
{
    const corral_service_config *config = svc->config;
    char **words = g_strsplit(config->executable, " ", -1);
    GPtrArray *argv = g_ptr_array_new();
    char *checked;

    for (char **word = words; *word != NULL; word++) {
        if (**word != '\0')
            g_ptr_array_add(argv, g_strdup(*word));
    }
    g_strfreev(words);
    g_ptr_array_add(argv, NULL);
    svc->argv = (char **)g_ptr_array_free(argv, FALSE);
    if (svc->argv[0] == NULL) {
        key_error(error, config, "executable", "empty");
        return false;
    }
    /* A chroot that is not there would otherwise show as a missing
     * executable inside it. */
    if (config->chroot != NULL && geteuid() == 0) {
        struct stat jail;

        if (stat(config->chroot, &jail) < 0) {
            key_error(error, config, "chroot", "%s: %s", config->chroot, g_strerror(errno));
            return false;
        }
        if (!S_ISDIR(jail.st_mode)) {
            key_error(error, config, "chroot", "%s is not a folder", config->chroot);
            return false;
        }
    }
    svc->exec_path = resolve_executable(svc->argv[0], corral_supervisor_config(svc->supervisor)->dir);
    /* A chrooted process finds its executable inside the chroot. */
    checked = config->chroot != NULL && geteuid() == 0
                  ? g_build_filename(config->chroot, svc->exec_path, NULL)
                  : g_strdup(svc->exec_path);
    if (access(checked, X_OK) < 0) {
        key_error(error, config, "executable", "%s: %s", checked, g_strerror(errno));
        g_free(checked);
        return false;
    }
    /* access(X_OK) is true of a folder one may enter. */
    {
        struct stat st;
        if (stat(checked, &st) == 0 && !S_ISREG(st.st_mode)) {
            key_error(error, config, "executable", "%s is %s, not a program", checked,
                      S_ISDIR(st.st_mode) ? "a folder" : "not a regular file");
            g_free(checked);
            return false;
        }
    }
    g_free(checked);
    return true;
}

/* Variables that the worker protocol sets itself. */
static bool is_protocol_variable(const char *name)
{
    static const char *const fixed[] = {
        "DOVECOT_CHILD_PROCESS", "DOVECOT_HOSTNAME", "SERVICE_NAME", "CLIENT_LIMIT",
        "PROCESS_LIMIT", "PROCESS_MIN_AVAIL", "IDLE_KILL", "SERVICE_COUNT", "LOG_SERVICE",
        "LOG_DEBUG", "CORRAL_BASE_DIR", "SOCKET_COUNT", "GENERATION",
    };

    for (size_t i = 0; i < G_N_ELEMENTS(fixed); i++) {
        if (strcmp(name, fixed[i]) == 0)
            return true;
    }
    return g_str_has_prefix(name, "SOCKET") && g_str_has_suffix(name, "_SETTINGS");
}

/* What every protocol passes on: a few of corrald's own variables and the
 * service's `environment`. */
static char **service_environment(const corral_service *svc)
{
    const char *preserved[] = { "TZ", "PATH", "LANG", "CORE_OUTOFMEM", "CORE_ERROR" };
    char **env = NULL;

    for (size_t i = 0; i < G_N_ELEMENTS(preserved); i++) {
        const char *value = g_getenv(preserved[i]);
        if (value != NULL)
            env = g_environ_setenv(env, preserved[i], value, TRUE);
    }
    return corral_exec_config_apply_environment(&svc->config->exec, env);
}

/* systemd's sd_listen_fds(3) variables but LISTEN_PID, which each child
 * learns at spawn; inetd's per-connection variables come at spawn too. */
static void prepare_foreign_environment(corral_service *svc)
{
    char **env = service_environment(svc);

    if (svc->config->protocol.protocol == CORRAL_WORKER_PROTOCOL_SYSTEMD) {
        GString *names = g_string_new(NULL);
        char *count = g_strdup_printf("%u", svc->listeners->len);

        for (guint i = 0; i < svc->listeners->len; i++) {
            corral_listener *listener = g_ptr_array_index(svc->listeners, i);
            g_string_append_printf(names, "%s%s", i > 0 ? ":" : "", listener->config->name);
        }
        env = g_environ_unsetenv(env, "LISTEN_PID");
        env = g_environ_setenv(env, "LISTEN_FDS", count, TRUE);
        env = g_environ_setenv(env, "LISTEN_FDNAMES", names->str, TRUE);
        g_string_free(names, TRUE);
        g_free(count);
    }
    svc->env_base = env != NULL ? env : g_new0(char *, 1);
}

static void prepare_environment(corral_service *svc)
{
    const corral_service_config *config = svc->config;
    GPtrArray *env;
    char hostname[256] = "localhost";
    char **user_env;

    if (config->protocol.protocol != CORRAL_WORKER_PROTOCOL_DOVECOT) {
        prepare_foreign_environment(svc);
        return;
    }
    /* The service's own variables come first so that the protocol's,
     * added below, win (exec-config.h). */
    env = g_ptr_array_new();
    user_env = service_environment(svc);
    for (char **var = user_env; var != NULL && *var != NULL; var++) {
        const char *equals = strchr(*var, '=');
        char *name = g_strndup(*var, (gsize)(equals - *var));
        if (!is_protocol_variable(name))
            g_ptr_array_add(env, g_strdup(*var));
        g_free(name);
    }
    g_strfreev(user_env);
    (void)gethostname(hostname, sizeof(hostname) - 1);
    g_ptr_array_add(env, g_strdup("DOVECOT_CHILD_PROCESS=1"));
    g_ptr_array_add(env, g_strdup_printf("DOVECOT_HOSTNAME=%s", hostname));
    g_ptr_array_add(env, g_strdup_printf("SERVICE_NAME=%s", config->name));
    g_ptr_array_add(env, g_strdup_printf("CLIENT_LIMIT=%u", config->client_limit));
    g_ptr_array_add(env, g_strdup_printf("PROCESS_LIMIT=%u", config->process_limit));
    g_ptr_array_add(env, g_strdup_printf("PROCESS_MIN_AVAIL=%u", config->process_min_avail));
    g_ptr_array_add(env, g_strdup_printf("IDLE_KILL=%u", config->idle_kill_secs));
    if (config->service_count != 0)
        g_ptr_array_add(env, g_strdup_printf("SERVICE_COUNT=%u", config->service_count));
    g_ptr_array_add(env, g_strdup("LOG_SERVICE=1"));
    g_ptr_array_add(env, g_strdup("LOG_DEBUG="));
    g_ptr_array_add(env, g_strdup_printf("CORRAL_BASE_DIR=%s", corral_supervisor_config(svc->supervisor)->base_dir));
    for (guint i = 0; i < svc->listeners->len; i++) {
        corral_listener *listener = g_ptr_array_index(svc->listeners, i);
        char *name = tab_escape(listener->config->name);
        g_ptr_array_add(env, g_strdup_printf("SOCKET%u_SETTINGS=%s", i, name));
        g_free(name);
    }
    g_ptr_array_add(env, g_strdup_printf("SOCKET_COUNT=%u", svc->listeners->len));
    g_ptr_array_add(env, NULL);
    svc->env_base = (char **)g_ptr_array_free(env, FALSE);
}

/* Credentials are looked up once; they apply only when corrald is root. */
static bool prepare_credentials(corral_service *svc, GError **error)
{
    const corral_service_config *config = svc->config;
    corral_credentials credentials;

    if (geteuid() != 0 && (config->user != NULL || config->group != NULL ||
                           config->extra_groups != NULL || config->chroot != NULL))
        svc_log(svc, CORRAL_LEVEL_WARNING,
                "corrald is not root: user, group, extra_groups and chroot are not "
                "applied; processes run as uid %u", (unsigned)geteuid());
    if (!corral_credentials_resolve(config, &credentials, error))
        return false;
    svc->uid = credentials.uid;
    svc->gid = credentials.gid;
    svc->groups = credentials.groups;
    svc->group_count = credentials.group_count;
    return true;
}

static bool open_listeners(corral_service *svc, GError **error)
{
    const corral_service_config *config = svc->config;

    for (guint i = 0; i < config->listeners->len; i++) {
        const corral_listener_config *lc = g_ptr_array_index(config->listeners, i);
        corral_listener *running = corral_supervisor_running_listener(svc->supervisor, lc);
        GError *local = NULL;
        corral_listener *listener =
            corral_listener_open_successor(lc, config->listen_backlog, running, &local);

        if (listener == NULL) {
            key_error(error, config,
                      lc->kind == CORRAL_LISTENER_UNIX ? "unix_listener" : "inet_listener", "%s",
                      local->message);
            g_error_free(local);
            return false;
        }
        g_ptr_array_add(svc->listeners, listener);
    }
    return true;
}

static void sync_limits_into_state(corral_service *svc)
{
    const corral_service_config *config = svc->config;
    corral_service_state *st = &svc->state;

    st->name = config->name;
    st->type = config->type;
    st->process_limit = config->process_limit;
    st->process_min_avail = config->process_min_avail;
    st->client_limit = config->client_limit;
    st->service_count = config->service_count;
    st->idle_kill_secs = config->idle_kill_secs;
    st->have_listeners = svc->listeners->len > 0;
}

corral_service *corral_service_new(struct corral_supervisor *supervisor,
                                   const corral_service_config *config,
                                   corral_policy_module *module, corral_policy_loader *loader,
                                   GError **error)
{
    corral_service *svc = g_new0(corral_service, 1);
    char *problem = NULL;

    svc->supervisor = supervisor;
    svc->config = config;
    svc->policy_module = module;
    svc->listeners = g_ptr_array_new_with_free_func((GDestroyNotify)corral_listener_free);
    svc->status_pipe[0] = svc->status_pipe[1] = -1;
    svc->dead_pipe[0] = svc->dead_pipe[1] = -1;
    svc->log_pipe_write = -1;
    svc->login_notify_fd = -1;
    g_queue_init(&svc->processes);

    if (!prepare_command(svc, error) || !prepare_credentials(svc, error) ||
        !open_listeners(svc, error))
        goto fail;
    prepare_environment(svc);
    sync_limits_into_state(svc);

    svc->policy_values = corral_policy_values_parse(module, config, error);
    if (svc->policy_values == NULL)
        goto fail;
    svc->policy_state = module->policy->service_new(corral_host_get(), svc,
                                                    svc->policy_values, &problem);
    if (svc->policy_state == NULL) {
        g_set_error(error, CORRAL_CONFIG_ERROR, CORRAL_CONFIG_ERROR_VALUE,
                    "%s: [service %s] policy %s (%s): init failed: %s", config->file,
                    config->name, module->name, module->path,
                    problem != NULL ? problem : "no reason given");
        free(problem);
        goto fail;
    }
    if (config->shadow_policies != NULL && config->shadow_policies[0] != NULL) {
        svc->shadows = corral_shadows_new(svc, loader, error);
        if (svc->shadows == NULL)
            goto fail;
    }
    return svc;
fail:
    corral_service_free(svc);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Timers the policy arms.                                              */

static void timer_forget(corral_timer *timer)
{
    timer->svc->timers = g_list_remove(timer->svc->timers, timer);
    g_free(timer);
}

static gboolean on_policy_timer(gpointer data)
{
    corral_timer *timer = data;

    timer->firing = true;
    /* Records put off by the status watch may change what the policy
     * would decide, or remove this very timer (the free slot of M18). */
    corral_service_drain_status(timer->svc);
    if (!timer->removed)
        timer->fn(timer->data);
    timer->firing = false;
    if (timer->removed || !timer->repeat) {
        timer->source = 0;
        timer_forget(timer);
        return G_SOURCE_REMOVE;
    }
    if (timer->muted) {
        timer->source = 0;
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

static corral_timer *timer_add(corral_service *svc, unsigned msecs, bool repeat,
                               corral_timer_fn *fn, void *data, bool shadow)
{
    corral_timer *timer = g_new0(corral_timer, 1);

    timer->svc = svc;
    timer->shadow = shadow;
    timer->repeat = repeat;
    timer->fn = fn;
    timer->data = data;
    timer->source = g_timeout_add(msecs, on_policy_timer, timer);
    svc->timers = g_list_prepend(svc->timers, timer);
    return timer;
}

corral_timer *corral_service_timer_add(corral_service *svc, unsigned msecs, bool repeat,
                                       corral_timer_fn *fn, void *data)
{
    return timer_add(svc, msecs, repeat, fn, data, false);
}

corral_timer *corral_service_shadow_timer_add(corral_service *svc, unsigned msecs, bool repeat,
                                              corral_timer_fn *fn, void *data)
{
    return timer_add(svc, msecs, repeat, fn, data, true);
}

void corral_service_timer_remove(corral_service *svc, corral_timer *timer)
{
    (void)svc;
    if (timer == NULL || timer->removed)
        return;
    if (timer->firing) {
        timer->removed = true; /* on_policy_timer frees it on return */
        return;
    }
    if (timer->source != 0)
        g_source_remove(timer->source);
    timer_forget(timer);
}

void corral_service_mute_timers(corral_service *svc)
{
    for (GList *link = svc->timers; link != NULL; link = link->next) {
        corral_timer *timer = link->data;

        timer->muted = true;
        /* One on the stack loses its source when it returns. */
        if (!timer->firing && timer->source != 0) {
            g_source_remove(timer->source);
            timer->source = 0;
        }
    }
}

static void remove_timer_now(corral_service *svc, corral_timer *timer)
{
    if (timer->firing) {
        /* Its callback is on the stack; it frees itself on return. */
        timer->removed = true;
        svc->timers = g_list_remove(svc->timers, timer);
        return;
    }
    if (timer->source != 0)
        g_source_remove(timer->source);
    timer_forget(timer);
}

void corral_service_remove_timers(corral_service *svc)
{
    while (svc->timers != NULL)
        remove_timer_now(svc, svc->timers->data);
}

/* At stop(): every timer, or with CORRAL_POLICY_TIMERS_OUTLIVE_STOP only
 * the shadow policies' (they hear of no exit after stop()). */
static void remove_timers_at_stop(corral_service *svc)
{
    bool keep = corral_policy_module_flags(svc->policy_module) & CORRAL_POLICY_TIMERS_OUTLIVE_STOP;
    GList *link = svc->timers;

    while (link != NULL) {
        corral_timer *timer = link->data;

        link = link->next;
        if (!keep || timer->shadow)
            remove_timer_now(svc, timer);
    }
}

/* ------------------------------------------------------------------ */
/* Status records.                                                      */

/* Called when a process has just become busy: is every process now busy
 * at process_limit?  Only a process going to 0 free slots can make it so. */
static void note_if_full(corral_service *svc)
{
    const corral_service_state *st = &svc->state;

    if (st->process_avail == 0 && st->process_count >= st->process_limit) {
        svc->process_limit_reached_total++;
        corral_service_sample_queue(svc);
    }
}

static void apply_status(corral_service *svc, corral_process_record *record, unsigned count)
{
    corral_process *proc = &record->view;
    unsigned old_count;

    if (record->first_status_timer != 0) {
        g_source_remove(record->first_status_timer);
        record->first_status_timer = 0;
    }
    old_count = corral_account_status(&svc->state, proc, count, corral_supervisor_now_usec());
    if (old_count > 0 && count == 0)
        note_if_full(svc);
    record->idle_record_usec = proc->idle_since_usec != 0 ? proc->last_status_usec : 0;
    POLICY_CALL(svc, status_changed, proc, old_count);
}

static gboolean on_worker_fault_window_over(gpointer data)
{
    corral_service *svc = data;
    uint64_t suppressed = corral_log_limit_take_suppressed(&svc->worker_fault_log);

    svc->worker_fault_timer = 0;
    if (suppressed > 0)
        svc_log(svc, CORRAL_LEVEL_ERROR, "%" G_GUINT64_FORMAT " more such messages "
                "suppressed (invalid, impossible or partial status records)", suppressed);
    return G_SOURCE_REMOVE;
}

/* Logs `text` about what a worker sent, within the service's budget for
 * such lines (log-limit.h); what the budget holds back is counted in a
 * line of its own once the window is over. */
static void log_worker_fault(corral_service *svc, const char *text)
{
    uint64_t suppressed;

    if (!corral_log_limit_allow(&svc->worker_fault_log, corral_supervisor_now_usec(),
                                &suppressed)) {
        if (svc->worker_fault_timer == 0)
            svc->worker_fault_timer =
                g_timeout_add(CORRAL_LOG_LIMIT_WINDOW_USEC / 1000, on_worker_fault_window_over,
                              svc);
        return;
    }
    if (suppressed > 0)
        svc_log(svc, CORRAL_LEVEL_ERROR, "%s (%" G_GUINT64_FORMAT " more such messages "
                "suppressed)", text, suppressed);
    else
        svc_log(svc, CORRAL_LEVEL_ERROR, "%s", text);
}

/* A record is taken for a process of this service and generation, with
 * a count the process can have.  Who wrote it cannot be known: Dovecot's
 * lib-master insists that fd 5 be a FIFO, and a pipe does not tell
 * (docs/protocol.md, "Status records"). */
static corral_process_record *valid_record_process(corral_service *svc,
                                                   const corral_status_record *status)
{
    corral_process_record *record;
    char *text;

    record = corral_supervisor_find_process(svc->supervisor, status->pid);
    if (record == NULL)
        return NULL; /* already reaped, or never ours */
    if (record->service != svc || record->generation != status->generation) {
        svc->status_rejected_total++;
        text = g_strdup_printf("Ignoring invalid update from child %d (UID=%u)",
                               (int)status->pid, status->generation);
        log_worker_fault(svc, text);
        g_free(text);
        return NULL;
    }
    if (status->available_count > svc->state.client_limit) {
        svc->status_rejected_total++;
        text = g_strdup_printf("Ignoring status update from child %d: available_count %u is "
                               "above client_limit %u", (int)status->pid,
                               status->available_count, svc->state.client_limit);
        log_worker_fault(svc, text);
        g_free(text);
        return NULL;
    }
    return record;
}

/* Returns false once nothing more can be read now. */
static bool read_status_once(corral_service *svc)
{
    corral_status_record records[CORRAL_STATUS_READ_MAX_RECORDS];
    size_t count;
    char *text;

    if (svc->status_pipe[0] < 0)
        return false;
    switch (corral_status_read(svc->status_pipe[0], records, &count)) {
    case CORRAL_STATUS_READ_AGAIN:
        return false;
    case CORRAL_STATUS_READ_EOF:
        svc_log(svc, CORRAL_LEVEL_ERROR, "read(status) failed: EOF");
        corral_service_stop(svc);
        return false;
    case CORRAL_STATUS_READ_ERROR:
        svc_log(svc, CORRAL_LEVEL_ERROR, "read(status) failed: %s", g_strerror(errno));
        corral_service_stop(svc);
        return false;
    case CORRAL_STATUS_READ_PARTIAL:
        svc->status_rejected_total++;
        text = g_strdup_printf("service sent partial status update (%zu bytes)", count);
        log_worker_fault(svc, text);
        g_free(text);
        return true;
    case CORRAL_STATUS_READ_RECORDS:
        break;
    }
    svc->status_reads_total++;
    svc->status_records_total += count;
    for (size_t i = 0; i < count; i++) {
        corral_process_record *record = valid_record_process(svc, &records[i]);

        if (record != NULL)
            apply_status(svc, record, record->listeners_stale ? 0 : records[i].available_count);
    }
    return count == CORRAL_STATUS_READ_MAX_RECORDS;
}

/* Bounded, so that writers who never stop cannot hold the loop: the
 * watch reads the rest on its next turn. */
#define STATUS_DRAIN_MAX_READS 256

void corral_service_drain_status(corral_service *svc)
{
    for (int i = 0; i < STATUS_DRAIN_MAX_READS && read_status_once(svc); i++)
        ;
}

static void on_status_readable(void *data)
{
    corral_service_drain_status(data);
}

/* With at most one process free, the next record may be the one that
 * leaves none (rules M3 and M8 act on that): read it at once. */
static bool status_is_urgent(void *data)
{
    corral_service *svc = data;

    return svc->state.process_avail <= 1;
}

static void watch_status(corral_service *svc)
{
    svc->status_watch =
        corral_status_watch_new(svc->status_pipe[0], svc->config->status_batch_msecs * 1000ull,
                                on_status_readable, status_is_urgent, svc);
}

/* ------------------------------------------------------------------ */
/* Monitoring.                                                          */

static bool make_pipe(corral_service *svc, int fds[2], const char *what, GError **error)
{
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) {
        g_set_error(error, CORRAL_CONFIG_ERROR, CORRAL_CONFIG_ERROR_IO,
                    "service(%s): pipe() for %s failed: %s", svc->config->name, what,
                    g_strerror(errno));
        return false;
    }
    return true;
}

/* The notify state is the file offset of an unlinked file that every
 * login process shares, so flipping it is one lseek().  The shared open
 * file is read-only: lseek() needs no more, and a process that could
 * write to it could fill base_dir's filesystem through a file nobody can
 * see.  It is made with mkstemp() and opened again read-only by path,
 * checked to be the same file, then unlinked. */
static bool open_login_notify(corral_service *svc, GError **error)
{
    const char *base_dir = corral_supervisor_config(svc->supervisor)->base_dir;
    char *path = g_build_filename(base_dir, "login-master-notifyXXXXXX", NULL);
    int writable = g_mkstemp_full(path, O_RDWR | O_CLOEXEC, 0600);
    int fd = -1, saved_errno = errno;

    if (writable >= 0) {
        struct stat made, opened;

        fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        saved_errno = errno;
        if (fd >= 0 && (fstat(writable, &made) < 0 || fstat(fd, &opened) < 0 ||
                        made.st_dev != opened.st_dev || made.st_ino != opened.st_ino)) {
            close(fd);
            fd = -1;
            saved_errno = EEXIST;
        }
        (void)unlink(path);
        close(writable);
    }
    if (fd < 0) {
        g_set_error(error, CORRAL_CONFIG_ERROR, CORRAL_CONFIG_ERROR_IO,
                    "service(%s): cannot create the login notify file in %s: %s",
                    svc->config->name, base_dir, g_strerror(saved_errno));
        g_free(path);
        return false;
    }
    g_free(path);
    svc->login_notify_fd = fd;
    return true;
}

/* systemd's layout: stdio, then the listeners from fd 3 (SD_LISTEN_FDS_START).
 * inetd's descriptors are the connection's, set at each spawn. */
static bool build_foreign_fd_map(corral_service *svc)
{
    int *map;

    switch (svc->config->protocol.protocol) {
    case CORRAL_WORKER_PROTOCOL_DOVECOT:
        return false;
    case CORRAL_WORKER_PROTOCOL_INETD:
        svc->fd_count = 0;
        svc->fd_map = NULL;
        return true;
    case CORRAL_WORKER_PROTOCOL_SYSTEMD:
        break;
    }
    svc->fd_count = 3 + (int)svc->listeners->len;
    map = svc->fd_map = g_new(int, svc->fd_count);
    map[STDIN_FILENO] = corral_supervisor_dev_null(svc->supervisor);
    map[STDOUT_FILENO] = STDOUT_FILENO;
    map[STDERR_FILENO] = svc->log_pipe_write;
    for (guint i = 0; i < svc->listeners->len; i++)
        map[3 + i] = ((corral_listener *)g_ptr_array_index(svc->listeners, i))->fd;
    return true;
}

static void build_fd_map(corral_service *svc)
{
    int *map;

    if (build_foreign_fd_map(svc))
        return;

    svc->fd_count = CHILD_FD_FIRST_LISTENER + (int)svc->listeners->len;
    map = svc->fd_map = g_new(int, svc->fd_count);
    map[STDIN_FILENO] = corral_supervisor_dev_null(svc->supervisor);
    map[STDOUT_FILENO] = STDOUT_FILENO;
    map[STDERR_FILENO] = svc->log_pipe_write;
    map[CHILD_FD_ANVIL] = corral_supervisor_dev_null(svc->supervisor);
    map[CHILD_FD_LOGIN_NOTIFY] = svc->login_notify_fd;
    map[CHILD_FD_STATUS] = svc->status_pipe[1];
    map[CHILD_FD_MASTER_DEAD] = svc->dead_pipe[1];
    for (guint i = 0; i < svc->listeners->len; i++) {
        corral_listener *listener = g_ptr_array_index(svc->listeners, i);
        map[CHILD_FD_FIRST_LISTENER + i] = listener->fd;
    }
}

bool corral_service_start(corral_service *svc, GError **error)
{
    int log_pipe[2];

    if (!make_pipe(svc, svc->status_pipe, "status", error) ||
        !make_pipe(svc, svc->dead_pipe, "the master-dead pipe", error) ||
        !make_pipe(svc, log_pipe, "stderr", error))
        return false;
    if (svc->config->type == CORRAL_SERVICE_LOGIN && !open_login_notify(svc, error)) {
        close(log_pipe[0]);
        close(log_pipe[1]);
        return false;
    }
    svc->log_pipe_write = log_pipe[1];
    svc->child_log = corral_child_log_new(log_pipe[0], svc->config->name);
    corral_child_log_set_raw_level(svc->child_log, svc->config->exec.stderr_level);
    build_fd_map(svc);

    watch_status(svc);
    svc->monitoring = true;
    watch_listeners(svc);
    if (svc->config->protocol.protocol == CORRAL_WORKER_PROTOCOL_INETD)
        svc->inetd = corral_inetd_new(svc);
    if (svc->config->protocol.protocol == CORRAL_WORKER_PROTOCOL_SYSTEMD)
        svc->load_sampler = corral_load_sampler_new(svc);
    POLICY_CALL(svc, start);
    if (svc->inetd != NULL)
        corral_inetd_update(svc->inetd);
    return true;
}

void corral_service_started(corral_service *svc)
{
    POLICY_CALL(svc, started);
}

void corral_service_close_dead_pipe(corral_service *svc)
{
    close_fd(&svc->dead_pipe[0]);
    close_fd(&svc->dead_pipe[1]);
    /* Servers that have no dead pipe learn it from SIGTERM, as under
     * systemd.  An inetd connection is left to finish on a reload. */
    if (svc->config->protocol.protocol == CORRAL_WORKER_PROTOCOL_SYSTEMD ||
        (svc->config->protocol.protocol == CORRAL_WORKER_PROTOCOL_INETD &&
         corral_supervisor_is_stopping(svc->supervisor))) {
        for (GList *link = svc->processes.head; link != NULL; link = link->next) {
            corral_process_record *record = link->data;
            (void)corral_process_group_signal(record->view.pid, SIGTERM);
        }
    }
}

void corral_service_release_listeners(corral_service *svc)
{
    corral_service_listen(svc, false);
    g_ptr_array_set_size(svc->listeners, 0);
    if (svc->inetd != NULL)
        corral_inetd_update(svc->inetd); /* lets go of the closed descriptors */
    close_fd(&svc->status_pipe[0]);
    close_fd(&svc->status_pipe[1]);
}

void corral_service_stop(corral_service *svc)
{
    if (svc->monitoring) {
        POLICY_CALL(svc, stop);
        svc->monitoring = false;
    }
    svc->state.stopping = true;
    corral_service_listen(svc, false);
    remove_timers_at_stop(svc);
    if (svc->throttle_timer != 0) {
        g_source_remove(svc->throttle_timer);
        svc->throttle_timer = 0;
    }
    corral_status_watch_free(svc->status_watch);
    svc->status_watch = NULL;
    corral_load_sampler_free(svc->load_sampler);
    svc->load_sampler = NULL;
}

static void forget_process(corral_service *svc, corral_process_record *record)
{
    if (record->first_status_timer != 0)
        g_source_remove(record->first_status_timer);
    g_queue_unlink(&svc->processes, &record->link);
    corral_shadows_free_views(svc->shadows, record->shadow_views);
    corral_supervisor_forget_process(svc->supervisor, record);
    g_free(record);
}

void corral_service_free(corral_service *svc)
{
    if (svc == NULL)
        return;
    corral_service_stop(svc);
    if (svc->worker_fault_timer != 0)
        g_source_remove(svc->worker_fault_timer);
    if (svc->policy_state != NULL && svc->policy_module->policy->service_free != NULL)
        svc->policy_module->policy->service_free(svc->policy_state);
    corral_shadows_free(svc->shadows);
    corral_service_remove_timers(svc); /* anything the plugin armed in service_free */
    while (svc->processes.head != NULL)
        forget_process(svc, svc->processes.head->data);
    corral_policy_values_free(svc->policy_module, svc->policy_values);
    corral_child_log_free(svc->child_log);
    corral_inetd_free(svc->inetd);
    close_fd(&svc->status_pipe[0]);
    close_fd(&svc->status_pipe[1]);
    corral_service_close_dead_pipe(svc);
    close_fd(&svc->log_pipe_write);
    close_fd(&svc->login_notify_fd);
    g_ptr_array_unref(svc->listeners);
    g_strfreev(svc->argv);
    g_strfreev(svc->env_base);
    g_free(svc->exec_path);
    g_free(svc->fd_map);
    g_free(svc->groups);
    g_free(svc);
}

/* ------------------------------------------------------------------ */
/* Processes.                                                           */

static gboolean on_first_status_timeout(gpointer data)
{
    corral_process_record *record = data;
    corral_service *svc = record->service;

    record->first_status_timer = 0;
    /* Its first record may be in the pipe still, put off by the watch. */
    corral_service_drain_status(svc);
    if (record->view.initialized)
        return G_SOURCE_REMOVE;
    svc_log(svc, CORRAL_LEVEL_ERROR,
            "Initial status notification not received in %u seconds, killing the process",
            (svc->config->first_status_timeout_msecs + 999) / 1000);
    if (!corral_process_group_signal(record->view.pid, SIGKILL) && errno != ESRCH)
        svc_log(svc, CORRAL_LEVEL_ERROR, "kill(%d, SIGKILL) failed: %s", (int)record->view.pid,
                g_strerror(errno));
    /* Killed for silence is not a startup failure: it must not throttle. */
    record->view.initialized = true;
    return G_SOURCE_REMOVE;
}

static const char *refusal_reason(const corral_service *svc)
{
    if (svc->state.stopping || corral_supervisor_is_stopping(svc->supervisor))
        return "the service is stopping";
    if (svc->state.throttled)
        return "the service is throttled";
    if (svc->state.process_count >= svc->state.process_limit)
        return "process_limit reached";
    return NULL;
}

/* A child that failed between clone and exec could not say why itself
 * (it shares the master's memory until exec); its line goes through its
 * own stderr pipe as the fatal line a Dovecot child writes. */
static void log_child_setup_failure(corral_service *svc, pid_t pid,
                                    const corral_spawn_failure *failure)
{
    char *text = failure->step == CORRAL_SPAWN_STEP_EXEC
                     ? g_strdup_printf("execv(%s) failed: %s", svc->exec_path,
                                       g_strerror(failure->error))
                     : g_strdup_printf("%s failed: %s", corral_spawn_step_name(failure->step),
                                       g_strerror(failure->error));
    char *line = g_strdup_printf("\001\005%d %s\n", (int)pid, text);

    if (svc->log_pipe_write < 0 || write(svc->log_pipe_write, line, strlen(line)) < 0)
        corral_log(CORRAL_LEVEL_FATAL, "%s(%d): %s", svc->config->name, (int)pid, text);
    g_free(line);
    g_free(text);
}


/* The variable that names the spawn: Dovecot's GENERATION, or systemd's
 * LISTEN_PID, which the child fills in with its own pid (spawn.h). */
typedef struct spawn_variable {
    char text[32];
} spawn_variable;

#define LISTEN_PID_PREFIX "LISTEN_PID="

static pid_t spawn_process(corral_service *svc, const int *fd_map, int fd_count,
                           char *const *extra_env, uint32_t *generation_out,
                           bool *setup_failed_out)
{
    const corral_worker_protocol protocol = svc->config->protocol.protocol;
    corral_service_state *st = &svc->state;
    const char *refusal = refusal_reason(svc);
    corral_spawn_failure failure;
    corral_spawn_request request;
    guint env_count = g_strv_length(svc->env_base);
    guint extra_count = extra_env != NULL ? g_strv_length((char **)extra_env) : 0;
    spawn_variable variable = { "" };
    char **envp;
    uint32_t generation;
    pid_t pid;

    if (refusal != NULL) {
        svc_log(svc, CORRAL_LEVEL_WARNING,
                "policy %s asked for a process (%u of process_limit %u), refused: %s",
                svc->policy_module->name, st->process_count, st->process_limit, refusal);
        return -1;
    }

    corral_supervisor_count_spawn(svc->supervisor);
    generation = corral_supervisor_next_generation(svc->supervisor);
    envp = g_new(char *, env_count + extra_count + 2);
    memcpy(envp, svc->env_base, env_count * sizeof(char *));
    if (extra_count > 0)
        memcpy(envp + env_count, extra_env, extra_count * sizeof(char *));
    if (protocol == CORRAL_WORKER_PROTOCOL_DOVECOT)
        g_snprintf(variable.text, sizeof(variable.text), "GENERATION=%u", generation);
    else if (protocol == CORRAL_WORKER_PROTOCOL_SYSTEMD)
        g_strlcpy(variable.text, LISTEN_PID_PREFIX, sizeof(variable.text));
    envp[env_count + extra_count] = variable.text[0] != '\0' ? variable.text : NULL;
    envp[env_count + extra_count + 1] = NULL;

    request = (corral_spawn_request){
        .path = svc->exec_path,
        .argv = svc->argv,
        .envp = envp,
        .fd_map = fd_map,
        .fd_count = fd_count,
        .memory_limit = svc->config->vsz_limit,
        .uid = svc->uid,
        .gid = svc->gid,
        .groups = svc->groups,
        .group_count = svc->group_count,
        .chroot_dir = svc->config->chroot,
        .work_dir = corral_supervisor_config(svc->supervisor)->base_dir,
        .working_directory = svc->config->exec.working_directory,
        .new_session = true,
        .own_pid_text = protocol == CORRAL_WORKER_PROTOCOL_SYSTEMD
                            ? variable.text + strlen(LISTEN_PID_PREFIX) : NULL,
        .own_pid_text_size = sizeof(variable.text) - strlen(LISTEN_PID_PREFIX),
    };
    pid = corral_spawn(&request, &failure);
    g_free(envp);
    if (pid < 0) {
        svc_log(svc, CORRAL_LEVEL_ERROR, "%s failed for %s: %s%s",
                corral_spawn_step_name(failure.step), svc->exec_path, g_strerror(failure.error),
                failure.step == CORRAL_SPAWN_STEP_CLONE && failure.error == EAGAIN
                    ? " (ulimit -u reached?)" : "");
        return -1;
    }
    if (failure.step != CORRAL_SPAWN_STEP_NONE)
        log_child_setup_failure(svc, pid, &failure);
    *generation_out = generation;
    *setup_failed_out = failure.step != CORRAL_SPAWN_STEP_NONE;
    return pid;
}

static corral_process_record *add_process(corral_service *svc, pid_t pid, uint32_t generation)
{
    const corral_worker_protocol protocol = svc->config->protocol.protocol;
    corral_service_state *st = &svc->state;
    corral_process_record *record = g_new0(corral_process_record, 1);

    record->view.pid = pid;
    record->view.available_count = st->client_limit;
    record->view.created_usec = corral_supervisor_now_usec();
    record->service = svc;
    record->generation = generation;
    record->link.data = record;
    record->shadow_views = corral_shadows_new_views(svc->shadows);
    g_queue_push_tail_link(&svc->processes, &record->link);
    corral_supervisor_add_process(svc->supervisor, record);
    st->process_count++;
    svc->spawned_total++;
    switch (protocol) {
    case CORRAL_WORKER_PROTOCOL_DOVECOT:
        record->first_status_timer = g_timeout_add(svc->config->first_status_timeout_msecs,
                                                   on_first_status_timeout, record);
        break;
    case CORRAL_WORKER_PROTOCOL_SYSTEMD:
        /* Started when spawned, and idle until measured otherwise. */
        record->view.initialized = true;
        record->view.idle_since_usec = record->view.created_usec;
        break;
    case CORRAL_WORKER_PROTOCOL_INETD:
        /* Busy with its one connection for its whole life. */
        record->view.initialized = true;
        record->view.available_count = 0;
        break;
    }
    if (record->view.available_count > 0)
        st->process_avail++;
    return record;
}

bool corral_service_spawn(corral_service *svc)
{
    uint32_t generation;
    pid_t pid;

    if (svc->inetd != NULL)
        return corral_inetd_spawn_one(svc->inetd);
    bool setup_failed;

    pid = spawn_process(svc, svc->fd_map, svc->fd_count, NULL, &generation, &setup_failed);
    if (pid < 0)
        return false;
    add_process(svc, pid, generation);
    return true;
}

pid_t corral_service_spawn_connection(corral_service *svc, int fd, char *const *extra_env,
                                      bool *setup_failed)
{
    int map[3] = { fd, fd, svc->config->protocol.stderr_to_log ? svc->log_pipe_write : fd };
    uint32_t generation;
    pid_t pid = spawn_process(svc, map, 3, extra_env, &generation, setup_failed);

    if (pid < 0)
        return -1;
    add_process(svc, pid, generation);
    return pid;
}

corral_process_record *corral_service_find_process(corral_service *svc, pid_t pid)
{
    corral_process_record *record = corral_supervisor_find_process(svc->supervisor, pid);

    return record != NULL && record->service == svc ? record : NULL;
}

/* Signals the process's group (process-group.h), logging failures other
 * than a process that is already gone. */
static bool deliver(corral_service *svc, pid_t pid, int signo)
{
    if (corral_process_group_signal(pid, signo))
        return true;
    if (errno != ESRCH)
        svc_log(svc, CORRAL_LEVEL_ERROR, "kill(%d, %s) failed: %s", (int)pid,
                corral_signal_name(signo), g_strerror(errno));
    return false;
}

bool corral_service_signal(corral_service *svc, corral_process_record *record, int signo)
{
    if (!deliver(svc, record->view.pid, signo))
        return false;
    record->view.last_kill_usec = corral_supervisor_now_usec();
    return true;
}

unsigned corral_service_signal_all(corral_service *svc, int signo)
{
    unsigned sent = 0;

    for (GList *link = svc->processes.head; link != NULL; link = link->next) {
        corral_process_record *record = link->data;
        /* Uninitialized processes may not have handlers installed yet. */
        if (!record->view.initialized && signo != SIGKILL)
            continue;
        if (deliver(svc, record->view.pid, signo))
            sent++;
    }
    return sent;
}

static void uncount_free_slots(corral_service *svc, corral_process_record *record)
{
    bool was_available = record->view.available_count > 0;

    if (was_available)
        svc->state.process_avail--;
    record->view.available_count = 0;
    record->view.idle_since_usec = 0;
    if (was_available)
        note_if_full(svc);
    record->idle_record_usec = 0;
}

bool corral_service_mark_busy(corral_service *svc, corral_process_record *record)
{
    /* As if it had taken every free slot: Dovecot counts them in its
     * total_count. */
    record->view.clients_seen += record->view.available_count;
    uncount_free_slots(svc, record);
    return true;
}

void corral_service_process_exited(corral_service *svc, corral_process_record *record,
                                   int wait_status)
{
    corral_process *proc = &record->view;
    const corral_service_config *config = svc->config;
    corral_exit_hints hints = {
        .service_name = config->name,
        .vsz_limit = config->vsz_limit,
        .login = config->type == CORRAL_SERVICE_LOGIN,
        .login_dump_core = g_strv_contains((const char *const *)svc->argv + 1, "-D"),
        .chroot = config->chroot,
    };
    char *text = corral_exit_text(proc->pid, wait_status, &hints);
    corral_exit exit_info;

    if (text != NULL) {
        corral_log_about_line(CORRAL_LEVEL_ERROR,
                              &(corral_log_about){ svc->config->name, svc->policy_module->name,
                                                   (int)proc->pid },
                              "service(%s): %s", svc->config->name, text);
        svc->exit_failures_total++;
        g_free(text);
    }
    /* What the worker forked and left behind would hold its sockets and
     * outlive corrald: it goes with its leader. */
    if (corral_process_group_kill_leftovers(proc->pid))
        svc_log(svc, CORRAL_LEVEL_DEBUG, "killed what process %d left in its process group",
                (int)proc->pid);
    corral_account_exit(&svc->state, proc, wait_status, corral_supervisor_now_usec(),
                        &exit_info);
    if (svc->inetd != NULL)
        corral_inetd_process_exited(svc->inetd, proc->pid);
    if (svc->monitoring && !svc->state.stopping)
        POLICY_CALL(svc, process_exited, &exit_info);
    else if ((corral_policy_module_flags(svc->policy_module) & CORRAL_POLICY_TIMERS_OUTLIVE_STOP) &&
             svc->policy_module->policy->process_exited != NULL)
        /* Its timers still run: it must hear of the processes they name. */
        svc->policy_module->policy->process_exited(svc->policy_state, &exit_info);
    forget_process(svc, record);
    if (svc->inetd != NULL)
        corral_inetd_update(svc->inetd);
}

/* ------------------------------------------------------------------ */
/* Listening, dropping, throttling, login notify.                       */

void corral_service_measured_load(corral_service *svc, corral_process_record *record,
                                  unsigned connections)
{
    unsigned limit = svc->state.client_limit;
    unsigned available = connections >= limit ? 0 : limit - connections;

    record->connections = connections;
    record->measured = true;
    if (available != record->view.available_count)
        apply_status(svc, record, available);
}

void corral_service_sample_load(corral_service *svc, unsigned interval_msecs)
{
    if (svc->load_sampler != NULL)
        corral_load_sampler_set_interval(svc->load_sampler, interval_msecs);
}

void corral_service_client_waiting(corral_service *svc)
{
    corral_service_drain_status(svc);
    if (svc->state.listening)
        POLICY_CALL(svc, listener_readable);
}

static void on_listener_readable(void *data)
{
    corral_service *svc = data;

    /* A slot freed in a record not yet read stops listening (M9): the
     * waiting client is that process's to take, not a reason to spawn. */
    corral_service_drain_status(svc);
    if (svc->state.listening)
        POLICY_CALL(svc, listener_readable);
}

static void on_listener_broken(void *data);

/* Every listener of a started service is watched, listening or not, so
 * that one a process shuts down is noticed at once. */
static void watch_listener(corral_service *svc, corral_listener *listener)
{
    if (listener->watch != NULL)
        return;
    /* Switched on and off as often as every other status record under
     * load: see toggle-watch.h. */
    listener->watch = corral_toggle_watch_new(listener->fd, on_listener_readable, svc);
    corral_toggle_watch_on_broken(listener->watch, on_listener_broken);
    corral_toggle_watch_set(listener->watch, svc->state.listening);
}

static void watch_listeners(corral_service *svc)
{
    for (guint i = 0; i < svc->listeners->len; i++)
        watch_listener(svc, g_ptr_array_index(svc->listeners, i));
}

void corral_service_listen(corral_service *svc, bool on)
{
    if (on && (svc->state.throttled || svc->state.stopping)) {
        svc_log(svc, CORRAL_LEVEL_WARNING, "policy %s asked to listen, refused: %s",
                svc->policy_module->name, refusal_reason(svc));
        return;
    }
    svc->state.listening = on;
    /* inetd's accepting watches the listeners and keeps the policy's wish
     * in mind (inetd.h). */
    if (svc->inetd != NULL) {
        corral_inetd_update(svc->inetd);
        return;
    }
    for (guint i = 0; i < svc->listeners->len; i++) {
        corral_listener *listener = g_ptr_array_index(svc->listeners, i);

        if (on && listener->watch == NULL)
            watch_listener(svc, listener);
        if (listener->watch != NULL)
            corral_toggle_watch_set(listener->watch, on);
    }
}

/* ------------------------------------------------------------------ */
/* A listener that stopped accepting.                                   */

static bool listener_is_broken(const corral_listener *listener)
{
    struct pollfd pfd = { .fd = listener->fd, .events = POLLRDHUP };

    return poll(&pfd, 1, 0) > 0 &&
           (pfd.revents & (POLLHUP | POLLERR | POLLNVAL | POLLRDHUP)) != 0;
}

/* The processes running now hold the dead socket: they take no new
 * client (their records count as busy from now on) and are told, through
 * a master-dead pipe of their own, to finish their clients and leave.
 * The policy replaces them with processes that get the new socket. */
static void retire_processes_for_new_listeners(corral_service *svc)
{
    GError *error = NULL;

    close_fd(&svc->dead_pipe[0]);
    close_fd(&svc->dead_pipe[1]);
    if (!make_pipe(svc, svc->dead_pipe, "the master-dead pipe", &error)) {
        svc_log(svc, CORRAL_LEVEL_ERROR, "%s", error->message);
        g_error_free(error);
    }
    g_free(svc->fd_map);
    build_fd_map(svc);
    for (GList *link = svc->processes.head; link != NULL; link = link->next) {
        corral_process_record *record = link->data;

        record->listeners_stale = true;
        if (record->view.initialized && record->view.available_count > 0)
            apply_status(svc, record, 0);
    }
}

static void on_listener_broken(void *data)
{
    corral_service *svc = data;
    bool replaced = false;

    /* A service on its way out keeps what it has until it is freed. */
    if (!svc->monitoring || svc->state.stopping)
        return;

    for (guint i = 0; i < svc->listeners->len; i++) {
        corral_listener *old = g_ptr_array_index(svc->listeners, i);
        corral_listener *fresh;
        GError *error = NULL;

        if (!listener_is_broken(old))
            continue;
        corral_toggle_watch_free(old->watch);
        old->watch = NULL;
        fresh = corral_listener_open(old->config, svc->config->listen_backlog, &error);
        if (fresh == NULL) {
            svc->listeners_dead++;
            svc_log(svc, CORRAL_LEVEL_ERROR,
                    "listener %s stopped accepting (shut down by a process?) and cannot be "
                    "made anew: %s", old->label, error->message);
            g_error_free(error);
            continue;
        }
        svc_log(svc, CORRAL_LEVEL_ERROR,
                "listener %s stopped accepting (shut down by a process?): made it anew; "
                "the processes that hold the old one finish their clients and leave",
                old->label);
        svc->listeners_recreated++;
        svc->listeners->pdata[i] = fresh;
        corral_listener_free(old);
        watch_listener(svc, fresh);
        replaced = true;
    }
    if (replaced)
        retire_processes_for_new_listeners(svc);
    /* inetd's own watches must let go of the closed descriptors before the
     * loop polls them again. */
    if (replaced && svc->inetd != NULL)
        corral_inetd_update(svc->inetd);
}

unsigned corral_service_queued_clients(const corral_service *svc)
{
    unsigned queued = 0;

    for (guint i = 0; i < svc->listeners->len; i++)
        queued += corral_listener_queued(g_ptr_array_index(svc->listeners, i));
    return queued;
}

void corral_service_sample_queue(corral_service *svc)
{
    svc->queued_max = MAX(svc->queued_max, corral_service_queued_clients(svc));
}

unsigned corral_service_drop_queued(corral_service *svc, unsigned max)
{
    unsigned dropped = 0;

    for (guint i = 0; i < svc->listeners->len && (max == 0 || dropped < max); i++) {
        corral_listener *listener = g_ptr_array_index(svc->listeners, i);
        dropped += corral_listener_drop(listener, max == 0 ? 0 : max - dropped);
    }
    svc->connections_dropped += dropped;
    if (dropped > 0)
        svc->last_drop_usec = corral_supervisor_now_usec();
    return dropped;
}

static gboolean on_throttle_over(gpointer data)
{
    corral_service *svc = data;

    svc->throttle_timer = 0;
    svc->state.throttled = false;
    corral_service_drain_status(svc);
    POLICY_CALL(svc, throttle_ended);
    if (svc->inetd != NULL)
        corral_inetd_update(svc->inetd);
    return G_SOURCE_REMOVE;
}

bool corral_service_throttle(corral_service *svc, unsigned msecs)
{
    if (svc->state.throttled || svc->state.stopping)
        return false;
    /* With nobody left to serve them, waiting clients get EOF now rather
     * than a hang for the whole throttle. */
    if (svc->state.process_count == 0)
        corral_service_drop_queued(svc, 0);
    corral_service_listen(svc, false);
    svc->state.throttled = true;
    svc->throttle_timer = g_timeout_add(msecs, on_throttle_over, svc);
    svc->throttle_msecs = msecs;
    svc->throttled_until_usec = corral_supervisor_now_usec() + msecs * (uint64_t)1000;
    return true;
}

void corral_service_login_notify(corral_service *svc, bool full)
{
    if (svc->login_notify_fd < 0)
        return;
    if (lseek(svc->login_notify_fd, full ? 1 : 0, SEEK_SET) < 0)
        svc_log(svc, CORRAL_LEVEL_ERROR, "lseek(login notify) failed: %s", g_strerror(errno));
}

/* ------------------------------------------------------------------ */
/* Stopping and starting at an operator's request.                      */

void corral_service_stop_by_operator(corral_service *svc)
{
    corral_service_stop(svc);
    corral_service_close_dead_pipe(svc);
    corral_service_release_listeners(svc);
    /* As Dovecot's service_monitor_stop: the processes keep their counts
     * (process_avail, available_count) and the policy's per-process
     * timers; the throttle ended with its timer. */
    svc->state.throttled = false;
    svc->state.have_listeners = false;
    svc->stopped_by_operator = true;
}

/* The policy was promised no callback after stop(): a fresh instance
 * starts the service, as at startup.  The old one forgets the processes
 * it knew, which now reach the new one only through process_exited(). */
static bool renew_policy_state(corral_service *svc, GError **error)
{
    const corral_policy *policy = svc->policy_module->policy;
    char *problem = NULL;

    if (svc->policy_state != NULL && policy->service_free != NULL)
        policy->service_free(svc->policy_state);
    corral_service_remove_timers(svc);
    for (GList *link = svc->processes.head; link != NULL; link = link->next)
        ((corral_process_record *)link->data)->view.policy_data = NULL;
    svc->policy_state = policy->service_new(corral_host_get(), svc, svc->policy_values, &problem);
    if (svc->policy_state == NULL) {
        g_set_error(error, CORRAL_CONFIG_ERROR, CORRAL_CONFIG_ERROR_VALUE,
                    "%s: [service %s] policy %s (%s): init failed: %s", svc->config->file,
                    svc->config->name, svc->policy_module->name, svc->policy_module->path,
                    problem != NULL ? problem : "no reason given");
        free(problem);
        return false;
    }
    return true;
}

bool corral_service_start_by_operator(corral_service *svc, GError **error)
{
    if (!svc->stopped_by_operator) {
        g_set_error(error, CORRAL_CONFIG_ERROR, CORRAL_CONFIG_ERROR_VALUE,
                    "service %s is not stopped", svc->config->name);
        return false;
    }
    if (corral_supervisor_is_stopping(svc->supervisor)) {
        g_set_error(error, CORRAL_CONFIG_ERROR, CORRAL_CONFIG_ERROR_VALUE,
                    "corrald is shutting down");
        return false;
    }
    /* The processes from before the stop have none of the new listeners:
     * none takes a client of the restarted service. */
    for (GList *link = svc->processes.head; link != NULL; link = link->next)
        uncount_free_slots(svc, link->data);
    if (!renew_policy_state(svc, error))
        return false;
    if (!open_listeners(svc, error) ||
        !make_pipe(svc, svc->status_pipe, "status", error) ||
        !make_pipe(svc, svc->dead_pipe, "the master-dead pipe", error)) {
        corral_service_release_listeners(svc);
        corral_service_close_dead_pipe(svc);
        return false;
    }
    g_free(svc->fd_map);
    build_fd_map(svc);
    svc->state.have_listeners = svc->listeners->len > 0;
    svc->state.stopping = false;
    svc->stopped_by_operator = false;
    watch_status(svc);
    svc->monitoring = true;
    watch_listeners(svc);
    if (svc->config->protocol.protocol == CORRAL_WORKER_PROTOCOL_SYSTEMD)
        svc->load_sampler = corral_load_sampler_new(svc);
    POLICY_CALL(svc, start);
    POLICY_CALL(svc, started);
    if (svc->inetd != NULL)
        corral_inetd_update(svc->inetd);
    return true;
}
