/* SPDX-License-Identifier: MIT */
/*
 * corralctl - the operator's command line for a running corrald.
 *
 * It finds corrald's control socket, base_dir/corral.sock, from the same
 * configuration file corrald reads, sends one request and shows the JSON
 * answer as a table (or as JSON with --json).  control.h describes the
 * protocol; corralctl(1) the commands and exit codes.
 */
#include <locale.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib.h>
#include <json-glib/json-glib.h>

#include "config.h"
#include "control.h"
#include "corral-build.h"
#include "ctl-client.h"
#include "ctl-table.h"
#include "ctl-top.h"

static gboolean opt_json, opt_no_headers;
static char *opt_columns;
static double opt_interval = 2.0;
static int opt_iterations;

/* ------------------------------------------------------------------ */
/* Tables.                                                              */

static const ctl_column status_columns[] = {
    { "SERVICE", "name", CTL_CELL_TEXT, 0 },
    { "POLICY", "policy", CTL_CELL_TEXT, 6 },
    { "STATE", "state", CTL_CELL_TEXT, 7 },
    { "PROCS", "process_count", CTL_CELL_INT, 9 },
    { "AVAIL", "process_avail", CTL_CELL_INT, 9 },
    { "LIMIT", "process_limit", CTL_CELL_INT, 8 },
    { "CLIENTS", "client_limit", CTL_CELL_INT, 3 },
    { "MIN_AVAIL", "process_min_avail", CTL_CELL_INT, 2 },
    { "THROTTLED", "throttled", CTL_CELL_THROTTLE, 8 },
    { "LISTENING", "listening", CTL_CELL_BOOL, 2 },
    { "PENDING", "listen_pending", CTL_CELL_BOOL, 5 },
    { "QUEUED", "queued", CTL_CELL_INT, 7 },
    { "QUEUED_MAX", "queued_max", CTL_CELL_INT, 4 },
    { "LIMIT_HITS", "process_limit_reached", CTL_CELL_INT, 4 },
    { "SPAWNED", "processes_spawned", CTL_CELL_INT, 3 },
    { "DROPPED", "connections_dropped", CTL_CELL_INT, 6 },
    { "LAST_DROP", "last_drop", CTL_CELL_TIME, 2 },
    { "EXIT_FAILURES", "exit_failures", CTL_CELL_INT, 5 },
    { "FAILURES/S", "exit_failures_in_sec", CTL_CELL_INT, 1 },
    { "SUCCESS", "have_success", CTL_CELL_BOOL, 1 },
};

static const ctl_column process_columns[] = {
    { "PID", "pid", CTL_CELL_INT, 0 },
    { "SERVICE", "service", CTL_CELL_TEXT, 0 },
    { "AVAILABLE", "available_count", CTL_CELL_INT, 8 },
    { "SEEN", "clients_seen", CTL_CELL_INT, 5 },
    { "RSS", "rss_bytes", CTL_CELL_SIZE, 7 },
    { "CPU", "cpu_secs", CTL_CELL_CPU, 7 },
    { "IDLE_SINCE", "idle_since", CTL_CELL_TIME, 4 },
    { "LAST_STATUS", "last_status", CTL_CELL_TIME, 3 },
    { "LAST_KILL", "last_kill", CTL_CELL_TIME, 2 },
    { "AGE", "age_secs", CTL_CELL_AGE, 6 },
};

static const ctl_column journal_columns[] = {
    { "TIME", "time", CTL_CELL_TIME, 0 },
    { "SERVICE", "service", CTL_CELL_TEXT, 0 },
    { "SHADOW", "policy", CTL_CELL_TEXT, 0 },
    { "WOULD", "decision", CTL_CELL_TEXT, 0 },
};

static void print_table(const ctl_column *columns, size_t count, JsonObject *answer,
                        const char *member)
{
    ctl_table_print(columns, count, json_object_get_array_member(answer, member), opt_columns,
                    !opt_no_headers, ctl_output_width());
}

static void print_status(JsonObject *answer)
{
    char *daemon = ctl_daemon_line(answer);

    if (daemon != NULL && !opt_no_headers) {
        char *fitted = ctl_fit_line(daemon, ctl_output_width());

        puts(fitted);
        g_free(fitted);
    }
    g_free(daemon);
    print_table(status_columns, G_N_ELEMENTS(status_columns), answer, "services");
}

static void print_names(JsonObject *answer, const char *member, const char *verb)
{
    JsonArray *names = json_object_get_array_member(answer, member);

    for (guint i = 0; names != NULL && i < json_array_get_length(names); i++)
        printf("%s %s\n", verb, json_array_get_string_element(names, i));
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

#define usage_error(...) ctl_die(CTL_EXIT_USAGE, CORRAL_CONTROL_ERROR_USAGE, __VA_ARGS__)

/* Turns the command line into a request line; *shown is what to print. */
static char *build_request(int argc, char **argv, const char **shown, int *timeout_msecs)
{
    const char *command = argv[1];
    GString *request = g_string_new(NULL);
    int first_arg = 2;

    *timeout_msecs = CTL_ANSWER_TIMEOUT_MSECS;
    *shown = command;
    if (strcmp(command, "status") == 0 || strcmp(command, "processes") == 0 ||
        strcmp(command, "journal") == 0) {
        g_string_append(request, command);
    } else if (strcmp(command, "metrics") == 0 || strcmp(command, "reload") == 0 ||
               strcmp(command, "stop") == 0) {
        if (argc > 2)
            usage_error("'%s' takes no arguments", command);
        g_string_append(request, command);
        if (strcmp(command, "metrics") != 0)
            *timeout_msecs = CTL_SLOW_ANSWER_TIMEOUT_MSECS;
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
        print_table(process_columns, G_N_ELEMENTS(process_columns), answer, "processes");
    } else if (strcmp(command, "journal") == 0) {
        print_table(journal_columns, G_N_ELEMENTS(journal_columns), answer, "decisions");
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

/* "stop": the answer comes at once, the close when corrald has exited. */
static int stop_corrald(const char *socket_path, const char *request, int timeout_msecs)
{
    GString *text = g_string_new(NULL);
    JsonParser *parser;
    int fd = ctl_connect(socket_path);

    ctl_send(fd, socket_path, request);
    for (;;) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        char chunk[512];
        ssize_t got;

        if (strchr(text->str, '\n') != NULL || poll(&pfd, 1, CTL_ANSWER_TIMEOUT_MSECS) <= 0)
            break;
        got = recv(fd, chunk, sizeof(chunk), 0);
        if (got <= 0)
            break;
        g_string_append_len(text, chunk, got);
    }
    show("stop", ctl_parse_answer(text, socket_path, &parser));
    g_object_unref(parser);
    g_string_free(text, TRUE);
    if (!ctl_read_until_eof(fd, socket_path, NULL, timeout_msecs))
        ctl_die(CTL_EXIT_FAILED, CORRAL_CONTROL_ERROR_FAILED,
                "corrald is still shutting down after %d s", timeout_msecs / 1000);
    close(fd);
    if (!opt_json)
        printf("corrald has stopped\n");
    return CTL_EXIT_OK;
}

/* GOption reports its own errors before --json is known: look for it. */
static bool wants_json(int argc, char **argv)
{
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "--json") == 0 || strcmp(argv[i], "-j") == 0)
            return true;
    }
    return false;
}

int main(int argc, char **argv)
{
    char *config_path = NULL;
    gboolean show_version = FALSE;
    GOptionEntry entries[] = {
        { "config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path,
          "corrald's main configuration file (default " CORRAL_DEFAULT_CONFIG ")", "FILE" },
        { "json", 'j', 0, G_OPTION_ARG_NONE, &opt_json,
          "Print the answer, and any error, as JSON", NULL },
        { "output", 'o', 0, G_OPTION_ARG_STRING, &opt_columns,
          "Show these columns, in this order (status, processes, journal, top)", "COLUMNS" },
        { "no-headers", 'H', 0, G_OPTION_ARG_NONE, &opt_no_headers,
          "Print table rows only", NULL },
        { "interval", 'i', 0, G_OPTION_ARG_DOUBLE, &opt_interval,
          "top: seconds between frames (default 2)", "SECS" },
        { "iterations", 'n', 0, G_OPTION_ARG_INT, &opt_iterations,
          "top: print this many frames, one after another, and exit", "N" },
        { "version", 'V', 0, G_OPTION_ARG_NONE, &show_version, "Print the version and exit", NULL },
        { NULL, 0, 0, 0, NULL, NULL, NULL },
    };
    GOptionContext *context = g_option_context_new("COMMAND [ARGUMENT…]");
    GError *error = NULL;
    JsonParser *parser;
    const char *command;
    char *base_dir, *socket_path, *request;
    int timeout_msecs, code;

    setlocale(LC_ALL, "");
    ctl_json = wants_json(argc, argv);
    g_option_context_add_main_entries(context, entries, NULL);
    g_option_context_set_summary(context,
        "Commands:\n"
        "  status [SERVICE…]           corrald and its services: processes, limits,\n"
        "                              throttling, queue, drops\n"
        "  processes [SERVICE…]        every process: pid, clients, memory, CPU, age\n"
        "  top [SERVICE…]              a live view of the services, with rates\n"
        "  journal [SERVICE…]          what shadow policies would have done\n"
        "  metrics                     the Prometheus text exposition\n"
        "  reload                      reload the configuration\n"
        "  stop                        shut corrald down and wait until it has exited\n"
        "  service stop NAME…          stop a service: close its listeners, let its\n"
        "                              processes finish\n"
        "  service start NAME…         start a stopped service again\n"
        "  kill NAME [SIGNAL]          signal every process of a service (default TERM)");
    g_option_context_set_description(context,
        "Tables fit the terminal (or COLUMNS), leaving out the columns that matter\n"
        "least; -o SERVICE,PROCS,... picks them instead.\n"
        "Exit codes: 0 success, 1 the command failed, 2 usage error, 3 corrald is not\n"
        "running, 4 permission denied, 5 no such service, 6 the configuration cannot\n"
        "be read.  See corralctl(1).\n");
    if (!g_option_context_parse(context, &argc, &argv, &error)) {
        g_option_context_free(context);
        usage_error("%s", error->message);
    }
    g_option_context_free(context);
    ctl_json = opt_json;
    if (show_version) {
        printf("corralctl %s\n", CORRAL_VERSION);
        g_free(config_path);
        return CTL_EXIT_OK;
    }
    if (argc < 2)
        usage_error("%s", "a command is needed");
    if (opt_json && (opt_columns != NULL || opt_no_headers))
        usage_error("%s", "-o and --no-headers shape tables; --json prints every field");
    if (strcmp(argv[1], "top") == 0) {
        if (opt_json)
            usage_error("%s", "top has no --json form; use status --json");
        if (opt_iterations < 0)
            usage_error("%s", "--iterations must not be negative");
        command = "top";
        request = NULL;
        timeout_msecs = CTL_ANSWER_TIMEOUT_MSECS;
    } else {
        request = build_request(argc, argv, &command, &timeout_msecs);
    }

    base_dir = corral_config_read_base_dir(config_path != NULL ? config_path
                                                               : CORRAL_DEFAULT_CONFIG,
                                           &error);
    g_free(config_path);
    if (base_dir == NULL)
        ctl_die(CTL_EXIT_CONFIG, "config", "%s", error->message);
    socket_path = g_build_filename(base_dir, CORRAL_CONTROL_SOCKET_NAME, NULL);
    g_free(base_dir);

    if (strcmp(command, "top") == 0) {
        code = ctl_top(socket_path, argv + 2, opt_interval, opt_iterations, opt_columns,
                       !opt_no_headers);
    } else if (strcmp(command, "stop") == 0) {
        code = stop_corrald(socket_path, request, timeout_msecs);
    } else {
        show(command, ctl_request(socket_path, request, timeout_msecs, &parser));
        g_object_unref(parser);
        code = CTL_EXIT_OK;
    }
    g_free(request);
    g_free(socket_path);
    g_free(opt_columns);
    return code;
}
