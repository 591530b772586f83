/* SPDX-License-Identifier: MIT */
#include "child-log.h"

#include <errno.h>
#include <glib-unix.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A longer line is cut here, marked, and the rest of it dropped: the log
 * itself takes lines of up to 4 KiB with their prefixes. */
#define CHILD_LOG_LINE_MAX 3072
/* Each service's workers may have this much logged per second; beyond
 * it lines are counted, and the count is logged once the second is over. */
#define CHILD_LOG_LINES_PER_SEC 1000
#define CHILD_LOG_BYTES_PER_SEC (256 * 1024)

/* Type byte values (log type + 1) and flag bits of the internal format. */
#define TYPE_MASK 0x3f
#define FLAG_PREFIX_LENGTH 0x40
#define TYPE_OPTION 0x08

struct corral_child_log {
    char *service_name;
    int fd;
    guint watch;
    GString *pending;
    bool dropping;        /* the rest of a cut line is being skipped */
    uint64_t cut_bytes;   /* how much of it was dropped */
    gint64 second;        /* the budget's current second */
    unsigned lines;       /* logged in it */
    size_t bytes;
    uint64_t suppressed_lines;
    uint64_t suppressed_bytes;
    corral_level raw_level;
};

static corral_level level_from_type(unsigned type)
{
    switch (type) {
    case 0x01: return CORRAL_LEVEL_DEBUG;
    case 0x02: return CORRAL_LEVEL_INFO;
    case 0x03: return CORRAL_LEVEL_WARNING;
    case 0x04: return CORRAL_LEVEL_ERROR;
    default: return CORRAL_LEVEL_FATAL; /* fatal and panic */
    }
}

void corral_child_log_parse(const char *line, corral_child_log_line *parsed)
{
    const unsigned char *p = (const unsigned char *)line;
    unsigned type;
    char *end;
    long pid;

    parsed->level = CORRAL_LEVEL_ERROR;
    parsed->pid = 0;
    parsed->option = false;
    parsed->text = line;

    if (p[0] != 0x01 || p[1] == '\0')
        return;
    type = p[1] & TYPE_MASK;
    if (type < 0x01 || (type > 0x06 && type != TYPE_OPTION))
        return;
    errno = 0;
    pid = strtol(line + 2, &end, 10);
    if (end == line + 2 || *end != ' ' || pid <= 0 || pid > INT_MAX || errno != 0)
        return;
    end++;
    if (p[1] & FLAG_PREFIX_LENGTH) {
        /* "<n> " announces a prefix length we do not need. */
        char *after_length;
        (void)strtoul(end, &after_length, 10);
        if (after_length != end && *after_length == ' ')
            end = after_length + 1;
    }
    parsed->pid = (pid_t)pid;
    parsed->option = type == TYPE_OPTION;
    parsed->level = parsed->option ? CORRAL_LEVEL_DEBUG : level_from_type(type);
    parsed->text = end;
}

/* Control characters (and every byte of text that is not UTF-8) are
 * written as \xNN, so that a worker cannot move the cursor, ring the
 * bell or fake a line of a terminal or a log viewer. */
char *corral_child_log_escape(const char *text)
{
    bool utf8 = g_utf8_validate(text, -1, NULL);
    GString *out = g_string_sized_new(strlen(text));

    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
        if (*p < 0x20 || *p == 0x7f || (*p >= 0x80 && !utf8) || *p == '\\')
            g_string_append_printf(out, *p == '\\' ? "\\\\" : "\\x%02x", *p);
        else
            g_string_append_c(out, (char)*p);
    }
    return g_string_free(out, FALSE);
}

/* Tells what the budget held back in a second that is over. */
static void report_suppressed(corral_child_log *log)
{
    if (log->suppressed_lines == 0)
        return;
    corral_log(CORRAL_LEVEL_WARNING,
               "%s: %" G_GUINT64_FORMAT " lines (%" G_GUINT64_FORMAT " bytes) of worker "
               "output suppressed: more than %u lines or %u bytes a second",
               log->service_name, log->suppressed_lines, log->suppressed_bytes,
               CHILD_LOG_LINES_PER_SEC, CHILD_LOG_BYTES_PER_SEC);
    log->suppressed_lines = 0;
    log->suppressed_bytes = 0;
}

static bool within_budget(corral_child_log *log, size_t len)
{
    gint64 second = g_get_monotonic_time() / G_USEC_PER_SEC;

    if (second != log->second) {
        report_suppressed(log);
        log->second = second;
        log->lines = 0;
        log->bytes = 0;
    }
    if (log->lines >= CHILD_LOG_LINES_PER_SEC || log->bytes + len > CHILD_LOG_BYTES_PER_SEC) {
        log->suppressed_lines++;
        log->suppressed_bytes += len;
        return false;
    }
    log->lines++;
    log->bytes += len;
    return true;
}

static void log_line(corral_child_log *log, const char *line, uint64_t cut_bytes)
{
    corral_child_log_line parsed;
    char *text;

    corral_child_log_parse(line, &parsed);
    if (parsed.option || !within_budget(log, strlen(line)))
        return;
    corral_log_about about = { log->service_name, NULL, (int)parsed.pid };

    text = corral_child_log_escape(parsed.text);
    if (parsed.pid != 0)
        corral_log_about_line(parsed.level, &about, "%s(%d): %s%s", log->service_name,
                              (int)parsed.pid, text, cut_bytes > 0 ? " [line cut]" : "");
    else
        corral_log_about_line(log->raw_level, &about, "%s: %s%s", log->service_name, text,
                              cut_bytes > 0 ? " [line cut]" : "");
    g_free(text);
}

static void flush_lines(corral_child_log *log)
{
    char *start = log->pending->str;
    char *end = log->pending->str + log->pending->len;
    char *newline;

    while ((newline = memchr(start, '\n', (gsize)(end - start))) != NULL) {
        *newline = '\0';
        if (log->dropping) {
            /* The end of a line already logged in part. */
            log->dropping = false;
            log->cut_bytes = 0;
        } else {
            log_line(log, start, 0);
        }
        start = newline + 1;
    }
    g_string_erase(log->pending, 0, start - log->pending->str);
    if (log->dropping) {
        log->cut_bytes += log->pending->len;
        g_string_truncate(log->pending, 0);
    } else if (log->pending->len >= CHILD_LOG_LINE_MAX) {
        /* Cut the line, mark it, and skip the rest up to its newline. */
        log->cut_bytes = log->pending->len - CHILD_LOG_LINE_MAX;
        g_string_truncate(log->pending, CHILD_LOG_LINE_MAX);
        log_line(log, log->pending->str, log->cut_bytes + 1);
        g_string_truncate(log->pending, 0);
        log->dropping = true;
    }
}

static gboolean on_child_log_readable(int fd, GIOCondition condition, gpointer data)
{
    corral_child_log *log = data;
    char buf[4096];
    ssize_t len = read(fd, buf, sizeof(buf));

    if (len > 0) {
        g_string_append_len(log->pending, buf, len);
        flush_lines(log);
        return G_SOURCE_CONTINUE;
    }
    if (len < 0 && (errno == EAGAIN || errno == EINTR))
        return G_SOURCE_CONTINUE;
    log->watch = 0;
    return G_SOURCE_REMOVE;
}

corral_child_log *corral_child_log_new(int fd, const char *service_name)
{
    corral_child_log *log = g_new0(corral_child_log, 1);

    log->service_name = g_strdup(service_name);
    log->fd = fd;
    log->pending = g_string_new(NULL);
    log->raw_level = CORRAL_LEVEL_ERROR;
    log->watch = g_unix_fd_add(fd, G_IO_IN | G_IO_HUP | G_IO_ERR, on_child_log_readable, log);
    return log;
}

void corral_child_log_set_raw_level(corral_child_log *log, corral_level level)
{
    log->raw_level = level;
}

void corral_child_log_free(corral_child_log *log)
{
    if (log == NULL)
        return;
    if (log->watch != 0)
        g_source_remove(log->watch);
    /* Take what the last workers wrote before going. */
    while (log->fd >= 0) {
        char buf[4096];
        ssize_t len = read(log->fd, buf, sizeof(buf));
        if (len <= 0)
            break;
        g_string_append_len(log->pending, buf, len);
        flush_lines(log);
    }
    if (log->pending->len > 0 && !log->dropping)
        log_line(log, log->pending->str, 0);
    report_suppressed(log);
    close(log->fd);
    g_string_free(log->pending, TRUE);
    g_free(log->service_name);
    g_free(log);
}
