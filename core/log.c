/* SPDX-License-Identifier: MIT */
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static bool log_to_journal;
static bool log_debug_enabled;

static const char *const level_names[] = {
    [CORRAL_LEVEL_DEBUG] = "Debug",
    [CORRAL_LEVEL_INFO] = "Info",
    [CORRAL_LEVEL_WARNING] = "Warning",
    [CORRAL_LEVEL_ERROR] = "Error",
    [CORRAL_LEVEL_FATAL] = "Fatal",
};

/* syslog(3) priorities, as journald expects them in "<N>" prefixes. */
static const int level_priorities[] = {
    [CORRAL_LEVEL_DEBUG] = 7,
    [CORRAL_LEVEL_INFO] = 6,
    [CORRAL_LEVEL_WARNING] = 4,
    [CORRAL_LEVEL_ERROR] = 3,
    [CORRAL_LEVEL_FATAL] = 2,
};

static bool stderr_is_journal(void)
{
    const char *stream = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;

    if (stream == NULL || sscanf(stream, "%llu:%llu", &dev, &ino) != 2)
        return false;
    if (fstat(STDERR_FILENO, &st) < 0)
        return false;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void corral_log_init(void)
{
    const char *debug = getenv("CORRAL_DEBUG");

    log_to_journal = stderr_is_journal();
    log_debug_enabled = debug != NULL && *debug != '\0' && strcmp(debug, "0") != 0;
}

void corral_log_set_debug(bool enabled)
{
    log_debug_enabled = enabled;
}

void corral_logv(corral_level level, const char *fmt, va_list args)
{
    char text[4096];
    char stamp[32];
    struct timeval now;
    struct tm tm;

    if (level == CORRAL_LEVEL_DEBUG && !log_debug_enabled)
        return;
    vsnprintf(text, sizeof(text), fmt, args);

    /* One fprintf per line keeps lines whole when children share stderr. */
    if (log_to_journal) {
        fprintf(stderr, "<%d>%s: %s\n", level_priorities[level], level_names[level], text);
        return;
    }
    gettimeofday(&now, NULL);
    localtime_r(&now.tv_sec, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
    fprintf(stderr, "%s.%03ld %s: %s\n", stamp, (long)(now.tv_usec / 1000), level_names[level], text);
}

void corral_log(corral_level level, const char *fmt, ...)
{
    va_list args;

    va_start(args, fmt);
    corral_logv(level, fmt, args);
    va_end(args);
}
