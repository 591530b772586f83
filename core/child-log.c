/* SPDX-License-Identifier: MIT */
#include "child-log.h"

#include <errno.h>
#include <glib-unix.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Longer lines are logged in pieces rather than buffered without bound. */
#define CHILD_LOG_LINE_MAX 8192

/* Type byte values (log type + 1) and flag bits of the internal format. */
#define TYPE_MASK 0x3f
#define FLAG_PREFIX_LENGTH 0x40
#define TYPE_OPTION 0x08

struct corral_child_log {
    char *service_name;
    int fd;
    guint watch;
    GString *pending;
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

static void log_line(const corral_child_log *log, const char *line)
{
    corral_child_log_line parsed;

    corral_child_log_parse(line, &parsed);
    if (parsed.option)
        return;
    corral_log_about about = { log->service_name, NULL, (int)parsed.pid };

    if (parsed.pid != 0)
        corral_log_about_line(parsed.level, &about, "%s(%d): %s", log->service_name,
                              (int)parsed.pid, parsed.text);
    else
        corral_log_about_line(log->raw_level, &about, "%s: %s", log->service_name, parsed.text);
}

static void flush_lines(corral_child_log *log)
{
    char *start = log->pending->str;
    char *newline;

    while ((newline = memchr(start, '\n', log->pending->len - (gsize)(start - log->pending->str))) != NULL) {
        *newline = '\0';
        log_line(log, start);
        start = newline + 1;
    }
    g_string_erase(log->pending, 0, start - log->pending->str);
    if (log->pending->len >= CHILD_LOG_LINE_MAX) {
        log_line(log, log->pending->str);
        g_string_truncate(log->pending, 0);
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
    if (log->pending->len > 0)
        log_line(log, log->pending->str);
    close(log->fd);
    g_string_free(log->pending, TRUE);
    g_free(log->service_name);
    g_free(log);
}
