/* SPDX-License-Identifier: MIT */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static bool log_to_journal;
static bool log_debug_forced;
static corral_level log_min_level = CORRAL_LEVEL_INFO;
/* The [corral] log_path file while one is in use, else -1 (stderr). */
static int log_file_fd = -1;
static char *log_file_path;

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

static const char *const level_keys[] = {
    [CORRAL_LEVEL_DEBUG] = "debug",
    [CORRAL_LEVEL_INFO] = "info",
    [CORRAL_LEVEL_WARNING] = "warning",
    [CORRAL_LEVEL_ERROR] = "error",
};

/* GLib's levels, which its journald writer is given along the fields. */
static const GLogLevelFlags level_flags[] = {
    [CORRAL_LEVEL_DEBUG] = G_LOG_LEVEL_DEBUG,
    [CORRAL_LEVEL_INFO] = G_LOG_LEVEL_INFO,
    [CORRAL_LEVEL_WARNING] = G_LOG_LEVEL_WARNING,
    [CORRAL_LEVEL_ERROR] = G_LOG_LEVEL_CRITICAL,
    [CORRAL_LEVEL_FATAL] = G_LOG_LEVEL_ERROR,
};

/* systemd's documented way of saying that stderr is the journal:
 * JOURNAL_STREAM holds stderr's device and inode. */
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
    log_debug_forced = debug != NULL && *debug != '\0' && strcmp(debug, "0") != 0;
}

void corral_log_set_debug(bool enabled)
{
    log_debug_forced = enabled;
}

bool corral_log_set_level(corral_level level)
{
    bool changed = level != log_min_level;

    log_min_level = MIN(level, CORRAL_LEVEL_ERROR);
    return changed;
}

bool corral_log_level_from_name(const char *name, corral_level *level)
{
    for (size_t i = 0; i < G_N_ELEMENTS(level_keys); i++) {
        if (g_ascii_strcasecmp(name, level_keys[i]) == 0) {
            *level = (corral_level)i;
            return true;
        }
    }
    return false;
}

const char *corral_log_level_name(corral_level level)
{
    return level < G_N_ELEMENTS(level_keys) ? level_keys[level] : "error";
}

static int open_log_file(const char *path, GError **error)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);

    if (fd < 0)
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
                    "cannot open the log file %s: %s", path, g_strerror(errno));
    return fd;
}

bool corral_log_open_file(const char *path, GError **error)
{
    int fd = open_log_file(path, error);

    if (fd < 0)
        return false;
    corral_log_close_file();
    log_file_fd = fd;
    log_file_path = g_strdup(path);
    return true;
}

void corral_log_reopen(void)
{
    GError *error = NULL;
    int fd;

    if (log_file_fd < 0) {
        corral_log(CORRAL_LEVEL_INFO, "SIGUSR1 received - logging to stderr, nothing to reopen");
        return;
    }
    fd = open_log_file(log_file_path, &error);
    if (fd < 0) {
        corral_log(CORRAL_LEVEL_ERROR, "SIGUSR1 received - %s; still logging to the old file",
                   error->message);
        g_error_free(error);
        return;
    }
    close(log_file_fd);
    log_file_fd = fd;
    corral_log(CORRAL_LEVEL_INFO, "SIGUSR1 received - reopened the log file %s", log_file_path);
}

void corral_log_close_file(void)
{
    if (log_file_fd >= 0)
        close(log_file_fd);
    log_file_fd = -1;
    g_clear_pointer(&log_file_path, g_free);
}

/* One write() per line keeps lines whole when other processes append to
 * the same file or share stderr. */
static void write_line(const char *line, size_t len)
{
    int fd = log_file_fd >= 0 ? log_file_fd : STDERR_FILENO;

    while (len > 0) {
        ssize_t written = write(fd, line, len);

        if (written < 0 && errno == EINTR)
            continue;
        if (written <= 0)
            return;
        line += written;
        len -= (size_t)written;
    }
}

/* One structured entry for journald; false if the journal did not take it. */
static bool send_to_journal(corral_level level, const corral_log_about *about, const char *text)
{
    char priority[4], pid[16];
    GLogField fields[6];
    gsize count = 0;

    g_snprintf(priority, sizeof(priority), "%d", level_priorities[level]);
    fields[count++] = (GLogField){ "MESSAGE", text, -1 };
    fields[count++] = (GLogField){ "PRIORITY", priority, -1 };
    fields[count++] = (GLogField){ "SYSLOG_IDENTIFIER", "corrald", -1 };
    if (about != NULL && about->service != NULL)
        fields[count++] = (GLogField){ "SERVICE", about->service, -1 };
    if (about != NULL && about->policy != NULL)
        fields[count++] = (GLogField){ "POLICY", about->policy, -1 };
    if (about != NULL && about->pid > 0) {
        g_snprintf(pid, sizeof(pid), "%d", about->pid);
        fields[count++] = (GLogField){ "PID", pid, -1 };
    }
    return g_log_writer_journald(level_flags[level], fields, count, NULL) ==
           G_LOG_WRITER_HANDLED;
}

void corral_log_aboutv(corral_level level, const corral_log_about *about, const char *fmt,
                       va_list args)
{
    char text[4096];
    char stamp[32], zone[8];
    char line[4200];
    struct timeval now;
    struct tm tm;
    int len;

    if (level < log_min_level && !(log_debug_forced && level == CORRAL_LEVEL_DEBUG))
        return;
    vsnprintf(text, sizeof(text), fmt, args);

    if (log_to_journal && log_file_fd < 0) {
        if (send_to_journal(level, about, text))
            return;
        len = snprintf(line, sizeof(line), "<%d>%s: %s\n", level_priorities[level],
                       level_names[level], text);
    } else {
        gettimeofday(&now, NULL);
        localtime_r(&now.tv_sec, &tm);
        strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
        strftime(zone, sizeof(zone), "%z", &tm);
        len = snprintf(line, sizeof(line), "%s.%03ld %s %s: %s\n", stamp,
                       (long)(now.tv_usec / 1000), zone, level_names[level], text);
    }
    if (len < 0)
        return;
    if ((size_t)len >= sizeof(line)) {
        len = sizeof(line) - 1;
        line[len - 1] = '\n';
    }
    write_line(line, (size_t)len);
}

void corral_log_about_line(corral_level level, const corral_log_about *about,
                           const char *fmt, ...)
{
    va_list args;

    va_start(args, fmt);
    corral_log_aboutv(level, about, fmt, args);
    va_end(args);
}

void corral_logv(corral_level level, const char *fmt, va_list args)
{
    corral_log_aboutv(level, NULL, fmt, args);
}

void corral_log(corral_level level, const char *fmt, ...)
{
    va_list args;

    va_start(args, fmt);
    corral_logv(level, fmt, args);
    va_end(args);
}
