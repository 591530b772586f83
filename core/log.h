/* SPDX-License-Identifier: MIT */
/*
 * log.h - the master's own log.
 *
 * Lines go to stderr as "YYYY-MM-DD HH:MM:SS.mmm +ZZZZ Level: text", the
 * local time with its offset from UTC.  When stderr is connected to
 * journald (JOURNAL_STREAM names it), each line goes to the journal as a
 * structured entry through GLib's journald writer instead: MESSAGE and
 * PRIORITY, SYSLOG_IDENTIFIER=corrald and, for a line about a service or
 * a process, SERVICE, POLICY and PID, so that `journalctl SERVICE=imap`
 * selects them.  Should the journal's socket refuse the entry, the line is
 * written to stderr with a "<N>" priority prefix, which journald's stream
 * protocol understands.
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
/* -d: debug lines whatever log_level says. */
void corral_log_set_debug(bool enabled);
/* [corral] log_level: lines below `level` are dropped (errors never are).
 * Returns whether the level changed. */
bool corral_log_set_level(corral_level level);
/* "debug", "info", "warning", "error"; false for any other name. */
bool corral_log_level_from_name(const char *name, corral_level *level);
const char *corral_log_level_name(corral_level level);

/* Who a line is about, for the journal's fields; any member may be unset
 * (NULL, or 0 for the pid). */
typedef struct corral_log_about {
    const char *service;
    const char *policy;
    int pid;
} corral_log_about;

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
void corral_log_aboutv(corral_level level, const corral_log_about *about, const char *fmt,
                       va_list args) __attribute__((format(printf, 3, 0)));
void corral_log_about_line(corral_level level, const corral_log_about *about,
                           const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define log_debug(...) corral_log(CORRAL_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(...) corral_log(CORRAL_LEVEL_INFO, __VA_ARGS__)
#define log_warning(...) corral_log(CORRAL_LEVEL_WARNING, __VA_ARGS__)
#define log_error(...) corral_log(CORRAL_LEVEL_ERROR, __VA_ARGS__)

#endif
