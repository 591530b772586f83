/* SPDX-License-Identifier: MIT */
#include "control.h"

#include <errno.h>
#include <grp.h>
#include <json-glib/json-glib.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "corral-build.h"
#include "log.h"
#include "metrics.h"
#include "report.h"
#include "service.h"
#include "stream-server.h"

/* One request line; the longest real one names every service. */
#define REQUEST_MAX 65536
#define REQUEST_TIMEOUT_MSECS 10000

struct corral_control {
    corral_supervisor *supervisor;
    corral_listener_config socket;
    corral_stream_server *server;
    gint64 last_refusal_log_usec;
    unsigned refusals_unlogged;
};

/* ------------------------------------------------------------------ */
/* Answers.                                                             */

static void add_time(JsonBuilder *builder, const char *name, int64_t unix_time)
{
    json_builder_set_member_name(builder, name);
    if (unix_time == 0)
        json_builder_add_null_value(builder);
    else
        json_builder_add_int_value(builder, unix_time);
}

static void add_int(JsonBuilder *builder, const char *name, int64_t value)
{
    json_builder_set_member_name(builder, name);
    json_builder_add_int_value(builder, value);
}

static void add_bool(JsonBuilder *builder, const char *name, bool value)
{
    json_builder_set_member_name(builder, name);
    json_builder_add_boolean_value(builder, value);
}

static void add_string(JsonBuilder *builder, const char *name, const char *value)
{
    json_builder_set_member_name(builder, name);
    json_builder_add_string_value(builder, value);
}

static void add_service(JsonBuilder *builder, const corral_service *svc)
{
    corral_service_report r;

    corral_service_report_fill(svc, &r);
    json_builder_begin_object(builder);
    add_string(builder, "name", r.name);
    add_string(builder, "policy", r.policy);
    add_string(builder, "worker_protocol", r.worker_protocol);
    add_string(builder, "state", r.stopped ? "stopped" : "running");
    add_int(builder, "process_count", r.process_count);
    add_int(builder, "process_avail", r.process_avail);
    add_int(builder, "process_limit", r.process_limit);
    add_int(builder, "client_limit", r.client_limit);
    add_int(builder, "process_min_avail", r.process_min_avail);
    add_bool(builder, "throttled", r.throttled);
    add_time(builder, "throttled_until", r.throttled_until);
    add_int(builder, "throttle_secs", r.throttle_secs);
    add_bool(builder, "listening", r.listening);
    add_bool(builder, "listen_pending", r.listen_pending);
    add_int(builder, "queued", r.queued);
    add_int(builder, "queued_max", r.queued_max);
    add_int(builder, "process_limit_reached", (int64_t)r.process_limit_reached);
    add_int(builder, "processes_spawned", (int64_t)r.processes_spawned);
    add_int(builder, "connections_dropped", (int64_t)r.connections_dropped);
    add_time(builder, "last_drop", r.last_drop);
    add_int(builder, "exit_failures", (int64_t)r.exit_failures);
    add_int(builder, "exit_failures_in_sec", r.exit_failures_in_sec);
    add_time(builder, "exit_failure_last", r.exit_failure_last);
    add_bool(builder, "have_success", r.have_success);
    add_int(builder, "status_records", (int64_t)r.status_records);
    add_int(builder, "status_reads", (int64_t)r.status_reads);
    add_int(builder, "listeners_recreated", (int64_t)r.listeners_recreated);
    add_int(builder, "listeners_dead", r.listeners_dead);
    json_builder_end_object(builder);
}

static void add_process(JsonBuilder *builder, const corral_service *svc,
                        const corral_process_record *record)
{
    corral_process_report r;

    corral_process_report_fill(svc, record, &r);
    json_builder_begin_object(builder);
    add_int(builder, "pid", r.pid);
    add_string(builder, "service", r.service);
    add_int(builder, "available_count", r.available_count);
    add_int(builder, "clients_seen", (int64_t)r.clients_seen);
    add_bool(builder, "initialized", r.initialized);
    add_time(builder, "started", r.started);
    add_time(builder, "idle_since", r.idle_since);
    add_time(builder, "last_status", r.last_status);
    add_time(builder, "last_kill", r.last_kill);
    add_int(builder, "age_secs", (int64_t)r.age_secs);
    add_int(builder, "rss_bytes", (int64_t)r.rss_bytes);
    json_builder_set_member_name(builder, "cpu_secs");
    json_builder_add_double_value(builder, (double)r.cpu_usecs / 1e6);
    json_builder_end_object(builder);
}

/* Sends the builder's object, one line of JSON. */
static void answer(corral_stream_client *client, JsonBuilder *builder)
{
    JsonGenerator *generator = json_generator_new();
    JsonNode *root = json_builder_get_root(builder);
    gsize len;
    char *text;

    json_generator_set_root(generator, root);
    text = json_generator_to_data(generator, &len);
    corral_stream_client_write(client, text, len);
    corral_stream_client_write(client, "\n", 1);
    g_free(text);
    json_node_unref(root);
    g_object_unref(generator);
}

static void answer_error(corral_stream_client *client, const char *kind, const char *format, ...)
    G_GNUC_PRINTF(3, 4);

static void answer_error(corral_stream_client *client, const char *kind, const char *format, ...)
{
    JsonBuilder *builder = json_builder_new();
    va_list args;
    char *message;

    va_start(args, format);
    message = g_strdup_vprintf(format, args);
    va_end(args);
    json_builder_begin_object(builder);
    json_builder_set_member_name(builder, "error");
    json_builder_begin_object(builder);
    add_string(builder, "kind", kind);
    add_string(builder, "message", message);
    json_builder_end_object(builder);
    json_builder_end_object(builder);
    answer(client, builder);
    g_object_unref(builder);
    g_free(message);
}

/* ------------------------------------------------------------------ */
/* Commands.  `args` holds what followed the command.                   */

/* Every named service, or all of them when none is named; NULL (with the
 * error answered) when a name is unknown. */
static GPtrArray *select_services(corral_control *control, corral_stream_client *client,
                                  char **args)
{
    GPtrArray *all = corral_supervisor_services(control->supervisor);
    GPtrArray *selected = g_ptr_array_new();

    if (args[0] == NULL) {
        for (guint i = 0; i < all->len; i++)
            g_ptr_array_add(selected, g_ptr_array_index(all, i));
        return selected;
    }
    for (char **name = args; *name != NULL; name++) {
        corral_service *svc = corral_report_find_service(control->supervisor, *name);
        if (svc == NULL) {
            answer_error(client, CORRAL_CONTROL_ERROR_UNKNOWN_SERVICE, "no service named '%s'",
                         *name);
            g_ptr_array_unref(selected);
            return NULL;
        }
        g_ptr_array_add(selected, svc);
    }
    return selected;
}

/* corrald itself: what runs, since when, from which file, and how the
 * last reload went. */
static void add_daemon(JsonBuilder *builder, corral_supervisor *supervisor)
{
    corral_reload_outcome reload;

    corral_supervisor_last_reload(supervisor, &reload);
    json_builder_set_member_name(builder, "corrald");
    json_builder_begin_object(builder);
    add_string(builder, "version", CORRAL_VERSION);
    add_int(builder, "pid", getpid());
    add_time(builder, "started", corral_supervisor_start_usec(supervisor) / G_USEC_PER_SEC);
    add_string(builder, "config", corral_supervisor_config(supervisor)->main_file);
    json_builder_set_member_name(builder, "last_reload");
    json_builder_begin_object(builder);
    add_time(builder, "time", reload.time_usec / G_USEC_PER_SEC);
    add_bool(builder, "ok", reload.ok);
    json_builder_set_member_name(builder, "error");
    if (reload.error != NULL)
        json_builder_add_string_value(builder, reload.error);
    else
        json_builder_add_null_value(builder);
    json_builder_end_object(builder);
    json_builder_end_object(builder);
}

static void command_status(corral_control *control, corral_stream_client *client, char **args)
{
    GPtrArray *services = select_services(control, client, args);
    JsonBuilder *builder;

    if (services == NULL)
        return;
    builder = json_builder_new();
    json_builder_begin_object(builder);
    add_daemon(builder, control->supervisor);
    json_builder_set_member_name(builder, "services");
    json_builder_begin_array(builder);
    for (guint i = 0; i < services->len; i++)
        add_service(builder, g_ptr_array_index(services, i));
    json_builder_end_array(builder);
    json_builder_end_object(builder);
    answer(client, builder);
    g_object_unref(builder);
    g_ptr_array_unref(services);
}

static void command_processes(corral_control *control, corral_stream_client *client,
                              char **args)
{
    GPtrArray *services = select_services(control, client, args);
    JsonBuilder *builder;

    if (services == NULL)
        return;
    builder = json_builder_new();
    json_builder_begin_object(builder);
    json_builder_set_member_name(builder, "processes");
    json_builder_begin_array(builder);
    for (guint i = 0; i < services->len; i++) {
        const corral_service *svc = g_ptr_array_index(services, i);
        for (GList *link = svc->processes.head; link != NULL; link = link->next)
            add_process(builder, svc, link->data);
    }
    json_builder_end_array(builder);
    json_builder_end_object(builder);
    answer(client, builder);
    g_object_unref(builder);
    g_ptr_array_unref(services);
}

/* The shadow policies' would-be decisions, oldest first. */
static void command_journal(corral_control *control, corral_stream_client *client, char **args)
{
    GPtrArray *services = select_services(control, client, args);
    JsonBuilder *builder;

    if (services == NULL)
        return;
    builder = json_builder_new();
    json_builder_begin_object(builder);
    json_builder_set_member_name(builder, "decisions");
    json_builder_begin_array(builder);
    for (guint i = 0; i < services->len; i++) {
        const corral_service *svc = g_ptr_array_index(services, i);
        const GQueue *journal = corral_shadows_journal(svc->shadows);

        for (GList *link = journal != NULL ? journal->head : NULL; link != NULL;
             link = link->next) {
            const corral_decision *decision = link->data;

            json_builder_begin_object(builder);
            add_string(builder, "service", svc->config->name);
            add_string(builder, "policy", decision->policy);
            add_time(builder, "time", corral_report_unix_time(decision->usec));
            add_string(builder, "decision", decision->text);
            json_builder_end_object(builder);
        }
    }
    json_builder_end_array(builder);
    json_builder_end_object(builder);
    answer(client, builder);
    g_object_unref(builder);
    g_ptr_array_unref(services);
}

static void command_metrics(corral_control *control, corral_stream_client *client, char **args)
{
    JsonBuilder *builder = json_builder_new();
    char *text = corral_metrics_render(control->supervisor);

    (void)args;
    json_builder_begin_object(builder);
    add_string(builder, "metrics", text);
    json_builder_end_object(builder);
    answer(client, builder);
    g_object_unref(builder);
    g_free(text);
}

static void answer_flag(corral_stream_client *client, const char *name)
{
    JsonBuilder *builder = json_builder_new();

    json_builder_begin_object(builder);
    add_bool(builder, name, true);
    json_builder_end_object(builder);
    answer(client, builder);
    g_object_unref(builder);
}

static void command_reload(corral_control *control, corral_stream_client *client, char **args)
{
    bool force = args[0] != NULL && strcmp(args[0], "force") == 0;
    GError *error = NULL;

    log_info("control: %sreload requested by %s", force ? "forced " : "",
             corral_stream_client_peer(client));
    if (!corral_supervisor_reload(control->supervisor, force, &error)) {
        answer_error(client, CORRAL_CONTROL_ERROR_FAILED, "%s", error->message);
        g_error_free(error);
        return;
    }
    answer_flag(client, "reloaded");
}

static void command_stop(corral_control *control, corral_stream_client *client, char **args)
{
    (void)args;
    log_warning("control: shutdown requested by %s", corral_stream_client_peer(client));
    answer_flag(client, "stopping");
    /* The client learns that corrald has finished when this closes. */
    corral_stream_client_hold(client);
    corral_supervisor_shutdown(control->supervisor);
}

static void answer_names(corral_stream_client *client, const char *member, GPtrArray *services)
{
    JsonBuilder *builder = json_builder_new();

    json_builder_begin_object(builder);
    json_builder_set_member_name(builder, member);
    json_builder_begin_array(builder);
    for (guint i = 0; i < services->len; i++) {
        const corral_service *svc = g_ptr_array_index(services, i);
        json_builder_add_string_value(builder, svc->config->name);
    }
    json_builder_end_array(builder);
    json_builder_end_object(builder);
    answer(client, builder);
    g_object_unref(builder);
}

static void command_service_stop(corral_control *control, corral_stream_client *client,
                                 char **args)
{
    GPtrArray *services;

    if (args[0] == NULL) {
        answer_error(client, CORRAL_CONTROL_ERROR_USAGE, "service-stop needs a service name");
        return;
    }
    services = select_services(control, client, args);
    if (services == NULL)
        return;
    for (guint i = 0; i < services->len; i++) {
        corral_service *svc = g_ptr_array_index(services, i);
        log_warning("service(%s): stopped by %s", svc->config->name,
                    corral_stream_client_peer(client));
        corral_service_stop_by_operator(svc);
    }
    answer_names(client, "stopped", services);
    g_ptr_array_unref(services);
}

static void command_service_start(corral_control *control, corral_stream_client *client,
                                  char **args)
{
    GPtrArray *services;

    if (args[0] == NULL) {
        answer_error(client, CORRAL_CONTROL_ERROR_USAGE, "service-start needs a service name");
        return;
    }
    services = select_services(control, client, args);
    if (services == NULL)
        return;
    for (guint i = 0; i < services->len; i++) {
        corral_service *svc = g_ptr_array_index(services, i);
        GError *error = NULL;

        log_info("service(%s): started by %s", svc->config->name,
                 corral_stream_client_peer(client));
        if (!corral_service_start_by_operator(svc, &error)) {
            log_error("service(%s): start failed: %s", svc->config->name, error->message);
            answer_error(client, CORRAL_CONTROL_ERROR_FAILED, "%s", error->message);
            g_error_free(error);
            g_ptr_array_unref(services);
            return;
        }
    }
    answer_names(client, "started", services);
    g_ptr_array_unref(services);
}

static void command_kill(corral_control *control, corral_stream_client *client, char **args)
{
    corral_service *svc;
    JsonBuilder *builder;
    char *signal_name;
    guint64 signo;
    unsigned sent = 0;

    if (args[0] == NULL || args[1] == NULL || args[2] != NULL ||
        !g_ascii_string_to_unsigned(args[1], 10, 1, NSIG - 1, &signo, NULL)) {
        answer_error(client, CORRAL_CONTROL_ERROR_USAGE,
                     "kill needs a service name and a signal number");
        return;
    }
    svc = corral_report_find_service(control->supervisor, args[0]);
    if (svc == NULL) {
        answer_error(client, CORRAL_CONTROL_ERROR_UNKNOWN_SERVICE, "no service named '%s'",
                     args[0]);
        return;
    }
    for (GList *link = svc->processes.head; link != NULL; link = link->next) {
        corral_process_record *record = link->data;
        /* As Dovecot's service_signal(): one that has not reported yet may
         * not have its handlers installed, and would die of the signal. */
        if (!record->view.initialized && signo != SIGKILL)
            continue;
        if (corral_service_signal(svc, record, (int)signo))
            sent++;
    }
    signal_name = sigabbrev_np((int)signo) != NULL
                      ? g_strdup_printf("SIG%s", sigabbrev_np((int)signo))
                      : g_strdup_printf("signal %u", (unsigned)signo);
    log_info("service(%s): sent %s to %u process%s (asked by %s)", svc->config->name,
             signal_name, sent, sent == 1 ? "" : "es", corral_stream_client_peer(client));
    builder = json_builder_new();
    json_builder_begin_object(builder);
    add_string(builder, "service", svc->config->name);
    add_string(builder, "signal", signal_name);
    add_int(builder, "signalled", sent);
    json_builder_end_object(builder);
    answer(client, builder);
    g_object_unref(builder);
    g_free(signal_name);
}

typedef void command_fn(corral_control *control, corral_stream_client *client, char **args);

static const struct {
    const char *name;
    command_fn *run;
    bool changes_state;  /* refused to control_group members */
} commands[] = {
    { "status", command_status, false },
    { "processes", command_processes, false },
    { "journal", command_journal, false },
    { "metrics", command_metrics, false },
    { "reload", command_reload, true },
    { "stop", command_stop, true },
    { "service-stop", command_service_stop, true },
    { "service-start", command_service_start, true },
    { "kill", command_kill, true },
};

/* Root and corrald's own uid may do anything; anyone else got in through
 * control_group's permission on the socket and may only look. */
static bool may_change_state(const corral_stream_client *client)
{
    uid_t uid;

    return corral_stream_client_peer_uid(client, &uid) && (uid == 0 || uid == geteuid());
}

/* A member of control_group can repeat a refused command at will: one
 * warning a second at most. */
static void log_refusal(corral_control *control, corral_stream_client *client,
                        const char *command)
{
    gint64 now = g_get_monotonic_time();

    if (now - control->last_refusal_log_usec < G_USEC_PER_SEC) {
        control->refusals_unlogged++;
        return;
    }
    log_warning("control: refused '%s' to %s: control_group members may only read%s",
                command, corral_stream_client_peer(client),
                control->refusals_unlogged > 0 ? " (and refusals not logged before)" : "");
    control->last_refusal_log_usec = now;
    control->refusals_unlogged = 0;
}

static void dispatch(corral_control *control, corral_stream_client *client, char *line)
{
    char **words = g_strsplit(line, "\t", -1);

    for (size_t i = 0; i < G_N_ELEMENTS(commands); i++) {
        if (words[0] != NULL && strcmp(words[0], commands[i].name) == 0) {
            log_debug("control: %s from %s", words[0], corral_stream_client_peer(client));
            if (commands[i].changes_state && !may_change_state(client)) {
                log_refusal(control, client, words[0]);
                answer_error(client, CORRAL_CONTROL_ERROR_PERMISSION,
                             "'%s' changes corrald's state; members of control_group may only "
                             "run status, processes, journal and metrics", words[0]);
                g_strfreev(words);
                return;
            }
            corral_supervisor_drain_status(control->supervisor);
            commands[i].run(control, client, words + 1);
            g_strfreev(words);
            return;
        }
    }
    log_warning("control: %s: unknown command '%s'", corral_stream_client_peer(client),
                words[0] != NULL ? words[0] : "");
    answer_error(client, CORRAL_CONTROL_ERROR_USAGE, "unknown command '%s'",
                 words[0] != NULL ? words[0] : "");
    g_strfreev(words);
}

static void on_input(corral_stream_client *client, GString *input, bool eof, void *data)
{
    corral_control *control = data;
    char *newline = memchr(input->str, '\n', input->len);
    char *line;

    if (newline == NULL) {
        if (eof && input->len > 0)
            answer_error(client, CORRAL_CONTROL_ERROR_USAGE, "request not ended by a newline");
        return;
    }
    line = g_strndup(input->str, (gsize)(newline - input->str));
    g_string_truncate(input, 0);
    if (line[0] != '\0' && line[strlen(line) - 1] == '\r')
        line[strlen(line) - 1] = '\0';
    /* One request per connection: the answer ends it. */
    corral_stream_client_finish(client);
    dispatch(control, client, line);
    g_free(line);
}

static const corral_stream_protocol control_protocol = {
    .name = "control socket",
    .input_max = REQUEST_MAX,
    .request_timeout_msecs = REQUEST_TIMEOUT_MSECS,
    .input = on_input,
};

corral_control *corral_control_open(corral_supervisor *supervisor, const char *base_dir,
                                    const char *control_group, GError **error)
{
    corral_control *control = g_new0(corral_control, 1);
    struct group *group = NULL;

    if (control_group != NULL && (group = getgrnam(control_group)) == NULL) {
        g_set_error(error, CORRAL_CONFIG_ERROR, CORRAL_CONFIG_ERROR_VALUE,
                    "control_group: unknown group '%s'", control_group);
        g_free(control);
        return NULL;
    }
    control->supervisor = supervisor;
    control->socket.kind = CORRAL_LISTENER_UNIX;
    control->socket.name = g_strdup(CORRAL_CONTROL_SOCKET_NAME);
    control->socket.path = g_build_filename(base_dir, CORRAL_CONTROL_SOCKET_NAME, NULL);
    control->socket.mode = group != NULL ? 0660 : 0600;
    control->server = corral_stream_server_open(&control->socket, &control_protocol, control,
                                                error);
    if (control->server == NULL) {
        g_prefix_error(error, "control socket: ");
        corral_control_free(control);
        return NULL;
    }
    /* Until this chown the socket belongs to corrald's own group, whose
     * members could connect; they are not corrald's uid, so they too may
     * only look. */
    if (group != NULL && chown(control->socket.path, (uid_t)-1, group->gr_gid) < 0) {
        g_set_error(error, CORRAL_CONFIG_ERROR, CORRAL_CONFIG_ERROR_IO,
                    "control_group: cannot give %s to group '%s': %s", control->socket.path,
                    control_group, g_strerror(errno));
        corral_control_free(control);
        return NULL;
    }
    return control;
}

void corral_control_free(corral_control *control)
{
    if (control == NULL)
        return;
    corral_stream_server_free(control->server);
    g_free(control->socket.name);
    g_free(control->socket.path);
    g_free(control);
}
