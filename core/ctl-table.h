/* SPDX-License-Identifier: MIT */
/*
 * ctl-table.h - corralctl's tables: columns picked from JSON objects, fitted
 * to the terminal.
 *
 * A table shows every column it knows, minus those that do not fit: when
 * the output has a width (COLUMNS, else the terminal's), the columns with
 * the lowest `keep` go first, and if the rest is still too wide a text
 * column at the end is cut short with an ellipsis.  `-o NAME,...` picks
 * columns and their order instead, and then none is dropped.
 */
#ifndef CORRAL_CTL_TABLE_H
#define CORRAL_CTL_TABLE_H

#include <glib.h>
#include <json-glib/json-glib.h>
#include <stdbool.h>

typedef enum {
    CTL_CELL_TEXT,
    CTL_CELL_INT,
    CTL_CELL_BOOL,      /* yes / no */
    CTL_CELL_TIME,      /* unix seconds as local time; "-" for null */
    CTL_CELL_AGE,       /* seconds as "3m12s" */
    CTL_CELL_SIZE,      /* bytes as "12.4M" */
    CTL_CELL_CPU,       /* seconds (double) as "0.42s" or "3m07s" */
    CTL_CELL_RATE,      /* a double with one decimal; "-" when absent */
    CTL_CELL_THROTTLE,  /* "until 14:03:22" from throttled and throttled_until */
} ctl_cell_kind;

typedef struct ctl_column {
    const char *name;   /* the header, and the name -o takes */
    const char *member; /* the JSON field it shows */
    ctl_cell_kind kind;
    int keep;           /* when too narrow, the lowest go first; 0: never dropped */
} ctl_column;

/* The width to fit: COLUMNS if set, else the terminal's when stdout is
 * one, else 0 (no limit). */
int ctl_output_width(void);

/* Prints `rows` (objects).  `selection` is -o's argument or NULL; an
 * unknown name there ends corralctl with a usage error naming the known
 * ones.  `width` 0 means no limit. */
void ctl_table_print(const ctl_column *columns, size_t count, JsonArray *rows,
                     const char *selection, bool headers, int width);

/* `line` cut to `width` characters with an ellipsis ("…" in a UTF-8
 * locale, "..." otherwise); a copy when it fits or `width` is 0. */
char *ctl_fit_line(const char *line, int width);

/* corralctl status's first line, from the answer's "corrald" object:
 * "corrald 1.0 pid 42 up 3h02m, FILE, last reload ok at 12:00:01" (or
 * "FAILED at ...: WHY", or "none").  NULL without that object. */
char *ctl_daemon_line(JsonObject *answer);

char *ctl_age_text(gint64 secs);
char *ctl_time_text(JsonObject *object, const char *member);
char *ctl_size_text(gint64 bytes);

#endif
