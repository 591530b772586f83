/* SPDX-License-Identifier: MIT */
/*
 * corralctl - the operator's command line for a running corrald.
 *
 * It finds corrald's control socket, base_dir/corral.sock, from the same
 * configuration file corrald reads, sends one request and shows the JSON
 * answer as a table (or as JSON with --json).  control.h describes the
 * protocol; corralctl(1) the commands and exit codes.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>
#include <json-glib/json-glib.h>

#include "config.h"
#include "control.h"
#include "corral-build.h"

/* Exit codes, documented in corralctl(1). */
enum {
    EXIT_OK = 0,
    EXIT_FAILED = 1,          /* corrald refused or failed the command */
    EXIT_USAGE = 2,
    EXIT_NOT_RUNNING = 3,     /* no control socket, or nobody listening on it */
    EXIT_PERMISSION = 4,      /* the control socket is not ours to use */
    EXIT_UNKNOWN_SERVICE = 5,
    EXIT_CONFIG = 6,          /* the configuration file cannot be read */
};

#define ANSWER_TIMEOUT_MSECS 15000
/* A reload builds every service; shutdown waits up to 5 s for workers. */
#define SLOW_ANSWER_TIMEOUT_MSECS 60000

static gboolean opt_json;
static gboolean opt_force;

/* ------------------------------------------------------------------ */
/* Talking to corrald.                                                  */

static int connect_control(const char *path)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    int fd, saved;

    if (strlen(path) >= sizeof(addr.sun_path)) {
        fprintf(stderr, "corralctl: control socket path too long: %s\n", path);
        exit(EXIT_FAILED);
    }
    strcpy(addr.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0)
        return fd;
    saved = errno;
    if (fd >= 0)
        close(fd);
    switch (saved) {
    case ENOENT:
        fprintf(stderr, "corralctl: corrald is not running (no control socket at %s)\n", path);
        exit(EXIT_NOT_RUNNING);
    case ECONNREFUSED:
        fprintf(stderr, "corralctl: corrald is not running (%s refuses connections)\n", path);
        exit(EXIT_NOT_RUNNING);
    case EACCES:
    case EPERM:
        fprintf(stderr, "corralctl: permission denied on %s: run corralctl as the user "
                        "corrald runs as (usually root)\n", path);
        exit(EXIT_PERMISSION);
    default:
        fprintf(stderr, "corralctl: cannot connect to %s: %s\n", path, g_strerror(saved));
        exit(EXIT_FAILED);
    }
}

static void send_all(int fd, const char *path, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t written = send(fd, data, len, MSG_NOSIGNAL);

        if (written < 0 && errno == EINTR)
            continue;
        if (written < 0) {
            fprintf(stderr, "corralctl: cannot send to %s: %s\n", path, g_strerror(errno));
            exit(EXIT_FAILED);
        }
        data += written;
        len -= (size_t)written;
    }
}

/* Reads until corrald closes the connection or `timeout_msecs` pass.
 * Returns false on timeout. */
static bool read_until_eof(int fd, const char *path, GString *into, int timeout_msecs)
{
    gint64 deadline = g_get_monotonic_time() + timeout_msecs * (gint64)1000;
    char chunk[8192];

    for (;;) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        gint64 left = (deadline - g_get_monotonic_time()) / 1000;
        ssize_t got;
        int ready;

        if (left <= 0)
            return false;
        ready = poll(&pfd, 1, (int)left);
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready == 0)
            return false;
        got = recv(fd, chunk, sizeof(chunk), 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            fprintf(stderr, "corralctl: cannot read from %s: %s\n", path, g_strerror(errno));
            exit(EXIT_FAILED);
        }
        if (got == 0)
            return true;
        if (into != NULL)
            g_string_append_len(into, chunk, got);
    }
}

/* The answer's first line: the JSON object. */
static JsonObject *parse_answer(const GString *text, const char *path, JsonParser **parser_out)
{
    JsonParser *parser = json_parser_new();
    GError *error = NULL;
    gsize len = strcspn(text->str, "\n");
    JsonNode *root;

    if (len == 0 || !json_parser_load_from_data(parser, text->str, (gssize)len, &error) ||
        !JSON_NODE_HOLDS_OBJECT(root = json_parser_get_root(parser))) {
        fprintf(stderr, "corralctl: unexpected answer from %s%s%s\n", path,
                error != NULL ? ": " : "", error != NULL ? error->message : "");
        g_clear_error(&error);
        g_object_unref(parser);
        exit(EXIT_FAILED);
    }
    *parser_out = parser;
    return json_node_get_object(root);
}

/* Reports a refusal and exits with its code. */
static void fail_on_error(JsonObject *answer)
{
    JsonObject *error;
    const char *kind;

    if (!json_object_has_member(answer, "error"))
        return;
    error = json_object_get_object_member(answer, "error");
    kind = error != NULL ? json_object_get_string_member_with_default(error, "kind", "") : "";
    fprintf(stderr, "corralctl: %s\n",
            error != NULL ? json_object_get_string_member_with_default(error, "message", "?")
                          : "corrald refused the command");
    if (strcmp(kind, CORRAL_CONTROL_ERROR_UNKNOWN_SERVICE) == 0)
        exit(EXIT_UNKNOWN_SERVICE);
    exit(strcmp(kind, CORRAL_CONTROL_ERROR_USAGE) == 0 ? EXIT_USAGE : EXIT_FAILED);
}

static void print_json(JsonObject *answer)
{
    JsonGenerator *generator = json_generator_new();
    JsonNode *root = json_node_new(JSON_NODE_OBJECT);
    char *text;

    json_node_set_object(root, answer);
    json_generator_set_root(generator, root);
    json_generator_set_pretty(generator, TRUE);
    text = json_generator_to_data(generator, NULL);
    printf("%s\n", text);
    g_free(text);
    json_node_unref(root);
    g_object_unref(generator);
}

/* ------------------------------------------------------------------ */
/* Tables.                                                              */

typedef struct table {
    guint columns;
    GPtrArray *cells; /* char*, row by row */
} table;

static void table_init(table *t, const char *const *headers)
{
    t->columns = g_strv_length((char **)headers);
    t->cells = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; i < t->columns; i++)
        g_ptr_array_add(t->cells, g_strdup(headers[i]));
}

static void table_add(table *t, char *cell)
{
    g_ptr_array_add(t->cells, cell);
}

static void table_print_and_free(table *t)
{
    gsize *widths = g_new0(gsize, t->columns);

    for (guint i = 0; i < t->cells->len; i++) {
        gsize width = (gsize)g_utf8_strlen(g_ptr_array_index(t->cells, i), -1);
        widths[i % t->columns] = MAX(widths[i % t->columns], width);
    }
    for (guint i = 0; i < t->cells->len; i++) {
        const char *cell = g_ptr_array_index(t->cells, i);
        bool last = i % t->columns == t->columns - 1;

        fputs(cell, stdout);
        if (last) {
            fputc('\n', stdout);
        } else {
            for (gsize pad = (gsize)g_utf8_strlen(cell, -1); pad < widths[i % t->columns] + 2;
                 pad++)
                fputc(' ', stdout);
        }
    }
    g_free(widths);
    g_ptr_array_unref(t->cells);
}

static char *int_cell(JsonObject *object, const char *member)
{
    return g_strdup_printf("%" G_GINT64_FORMAT,
                           json_object_get_int_member_with_default(object, member, 0));
}

static char *bool_cell(JsonObject *object, const char *member)
{
    return g_strdup(json_object_get_boolean_member_with_default(object, member, FALSE) ? "yes"
                                                                                      : "no");
}

/* Local time, with the date only when it is not today; "-" for never. */
static char *time_cell(JsonObject *object, const char *member)
{
    JsonNode *node = json_object_get_member(object, member);
    time_t when, now = time(NULL);
    struct tm when_tm, now_tm;
    char text[32];

    if (node == NULL || JSON_NODE_HOLDS_NULL(node))
        return g_strdup("-");
    when = (time_t)json_node_get_int(node);
    localtime_r(&when, &when_tm);
    localtime_r(&now, &now_tm);
    strftime(text, sizeof(text),
             when_tm.tm_yday == now_tm.tm_yday && when_tm.tm_year == now_tm.tm_year
                 ? "%H:%M:%S"
                 : "%Y-%m-%d %H:%M:%S",
             &when_tm);
    return g_strdup(text);
}

static char *duration_cell(gint64 secs)
{
    if (secs < 60)
        return g_strdup_printf("%" G_GINT64_FORMAT "s", secs);
    if (secs < 3600)
        return g_strdup_printf("%" G_GINT64_FORMAT "m%02" G_GINT64_FORMAT "s", secs / 60,
                               secs % 60);
    if (secs < 86400)
        return g_strdup_printf("%" G_GINT64_FORMAT "h%02" G_GINT64_FORMAT "m", secs / 3600,
                               secs % 3600 / 60);
    return g_strdup_printf("%" G_GINT64_FORMAT "d%02" G_GINT64_FORMAT "h", secs / 86400,
                           secs % 86400 / 3600);
}

static void print_status(JsonObject *answer)
{
    static const char *const headers[] = {
        "SERVICE", "POLICY", "STATE", "PROCS", "AVAIL", "LIMIT", "CLIENTS", "MIN_AVAIL",
        "THROTTLED", "LISTENING", "PENDING", "QUEUED", "SPAWNED", "DROPPED", "LAST_DROP", "EXIT_FAILURES",
        "FAILURES/S", "SUCCESS", NULL,
    };
    JsonArray *services = json_object_get_array_member(answer, "services");
    table t;

    table_init(&t, headers);
    for (guint i = 0; services != NULL && i < json_array_get_length(services); i++) {
        JsonObject *s = json_array_get_object_element(services, i);

        table_add(&t, g_strdup(json_object_get_string_member_with_default(s, "name", "?")));
        table_add(&t, g_strdup(json_object_get_string_member_with_default(s, "policy", "?")));
        table_add(&t, g_strdup(json_object_get_string_member_with_default(s, "state", "?")));
        table_add(&t, int_cell(s, "process_count"));
        table_add(&t, int_cell(s, "process_avail"));
        table_add(&t, int_cell(s, "process_limit"));
        table_add(&t, int_cell(s, "client_limit"));
        table_add(&t, int_cell(s, "process_min_avail"));
        if (json_object_get_boolean_member_with_default(s, "throttled", FALSE)) {
            char *until = time_cell(s, "throttled_until");
            table_add(&t, g_strdup_printf("until %s", until));
            g_free(until);
        } else {
            table_add(&t, g_strdup("no"));
        }
        table_add(&t, bool_cell(s, "listening"));
        table_add(&t, bool_cell(s, "listen_pending"));
        table_add(&t, int_cell(s, "queued"));
        table_add(&t, int_cell(s, "processes_spawned"));
        table_add(&t, int_cell(s, "connections_dropped"));
        table_add(&t, time_cell(s, "last_drop"));
        table_add(&t, int_cell(s, "exit_failures"));
        table_add(&t, int_cell(s, "exit_failures_in_sec"));
        table_add(&t, bool_cell(s, "have_success"));
    }
    table_print_and_free(&t);
}

static void print_processes(JsonObject *answer)
{
    static const char *const headers[] = {
        "PID", "SERVICE", "AVAILABLE", "SERVED", "IDLE_SINCE", "LAST_STATUS", "LAST_KILL",
        "AGE", NULL,
    };
    JsonArray *processes = json_object_get_array_member(answer, "processes");
    table t;

    table_init(&t, headers);
    for (guint i = 0; processes != NULL && i < json_array_get_length(processes); i++) {
        JsonObject *p = json_array_get_object_element(processes, i);

        table_add(&t, int_cell(p, "pid"));
        table_add(&t, g_strdup(json_object_get_string_member_with_default(p, "service", "?")));
        table_add(&t, int_cell(p, "available_count"));
        table_add(&t, int_cell(p, "clients_served"));
        table_add(&t, time_cell(p, "idle_since"));
        table_add(&t, time_cell(p, "last_status"));
        table_add(&t, time_cell(p, "last_kill"));
        table_add(&t, duration_cell(json_object_get_int_member_with_default(p, "age_secs", 0)));
    }
    table_print_and_free(&t);
}

static void print_journal(JsonObject *answer)
{
    static const char *const headers[] = { "TIME", "SERVICE", "SHADOW", "WOULD", NULL };
    JsonArray *decisions = json_object_get_array_member(answer, "decisions");
    table t;

    table_init(&t, headers);
    for (guint i = 0; decisions != NULL && i < json_array_get_length(decisions); i++) {
        JsonObject *d = json_array_get_object_element(decisions, i);

        table_add(&t, time_cell(d, "time"));
        table_add(&t, g_strdup(json_object_get_string_member_with_default(d, "service", "?")));
        table_add(&t, g_strdup(json_object_get_string_member_with_default(d, "policy", "?")));
        table_add(&t, g_strdup(json_object_get_string_member_with_default(d, "decision", "?")));
    }
    table_print_and_free(&t);
}

static void print_names(JsonObject *answer, const char *member, const char *verb)
{
    JsonArray *names = json_object_get_array_member(answer, member);

    for (guint i = 0; names != NULL && i < json_array_get_length(names); i++)
        printf("%s %s\n", verb, json_array_get_string_element(names, i));
}

/* ------------------------------------------------------------------ */
/* Commands.                                                            */

/* "TERM", "SIGTERM", "sigterm" or "15"; 0 if not a signal. */
static int parse_signal(const char *text)
{
    const char *name = g_ascii_strncasecmp(text, "SIG", 3) == 0 ? text + 3 : text;
    guint64 number;

    if (g_ascii_string_to_unsigned(text, 10, 1, NSIG - 1, &number, NULL))
        return (int)number;
    for (int signo = 1; signo < NSIG; signo++) {
        const char *abbrev = sigabbrev_np(signo);
        if (abbrev != NULL && g_ascii_strcasecmp(abbrev, name) == 0)
            return signo;
    }
    return 0;
}

static void usage_error(const char *format, ...) G_GNUC_PRINTF(1, 2) G_GNUC_NORETURN;

static void usage_error(const char *format, ...)
{
    va_list args;

    fputs("corralctl: ", stderr);
    va_start(args, format);
    vfprintf(stderr, format, args);
    va_end(args);
    fputs("\nTry 'corralctl --help'.\n", stderr);
    exit(EXIT_USAGE);
}

/* Turns the command line into a request line; *shown is what to print. */
static char *build_request(int argc, char **argv, const char **shown, int *timeout_msecs)
{
    const char *command = argv[1];
    GString *request = g_string_new(NULL);
    int first_arg = 2;

    *timeout_msecs = ANSWER_TIMEOUT_MSECS;
    *shown = command;
    if (opt_force && strcmp(command, "reload") != 0)
        usage_error("%s", "--force goes with reload only");
    if (strcmp(command, "status") == 0 || strcmp(command, "processes") == 0 ||
        strcmp(command, "journal") == 0) {
        g_string_append(request, command);
    } else if (strcmp(command, "metrics") == 0 || strcmp(command, "reload") == 0 ||
               strcmp(command, "stop") == 0) {
        if (argc > 2)
            usage_error("'%s' takes no arguments", command);
        g_string_append(request, command);
        if (opt_force)
            g_string_append(request, "\tforce");
        if (strcmp(command, "metrics") != 0)
            *timeout_msecs = SLOW_ANSWER_TIMEOUT_MSECS;
    } else if (strcmp(command, "service") == 0) {
        if (argc < 4 || (strcmp(argv[2], "stop") != 0 && strcmp(argv[2], "start") != 0))
            usage_error("%s", "usage: corralctl service stop|start NAME...");
        g_string_append_printf(request, "service-%s", argv[2]);
        *shown = strcmp(argv[2], "stop") == 0 ? "service-stop" : "service-start";
        first_arg = 3;
    } else if (strcmp(command, "kill") == 0) {
        int signo = argc > 3 ? parse_signal(argv[3]) : SIGTERM;

        if (argc < 3 || argc > 4)
            usage_error("%s", "usage: corralctl kill NAME [SIGNAL]");
        if (signo == 0)
            usage_error("'%s' is not a signal (try TERM, HUP, USR1 or a number)", argv[3]);
        g_string_append_printf(request, "kill\t%s\t%d\n", argv[2], signo);
        return g_string_free(request, FALSE);
    } else {
        usage_error("unknown command '%s'", command);
    }
    for (int i = first_arg; i < argc; i++) {
        if (strpbrk(argv[i], "\t\n") != NULL)
            usage_error("'%s' is not a service name", argv[i]);
        g_string_append_printf(request, "\t%s", argv[i]);
    }
    g_string_append_c(request, '\n');
    return g_string_free(request, FALSE);
}

static void show(const char *command, JsonObject *answer)
{
    if (strcmp(command, "metrics") == 0) {
        fputs(json_object_get_string_member_with_default(answer, "metrics", ""), stdout);
        return;
    }
    if (opt_json) {
        print_json(answer);
        return;
    }
    if (strcmp(command, "status") == 0) {
        print_status(answer);
    } else if (strcmp(command, "processes") == 0) {
        print_processes(answer);
    } else if (strcmp(command, "journal") == 0) {
        print_journal(answer);
    } else if (strcmp(command, "reload") == 0) {
        printf("configuration reloaded\n");
    } else if (strcmp(command, "service-stop") == 0) {
        print_names(answer, "stopped", "stopped");
    } else if (strcmp(command, "service-start") == 0) {
        print_names(answer, "started", "started");
    } else if (strcmp(command, "kill") == 0) {
        gint64 count = json_object_get_int_member_with_default(answer, "signalled", 0);
        printf("sent %s to %" G_GINT64_FORMAT " process%s of %s\n",
               json_object_get_string_member_with_default(answer, "signal", "?"), count,
               count == 1 ? "" : "es",
               json_object_get_string_member_with_default(answer, "service", "?"));
    }
}

int main(int argc, char **argv)
{
    char *config_path = NULL;
    gboolean show_version = FALSE;
    GOptionEntry entries[] = {
        { "config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path,
          "corrald's main configuration file (default " CORRAL_DEFAULT_CONFIG ")", "FILE" },
        { "json", 'j', 0, G_OPTION_ARG_NONE, &opt_json, "Print the answer as JSON", NULL },
        { "force", 0, 0, G_OPTION_ARG_NONE, &opt_force,
          "reload: apply a configuration that drops every service or every listener of a "
          "running service", NULL },
        { "version", 'V', 0, G_OPTION_ARG_NONE, &show_version, "Print the version and exit", NULL },
        { NULL, 0, 0, 0, NULL, NULL, NULL },
    };
    GOptionContext *context = g_option_context_new("COMMAND [ARGUMENT...]");
    GError *error = NULL;
    JsonParser *parser = NULL;
    JsonObject *answer;
    GString *text;
    const char *command;
    char *base_dir, *socket_path, *request;
    int fd, timeout_msecs;

    g_option_context_add_main_entries(context, entries, NULL);
    g_option_context_set_summary(context,
        "Commands:\n"
        "  status [SERVICE...]         services: processes, limits, throttling, drops\n"
        "  processes [SERVICE...]      every process: pid, clients, idle time, age\n"
        "  journal [SERVICE...]        what shadow policies would have done\n"
        "  metrics                     the Prometheus text exposition\n"
        "  reload [--force]            reload the configuration (--force: even one that\n"
        "                              drops every service or a running service's listeners)\n"
        "  stop                        shut corrald down and wait until it has exited\n"
        "  service stop NAME...        stop a service: close its listeners, let its\n"
        "                              processes finish\n"
        "  service start NAME...       start a stopped service again\n"
        "  kill NAME [SIGNAL]          signal every process of a service (default TERM)");
    g_option_context_set_description(context,
        "Exit codes: 0 success, 1 the command failed, 2 usage error, 3 corrald is not\n"
        "running, 4 permission denied on the control socket, 5 no such service,\n"
        "6 the configuration cannot be read.  See corralctl(1).\n");
    if (!g_option_context_parse(context, &argc, &argv, &error)) {
        fprintf(stderr, "corralctl: %s\nTry 'corralctl --help'.\n", error->message);
        g_error_free(error);
        g_option_context_free(context);
        return EXIT_USAGE;
    }
    g_option_context_free(context);
    if (show_version) {
        printf("corralctl %s\n", CORRAL_VERSION);
        g_free(config_path);
        return EXIT_OK;
    }
    if (argc < 2) {
        g_free(config_path);
        usage_error("%s", "a command is needed");
    }
    request = build_request(argc, argv, &command, &timeout_msecs);

    base_dir = corral_config_read_base_dir(config_path != NULL ? config_path
                                                               : CORRAL_DEFAULT_CONFIG,
                                           &error);
    g_free(config_path);
    if (base_dir == NULL) {
        fprintf(stderr, "corralctl: %s\n", error->message);
        g_error_free(error);
        g_free(request);
        return EXIT_CONFIG;
    }
    socket_path = g_build_filename(base_dir, CORRAL_CONTROL_SOCKET_NAME, NULL);
    g_free(base_dir);

    fd = connect_control(socket_path);
    send_all(fd, socket_path, request, strlen(request));
    g_free(request);
    text = g_string_new(NULL);
    /* corrald closes once it has answered; after "stop", once it exits. */
    if (strcmp(command, "stop") == 0) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        /* The answer comes at once; the close comes at exit. */
        while (strchr(text->str, '\n') == NULL &&
               poll(&pfd, 1, ANSWER_TIMEOUT_MSECS) > 0) {
            char chunk[512];
            ssize_t got = recv(fd, chunk, sizeof(chunk), 0);
            if (got <= 0)
                break;
            g_string_append_len(text, chunk, got);
        }
    } else if (!read_until_eof(fd, socket_path, text, timeout_msecs)) {
        fprintf(stderr, "corralctl: no answer from corrald on %s within %d s\n", socket_path,
                timeout_msecs / 1000);
        return EXIT_FAILED;
    }
    answer = parse_answer(text, socket_path, &parser);
    fail_on_error(answer);
    show(command, answer);
    if (strcmp(command, "stop") == 0) {
        if (!read_until_eof(fd, socket_path, NULL, timeout_msecs)) {
            fprintf(stderr, "corralctl: corrald is still shutting down after %d s\n",
                    timeout_msecs / 1000);
            return EXIT_FAILED;
        }
        if (!opt_json)
            printf("corrald has stopped\n");
    }
    close(fd);
    g_object_unref(parser);
    g_string_free(text, TRUE);
    g_free(socket_path);
    return EXIT_OK;
}
