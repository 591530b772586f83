/* SPDX-License-Identifier: MIT */
#include "ctl-table.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "ctl-client.h"

#define COLUMN_GAP 2
#define MIN_CUT_WIDTH 4

int ctl_output_width(void)
{
    const char *columns = getenv("COLUMNS");
    guint64 width;
    struct winsize size;

    if (columns != NULL && g_ascii_string_to_unsigned(columns, 10, 1, 10000, &width, NULL))
        return (int)width;
    if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0)
        return size.ws_col;
    return 0;
}

static const char *ellipsis(void)
{
    return g_get_charset(NULL) ? "\u2026" : "...";
}

char *ctl_fit_line(const char *line, int width)
{
    glong length = g_utf8_strlen(line, -1);
    const char *dots = ellipsis();
    glong dots_length = g_utf8_strlen(dots, -1);
    char *cut, *fitted;

    if (width <= 0 || length <= width)
        return g_strdup(line);
    if (width <= dots_length)
        return g_utf8_substring(line, 0, width);
    cut = g_utf8_substring(line, 0, width - dots_length);
    fitted = g_strconcat(cut, dots, NULL);
    g_free(cut);
    return fitted;
}

char *ctl_age_text(gint64 secs)
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

/* Local time, with the date only when it is not today; "-" for never. */
char *ctl_time_text(JsonObject *object, const char *member)
{
    JsonNode *node = object != NULL ? json_object_get_member(object, member) : NULL;
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

/* "812K", "12.4M", "1.1G". */
char *ctl_size_text(gint64 bytes)
{
    static const char units[] = "KMGT";
    double value = (double)bytes / 1024;
    int unit = 0;

    while (value >= 1024 && units[unit + 1] != '\0') {
        value /= 1024;
        unit++;
    }
    return g_strdup_printf(value < 10 && unit > 0 ? "%.1f%c" : "%.0f%c", value, units[unit]);
}

char *ctl_daemon_line(JsonObject *answer)
{
    JsonObject *daemon = json_object_has_member(answer, "corrald")
                             ? json_object_get_object_member(answer, "corrald")
                             : NULL;
    JsonObject *reload;
    GString *line;
    char *up, *when;

    if (daemon == NULL)
        return NULL;
    reload = json_object_has_member(daemon, "last_reload")
                 ? json_object_get_object_member(daemon, "last_reload")
                 : NULL;
    up = ctl_age_text(MAX((gint64)time(NULL) -
                              json_object_get_int_member_with_default(daemon, "started", 0),
                          0));
    line = g_string_new(NULL);
    g_string_printf(line, "corrald %s pid %" G_GINT64_FORMAT " up %s, %s, last reload ",
                    json_object_get_string_member_with_default(daemon, "version", "?"),
                    json_object_get_int_member_with_default(daemon, "pid", 0), up,
                    json_object_get_string_member_with_default(daemon, "config", "?"));
    when = ctl_time_text(reload, "time");
    if (strcmp(when, "-") == 0)
        g_string_append(line, "none");
    else if (json_object_get_boolean_member_with_default(reload, "ok", TRUE))
        g_string_append_printf(line, "ok at %s", when);
    else
        g_string_append_printf(line, "FAILED at %s: %s", when,
                               json_object_get_string_member_with_default(reload, "error", "?"));
    g_free(when);
    g_free(up);
    return g_string_free(line, FALSE);
}

static char *cell_text(const ctl_column *column, JsonObject *row)
{
    JsonNode *node = json_object_get_member(row, column->member);
    double secs;

    if (column->kind != CTL_CELL_THROTTLE && (node == NULL || JSON_NODE_HOLDS_NULL(node)))
        return g_strdup("-");
    switch (column->kind) {
    case CTL_CELL_TEXT:
        return g_strdup(json_node_get_string(node) != NULL ? json_node_get_string(node) : "?");
    case CTL_CELL_INT:
        return g_strdup_printf("%" G_GINT64_FORMAT, json_node_get_int(node));
    case CTL_CELL_BOOL:
        return g_strdup(json_node_get_boolean(node) ? "yes" : "no");
    case CTL_CELL_TIME:
        return ctl_time_text(row, column->member);
    case CTL_CELL_AGE:
        return ctl_age_text(json_node_get_int(node));
    case CTL_CELL_SIZE:
        return ctl_size_text(json_node_get_int(node));
    case CTL_CELL_CPU:
        secs = json_node_get_double(node);
        return secs < 60 ? g_strdup_printf("%.2fs", secs) : ctl_age_text((gint64)secs);
    case CTL_CELL_RATE:
        return g_strdup_printf("%.1f", json_node_get_double(node));
    case CTL_CELL_THROTTLE:
        if (json_object_get_boolean_member_with_default(row, "throttled", FALSE)) {
            char *until = ctl_time_text(row, "throttled_until");
            char *text = g_strdup_printf("until %s", until);

            g_free(until);
            return text;
        }
        return g_strdup("no");
    }
    return g_strdup("?");
}

/* The columns -o names, in its order; all of them without -o. */
static GArray *select_columns(const ctl_column *columns, size_t count, const char *selection)
{
    GArray *picked = g_array_new(FALSE, FALSE, sizeof(size_t));
    char **names;

    if (selection == NULL) {
        for (size_t i = 0; i < count; i++)
            g_array_append_val(picked, i);
        return picked;
    }
    names = g_strsplit(selection, ",", -1);
    for (char **name = names; *name != NULL; name++) {
        size_t i;

        g_strstrip(*name);
        for (i = 0; i < count && g_ascii_strcasecmp(*name, columns[i].name) != 0; i++)
            ;
        if (i == count) {
            GString *known = g_string_new(NULL);

            for (size_t k = 0; k < count; k++)
                g_string_append_printf(known, "%s%s", k > 0 ? "," : "", columns[k].name);
            ctl_die(CTL_EXIT_USAGE, "usage", "-o: unknown column '%s' (here: %s)", *name,
                    known->str);
        }
        g_array_append_val(picked, i);
    }
    g_strfreev(names);
    if (picked->len == 0)
        ctl_die(CTL_EXIT_USAGE, "usage", "-o needs at least one column");
    return picked;
}

static gsize total_width(const gsize *widths, const bool *shown, size_t count)
{
    gsize total = 0, visible = 0;

    for (size_t i = 0; i < count; i++) {
        if (shown[i]) {
            total += widths[i];
            visible++;
        }
    }
    return total + (visible > 1 ? (visible - 1) * COLUMN_GAP : 0);
}

void ctl_table_print(const ctl_column *columns, size_t count, JsonArray *rows,
                     const char *selection, bool headers, int width)
{
    GArray *picked = select_columns(columns, count, selection);
    guint row_count = rows != NULL ? json_array_get_length(rows) : 0;
    size_t n = picked->len;
    char **cells = g_new0(char *, n * (row_count + 1));
    gsize *widths = g_new0(gsize, n);
    bool *shown = g_new(bool, n);
    size_t last = n - 1;

    for (size_t c = 0; c < n; c++) {
        const ctl_column *column = &columns[g_array_index(picked, size_t, c)];

        cells[c] = g_strdup(column->name);
        for (guint r = 0; r < row_count; r++)
            cells[(r + 1) * n + c] = cell_text(column, json_array_get_object_element(rows, r));
        for (guint r = headers ? 0 : 1; r <= row_count; r++)
            widths[c] = MAX(widths[c], (gsize)g_utf8_strlen(cells[r * n + c], -1));
        shown[c] = true;
    }
    /* Drop the least wanted columns, rightmost first among equals. */
    while (width > 0 && selection == NULL && total_width(widths, shown, n) > (gsize)width) {
        size_t victim = n;

        for (size_t c = 0; c < n; c++) {
            int keep = columns[g_array_index(picked, size_t, c)].keep;

            if (shown[c] && keep > 0 &&
                (victim == n || keep <= columns[g_array_index(picked, size_t, victim)].keep))
                victim = c;
        }
        if (victim == n)
            break;
        shown[victim] = false;
    }
    while (last > 0 && !shown[last])
        last--;
    /* Still too wide: a text column at the end is cut short. */
    if (width > 0 && total_width(widths, shown, n) > (gsize)width &&
        columns[g_array_index(picked, size_t, last)].kind == CTL_CELL_TEXT) {
        gsize others = total_width(widths, shown, n) - widths[last];
        gsize room = (gsize)width > others ? (gsize)width - others : 0;

        widths[last] = MAX(room, (gsize)MIN_CUT_WIDTH);
        for (guint r = 0; r <= row_count; r++) {
            char *fitted = ctl_fit_line(cells[r * n + last], (int)widths[last]);

            g_free(cells[r * n + last]);
            cells[r * n + last] = fitted;
        }
    }
    for (guint r = headers ? 0 : 1; r <= row_count; r++) {
        GString *line = g_string_new(NULL);

        for (size_t c = 0; c <= last; c++) {
            const char *cell = cells[r * n + c];

            if (!shown[c])
                continue;
            g_string_append(line, cell);
            if (c != last) {
                for (gsize pad = (gsize)g_utf8_strlen(cell, -1); pad < widths[c] + COLUMN_GAP;
                     pad++)
                    g_string_append_c(line, ' ');
            }
        }
        puts(line->str);
        g_string_free(line, TRUE);
    }
    for (size_t i = 0; i < n * (row_count + 1); i++)
        g_free(cells[i]);
    g_free(cells);
    g_free(widths);
    g_free(shown);
    g_array_unref(picked);
}
