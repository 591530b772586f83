/* SPDX-License-Identifier: MIT */
/*
 * log.h - the master's own log.
 *
 * Lines go to stderr as "YYYY-MM-DD HH:MM:SS.mmm Level: text".  When
 * stderr is connected to journald (JOURNAL_STREAM names it), timestamps are
 * left to the journal and each line carries a "<N>" priority prefix, which
 * journald's stream protocol turns into the entry's priority.
 *
 * With [corral] log_path the same timestamped lines are appended to that
 * file instead.  SIGUSR1 reopens it, so that logrotate can move the file
 * away and corrald carries on in a new one.
 */
#ifndef CORRAL_LOG_H
#define CORRAL_LOG_H

#include <glib.h>
#include <stdarg.h>
#include <stdbool.h>

typedef enum {
    CORRAL_LEVEL_DEBUG,
    CORRAL_LEVEL_INFO,
    CORRAL_LEVEL_WARNING,
    CORRAL_LEVEL_ERROR,
    CORRAL_LEVEL_FATAL,
} corral_level;

/* Detects journald and reads CORRAL_DEBUG; call once at start. */
void corral_log_init(void);
void corral_log_set_debug(bool enabled);

/* Appends the log to `path` from now on (created with mode 0640 if
 * missing).  Returns false, leaving the log where it was, when the file
 * cannot be opened; the error names the path. */
bool corral_log_open_file(const char *path, GError **error);
/* Opens the log file's path anew and logs that it did (SIGUSR1).  Keeps
 * the old file, with an error logged to it, if the path cannot be opened.
 * Without a log file it only logs that there is nothing to reopen. */
void corral_log_reopen(void);
/* Goes back to stderr and closes the log file. */
void corral_log_close_file(void);

void corral_logv(corral_level level, const char *fmt, va_list args)
    __attribute__((format(printf, 2, 0)));
void corral_log(corral_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_debug(...) corral_log(CORRAL_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(...) corral_log(CORRAL_LEVEL_INFO, __VA_ARGS__)
#define log_warning(...) corral_log(CORRAL_LEVEL_WARNING, __VA_ARGS__)
#define log_error(...) corral_log(CORRAL_LEVEL_ERROR, __VA_ARGS__)

#endif
