/* SPDX-License-Identifier: MIT */
#include "trace.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

#define USEC_PER_SEC 1e6
/* Beyond this a number of seconds no longer fits a microsecond count. */
#define SECONDS_MAX 1e9

/* One non-negative number of seconds, as microseconds; `*text` moves past
 * it.  g_ascii_strtod reads '.' whatever the locale. */
static bool read_seconds(char **text, uint64_t *usec)
{
    char *end;
    double seconds = g_ascii_strtod(*text, &end);

    if (end == *text || !isfinite(seconds) || seconds < 0 || seconds > SECONDS_MAX)
        return false;
    *usec = (uint64_t)llround(seconds * USEC_PER_SEC);
    *text = end;
    return true;
}

static bool parse_line(char *line, sim_trace_entry *entry, bool *empty)
{
    char *comment = strchr(line, '#');

    if (comment != NULL)
        *comment = '\0';
    g_strstrip(line);
    *empty = *line == '\0';
    if (*empty)
        return true;
    if (!read_seconds(&line, &entry->arrival_usec) || !read_seconds(&line, &entry->duration_usec))
        return false;
    return *g_strchug(line) == '\0';
}

/* By arrival, then by duration, so that the order never depends on the
 * sort: entries equal in both are interchangeable. */
static int by_arrival(gconstpointer a, gconstpointer b)
{
    const sim_trace_entry *x = a, *y = b;

    if (x->arrival_usec != y->arrival_usec)
        return x->arrival_usec < y->arrival_usec ? -1 : 1;
    return x->duration_usec < y->duration_usec ? -1 : x->duration_usec > y->duration_usec;
}

sim_trace *sim_trace_load(const char *path, GError **error)
{
    char *text = NULL;
    char **lines;
    sim_trace *trace;

    if (!g_file_get_contents(path, &text, NULL, error))
        return NULL;
    trace = g_new0(sim_trace, 1);
    trace->path = g_strdup(path);
    trace->entries = g_array_new(FALSE, FALSE, sizeof(sim_trace_entry));
    lines = g_strsplit(text, "\n", -1);
    g_free(text);

    for (guint i = 0; lines[i] != NULL; i++) {
        sim_trace_entry entry;
        bool empty;

        if (!parse_line(lines[i], &entry, &empty)) {
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                        "%s:%u: expected '<arrival seconds> <duration seconds>'", path, i + 1);
            g_strfreev(lines);
            sim_trace_free(trace);
            return NULL;
        }
        if (empty)
            continue;
        g_array_append_val(trace->entries, entry);
        if (entry.arrival_usec + entry.duration_usec > trace->last_finish_usec)
            trace->last_finish_usec = entry.arrival_usec + entry.duration_usec;
    }
    g_strfreev(lines);
    g_array_sort(trace->entries, by_arrival);
    return trace;
}

void sim_trace_free(sim_trace *trace)
{
    if (trace == NULL)
        return;
    g_array_unref(trace->entries);
    g_free(trace->path);
    g_free(trace);
}
