/* SPDX-License-Identifier: MIT */
/*
 * log.h - the master's own log.
 *
 * Lines go to stderr as "YYYY-MM-DD HH:MM:SS.mmm Level: text".  When
 * stderr is connected to journald (JOURNAL_STREAM names it), timestamps are
 * left to the journal and each line carries a "<N>" priority prefix, which
 * journald's stream protocol turns into the entry's priority.
 */
#ifndef CORRAL_LOG_H
#define CORRAL_LOG_H

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

void corral_logv(corral_level level, const char *fmt, va_list args)
    __attribute__((format(printf, 2, 0)));
void corral_log(corral_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_debug(...) corral_log(CORRAL_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(...) corral_log(CORRAL_LEVEL_INFO, __VA_ARGS__)
#define log_warning(...) corral_log(CORRAL_LEVEL_WARNING, __VA_ARGS__)
#define log_error(...) corral_log(CORRAL_LEVEL_ERROR, __VA_ARGS__)

#endif
