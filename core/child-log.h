/* SPDX-License-Identifier: MIT */
/*
 * child-log.h - what workers write to stderr.
 *
 * Each service's processes share one pipe at their fd 2.  Lines in
 * Dovecot's internal format ("\x01", a type byte, the decimal pid, a space,
 * the text) are logged at their own level with the pid; any other line is
 * logged raw, at the service's stderr_level (info unless set; Dovecot's
 * log process uses error level).
 *
 * What a worker writes is hostile input: control characters are escaped
 * (corral_child_log_escape), a line longer than 3 KiB is cut and marked
 * "[line cut]", and a service's workers get at most 1,000 lines or
 * 256 KiB logged a second, with a count of the rest logged after it.
 */
#ifndef CORRAL_CHILD_LOG_H
#define CORRAL_CHILD_LOG_H

#include <glib.h>
#include <stdbool.h>
#include <sys/types.h>

#include "log.h"

typedef struct corral_child_log_line {
    corral_level level;
    pid_t pid;          /* 0 for a raw line */
    bool option;        /* a "prefix=" or "ip=" option line: not for the log */
    const char *text;   /* points into the parsed line */
} corral_child_log_line;

/* Parses one line without its newline.  Never fails: anything that is not
 * a well-formed internal line comes back as a raw error line. */
void corral_child_log_parse(const char *line, corral_child_log_line *parsed);

/* `text` with control characters, backslashes and (in text that is not
 * valid UTF-8) bytes above 0x7f written as "\xNN" ("\\" for a backslash);
 * g_free() it. */
char *corral_child_log_escape(const char *text);

typedef struct corral_child_log corral_child_log;

/* Starts logging what arrives on `fd` (owned and closed by the reader),
 * prefixed with `service_name`. */
corral_child_log *corral_child_log_new(int fd, const char *service_name);
/* The level of raw lines from now on; error level until set. */
void corral_child_log_set_raw_level(corral_child_log *log, corral_level level);
/* Logs any unterminated last line and frees. */
void corral_child_log_free(corral_child_log *log);

#endif
