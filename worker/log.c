/* SPDX-License-Identifier: MIT */
/*
 * log.c - log lines on stderr.
 *
 * Under a master with LOG_SERVICE=1, stderr is one pipe shared by every
 * process of the service, read by the log service.  Each line there is
 * "\x01", a level byte, the decimal pid, a space, the text and "\n", and it
 * has to reach the pipe in one write() shorter than PIPE_BUF, or lines of
 * different processes could interleave.  Long messages are therefore cut
 * into several lines rather than truncated.
 */
#include "worker-private.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Room for the longest header: plain "PREFIX: Warning: " or "\x01\x03PID ". */
#define CW_LOG_PREFIX_MAX 128
#define CW_LOG_HEADER_MAX (CW_LOG_PREFIX_MAX + 16)

static char log_prefix[CW_LOG_PREFIX_MAX];
static bool log_to_service;

static const char *const level_names[] = {
    [CW_LOG_INFO] = "Info",
    [CW_LOG_WARNING] = "Warning",
    [CW_LOG_ERROR] = "Error",
    [CW_LOG_FATAL] = "Fatal",
};

/* The log service's type byte is its level number plus one. */
static const char level_bytes[] = {
    [CW_LOG_INFO] = '\x02',
    [CW_LOG_WARNING] = '\x03',
    [CW_LOG_ERROR] = '\x04',
    [CW_LOG_FATAL] = '\x05',
};

void cw_log_setup(const char *prefix, bool log_service)
{
    snprintf(log_prefix, sizeof(log_prefix), "%s", prefix != NULL ? prefix : "");
    log_to_service = log_service;
}

static void write_all(const char *data, size_t length)
{
    while (length > 0) {
        ssize_t written = write(STDERR_FILENO, data, length);

        if (written < 0 && errno == EINTR)
            continue;
        if (written <= 0)
            return; /* nowhere left to report it */
        data += written;
        length -= (size_t)written;
    }
}

static int format_header(char *header, enum cw_log_level level)
{
    if (log_to_service)
        return snprintf(header, CW_LOG_HEADER_MAX, "\x01%c%ld ", level_bytes[level],
                        (long)getpid());
    if (log_prefix[0] == '\0')
        return snprintf(header, CW_LOG_HEADER_MAX, "%s: ", level_names[level]);
    return snprintf(header, CW_LOG_HEADER_MAX, "%s: %s: ", log_prefix, level_names[level]);
}

/* Writes `text` as lines of at most PIPE_BUF-1 bytes, each with `header`. */
static void write_lines(const char *header, size_t header_length, const char *text)
{
    char line[PIPE_BUF];
    size_t room = sizeof(line) - header_length - 1; /* the "\n" */

    memcpy(line, header, header_length);
    do {
        size_t length = strcspn(text, "\n");

        if (length > room)
            length = room;
        memcpy(line + header_length, text, length);
        line[header_length + length] = '\n';
        write_all(line, header_length + length + 1);
        text += length;
        if (*text == '\n')
            text++;
    } while (*text != '\0');
}

void cw_logv(enum cw_log_level level, const char *fmt, va_list args)
{
    int saved_errno = errno;
    char header[CW_LOG_HEADER_MAX];
    int header_length = format_header(header, level);
    char *text = NULL;

    /* errno is back in place for a %m in fmt. */
    errno = saved_errno;
    if (vasprintf(&text, fmt, args) < 0)
        text = NULL;
    write_lines(header, (size_t)header_length, text != NULL ? text : fmt);
    free(text);
    errno = saved_errno;
}

void corral_worker_log_info(const char *fmt, ...)
{
    va_list args;

    va_start(args, fmt);
    cw_logv(CW_LOG_INFO, fmt, args);
    va_end(args);
}

void corral_worker_log_warning(const char *fmt, ...)
{
    va_list args;

    va_start(args, fmt);
    cw_logv(CW_LOG_WARNING, fmt, args);
    va_end(args);
}

void corral_worker_log_error(const char *fmt, ...)
{
    va_list args;

    va_start(args, fmt);
    cw_logv(CW_LOG_ERROR, fmt, args);
    va_end(args);
}

void corral_worker_fatal(const char *fmt, ...)
{
    va_list args;

    va_start(args, fmt);
    cw_logv(CW_LOG_FATAL, fmt, args);
    va_end(args);
    exit(CORRAL_WORKER_EXIT_FATAL);
}
