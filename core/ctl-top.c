/* SPDX-License-Identifier: MIT */
#include "ctl-top.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>
#include <json-glib/json-glib.h>

#include "ctl-client.h"
#include "ctl-table.h"

static const ctl_column top_columns[] = {
    { "SERVICE", "name", CTL_CELL_TEXT, 0 },
    { "STATE", "state", CTL_CELL_TEXT, 3 },
    { "PROCS", "process_count", CTL_CELL_INT, 9 },
    { "AVAIL", "process_avail", CTL_CELL_INT, 9 },
    { "LIMIT", "process_limit", CTL_CELL_INT, 7 },
    { "QUEUED", "queued", CTL_CELL_INT, 8 },
    { "QUEUED_MAX", "queued_max", CTL_CELL_INT, 4 },
    { "LIMIT_HITS", "process_limit_reached", CTL_CELL_INT, 5 },
    { "SPAWN/S", "spawn_rate", CTL_CELL_RATE, 8 },
    { "DROP/S", "drop_rate", CTL_CELL_RATE, 7 },
    { "FAIL/S", "failure_rate", CTL_CELL_RATE, 7 },
    { "STATUS/S", "status_rate", CTL_CELL_RATE, 6 },
    { "RSS", "rss_bytes", CTL_CELL_SIZE, 6 },
    { "CPU%", "cpu_percent", CTL_CELL_RATE, 7 },
    { "THROTTLED", "throttled", CTL_CELL_THROTTLE, 5 },
};

/* The counters of one service at the previous frame. */
typedef struct counters {
    gint64 spawned, dropped, failures, records;
} counters;

typedef struct top {
    const char *socket_path;
    char *status_request, *processes_request;
    GHashTable *previous;     /* service name -> counters* */
    GHashTable *previous_cpu; /* pid -> cpu seconds (double*) */
    gint64 previous_usec;     /* monotonic; 0 before the first frame */
} top;

static volatile sig_atomic_t stop_requested, resized;
/* What to put back at exit, however corralctl ends (ctl_die included). */
static struct termios saved_termios;
static bool termios_changed, screen_taken;

static void restore_terminal(void)
{
    if (screen_taken) {
        fputs("\033[?25h\033[?1049l", stdout);
        fflush(stdout);
        screen_taken = false;
    }
    if (termios_changed) {
        tcsetattr(STDIN_FILENO, TCSANOW, &saved_termios);
        termios_changed = false;
    }
}

static void on_stop_signal(int signo)
{
    (void)signo;
    stop_requested = 1;
}

static void on_resize(int signo)
{
    (void)signo;
    resized = 1;
}

static char *request_line(const char *command, char **services)
{
    GString *line = g_string_new(command);

    for (char **name = services; name != NULL && *name != NULL; name++) {
        if (strpbrk(*name, "\t\n") != NULL)
            ctl_die(CTL_EXIT_USAGE, "usage", "'%s' is not a service name", *name);
        g_string_append_printf(line, "\t%s", *name);
    }
    g_string_append_c(line, '\n');
    return g_string_free(line, FALSE);
}

static void set_rate(JsonObject *row, const char *member, gint64 now, gint64 before,
                     double elapsed)
{
    if (elapsed > 0 && now >= before)
        json_object_set_double_member(row, member, (double)(now - before) / elapsed);
}

/* One row per service: its gauges as corrald gave them, and what top
 * works out from the previous frame. */
static JsonArray *build_rows(top *view, JsonArray *services, JsonArray *processes,
                             double elapsed)
{
    JsonArray *rows = json_array_new();
    GHashTable *current = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    GHashTable *cpu = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
    static const char *const copied[] = { "name", "state", "process_count", "process_avail",
                                          "process_limit", "queued", "queued_max",
                                          "process_limit_reached", "throttled",
                                          "throttled_until" };

    for (guint i = 0; i < json_array_get_length(services); i++) {
        JsonObject *s = json_array_get_object_element(services, i);
        const char *name = json_object_get_string_member_with_default(s, "name", "?");
        counters *now = g_new(counters, 1), *before = g_hash_table_lookup(view->previous, name);
        JsonObject *row = json_object_new();
        gint64 rss = 0;
        double cpu_used = 0;

        for (size_t m = 0; m < G_N_ELEMENTS(copied); m++) {
            JsonNode *node = json_object_get_member(s, copied[m]);
            if (node != NULL)
                json_object_set_member(row, copied[m], json_node_copy(node));
        }
        *now = (counters){
            json_object_get_int_member_with_default(s, "processes_spawned", 0),
            json_object_get_int_member_with_default(s, "connections_dropped", 0),
            json_object_get_int_member_with_default(s, "exit_failures", 0),
            json_object_get_int_member_with_default(s, "status_records", 0),
        };
        if (before != NULL) {
            set_rate(row, "spawn_rate", now->spawned, before->spawned, elapsed);
            set_rate(row, "drop_rate", now->dropped, before->dropped, elapsed);
            set_rate(row, "failure_rate", now->failures, before->failures, elapsed);
            set_rate(row, "status_rate", now->records, before->records, elapsed);
        }
        for (guint p = 0; p < json_array_get_length(processes); p++) {
            JsonObject *proc = json_array_get_object_element(processes, p);
            gint64 pid = json_object_get_int_member_with_default(proc, "pid", 0);
            double *secs, *was;

            if (strcmp(json_object_get_string_member_with_default(proc, "service", ""), name) != 0)
                continue;
            rss += json_object_get_int_member_with_default(proc, "rss_bytes", 0);
            secs = g_new(double, 1);
            *secs = json_object_get_double_member_with_default(proc, "cpu_secs", 0);
            /* Only processes seen in both frames: a new one's whole past
             * does not belong to this interval. */
            was = g_hash_table_lookup(view->previous_cpu, GINT_TO_POINTER((int)pid));
            if (was != NULL && *secs >= *was)
                cpu_used += *secs - *was;
            g_hash_table_replace(cpu, GINT_TO_POINTER((int)pid), secs);
        }
        json_object_set_int_member(row, "rss_bytes", rss);
        if (view->previous_usec != 0 && elapsed > 0)
            json_object_set_double_member(row, "cpu_percent", 100.0 * cpu_used / elapsed);
        g_hash_table_replace(current, g_strdup(name), now);
        json_array_add_object_element(rows, row);
    }
    g_hash_table_unref(view->previous);
    g_hash_table_unref(view->previous_cpu);
    view->previous = current;
    view->previous_cpu = cpu;
    return rows;
}

/* Asks corrald and prints one frame. */
static void frame(top *view, double interval_secs, bool screen, const char *selection,
                  bool headers)
{
    JsonParser *status_parser, *processes_parser;
    JsonObject *status = ctl_request(view->socket_path, view->status_request,
                                     CTL_ANSWER_TIMEOUT_MSECS, &status_parser);
    JsonObject *processes = ctl_request(view->socket_path, view->processes_request,
                                        CTL_ANSWER_TIMEOUT_MSECS, &processes_parser);
    gint64 now_usec = g_get_monotonic_time();
    double elapsed = view->previous_usec != 0
                         ? (double)(now_usec - view->previous_usec) / G_USEC_PER_SEC
                         : 0;
    JsonArray *rows = build_rows(view, json_object_get_array_member(status, "services"),
                                 json_object_get_array_member(processes, "processes"), elapsed);
    int width = ctl_output_width();
    char *daemon = ctl_daemon_line(status);
    char clock[16], *title, *fitted;
    time_t wall = time(NULL);
    struct tm tm;

    view->previous_usec = now_usec;
    localtime_r(&wall, &tm);
    strftime(clock, sizeof(clock), "%H:%M:%S", &tm);
    title = g_strdup_printf("corralctl top %s, every %.1fs%s", clock, interval_secs,
                            screen ? " (q quits)" : "");
    if (screen)
        fputs("\033[H\033[J", stdout);
    if (headers) {
        fitted = ctl_fit_line(title, width);
        puts(fitted);
        g_free(fitted);
        fitted = ctl_fit_line(daemon != NULL ? daemon : "", width);
        puts(fitted);
        g_free(fitted);
        putchar('\n');
    }
    ctl_table_print(top_columns, G_N_ELEMENTS(top_columns), rows, selection, headers, width);
    if (!screen)
        putchar('\n');
    fflush(stdout);
    g_free(title);
    g_free(daemon);
    json_array_unref(rows);
    g_object_unref(status_parser);
    g_object_unref(processes_parser);
}

/* Waits up to `msecs` for a key; true when it was 'q'. */
static bool wait_for_quit(int msecs, bool keyboard)
{
    struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
    gint64 deadline = g_get_monotonic_time() + msecs * (gint64)1000;

    while (!stop_requested && !resized) {
        gint64 left = (deadline - g_get_monotonic_time()) / 1000;
        char key;
        int ready;

        if (left <= 0)
            return false;
        ready = poll(&pfd, keyboard ? 1 : 0, (int)left);
        if (ready < 0 && errno != EINTR)
            return false;
        if (ready > 0) {
            if (read(STDIN_FILENO, &key, 1) <= 0)
                keyboard = false; /* stdin closed: only the clock and signals now */
            else if (key == 'q' || key == 'Q')
                return true;
        }
    }
    return stop_requested;
}

int ctl_top(const char *socket_path, char **services, double interval_secs, int iterations,
            const char *selection, bool headers)
{
    top view = {
        .socket_path = socket_path,
        .status_request = request_line("status", services),
        .processes_request = request_line("processes", services),
        .previous = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free),
        .previous_cpu = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free),
    };
    bool screen = isatty(STDOUT_FILENO) && iterations == 0;
    bool keyboard = screen && isatty(STDIN_FILENO);
    struct termios raw;
    struct sigaction action = { .sa_handler = on_stop_signal }, winch = { .sa_handler = on_resize };
    int msecs = (int)(interval_secs * 1000);

    if (interval_secs < 0.1 || interval_secs > 3600)
        ctl_die(CTL_EXIT_USAGE, "usage", "--interval must be from 0.1 to 3600 seconds");
    /* No SA_RESTART: a signal must end the wait at once. */
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGHUP, &action, NULL);
    sigaction(SIGWINCH, &winch, NULL);
    atexit(restore_terminal);
    if (keyboard && tcgetattr(STDIN_FILENO, &saved_termios) == 0) {
        raw = saved_termios;
        raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
        raw.c_cc[VMIN] = 1;
        raw.c_cc[VTIME] = 0;
        termios_changed = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
    } else {
        keyboard = false;
    }
    if (screen) {
        fputs("\033[?1049h\033[?25l", stdout); /* own screen, no cursor */
        screen_taken = true;
    }
    for (int done = 0; !stop_requested && (iterations == 0 || done < iterations); done++) {
        resized = 0;
        frame(&view, interval_secs, screen, selection, headers);
        if ((iterations == 0 || done + 1 < iterations) && wait_for_quit(msecs, keyboard))
            break;
    }
    restore_terminal();
    g_hash_table_unref(view.previous);
    g_hash_table_unref(view.previous_cpu);
    g_free(view.status_request);
    g_free(view.processes_request);
    return CTL_EXIT_OK;
}
