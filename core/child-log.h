/* SPDX-License-Identifier: MIT */
/*
 * child-log.h - what workers write to stderr.
 *
 * Each service's processes share one pipe at their fd 2.  Lines in
 * Dovecot's internal format ("\x01", a type byte, the decimal pid, a space,
 * the text) are logged at their own level with the pid; any other line is
 * logged raw, at the service's stderr_level (info unless set; Dovecot's
 * log process uses error level).
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

typedef struct corral_child_log corral_child_log;

/* Starts logging what arrives on `fd` (owned and closed by the reader),
 * prefixed with `service_name`. */
corral_child_log *corral_child_log_new(int fd, const char *service_name);
/* The level of raw lines from now on; error level until set. */
void corral_child_log_set_raw_level(corral_child_log *log, corral_level level);
/* Logs any unterminated last line and frees. */
void corral_child_log_free(corral_child_log *log);

#endif
