/* SPDX-License-Identifier: MIT */
#include "proc-usage.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Fields of /proc/PID/stat counted from the one after the command name
 * (field 3, the state, is index 0 here): utime 14, stime 15, rss 24. */
#define STAT_UTIME 11
#define STAT_STIME 12
#define STAT_RSS 21

bool corral_proc_usage_parse_stat(const char *stat, long ticks_per_sec, long page_size,
                                  corral_proc_usage *usage)
{
    const char *p = strrchr(stat, ')');
    unsigned long long utime = 0, stime = 0, rss = 0;

    *usage = (corral_proc_usage){ 0, 0 };
    if (p == NULL || ticks_per_sec <= 0 || page_size <= 0)
        return false;
    p++;
    for (int field = 0; field <= STAT_RSS; field++) {
        char *end;
        unsigned long long value;

        while (*p == ' ')
            p++;
        if (*p == '\0')
            return false;
        errno = 0;
        value = strtoull(p, &end, 10);
        if (end == p) {
            /* The state is a letter; every other field is a number. */
            if (field != 0)
                return false;
            end = (char *)p + strcspn(p, " ");
        } else if (errno != 0) {
            return false;
        }
        if (field == STAT_UTIME)
            utime = value;
        else if (field == STAT_STIME)
            stime = value;
        else if (field == STAT_RSS)
            rss = value;
        p = end;
    }
    usage->cpu_usecs = (uint64_t)((utime + stime) * 1000000ull / (unsigned long long)ticks_per_sec);
    usage->rss_bytes = (uint64_t)(rss * (unsigned long long)page_size);
    return true;
}

bool corral_proc_usage_read(pid_t pid, corral_proc_usage *usage)
{
    char path[64], text[1024];
    ssize_t got;
    int fd;

    *usage = (corral_proc_usage){ 0, 0 };
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return false;
    do {
        got = read(fd, text, sizeof(text) - 1);
    } while (got < 0 && errno == EINTR);
    close(fd);
    if (got <= 0)
        return false;
    text[got] = '\0';
    return corral_proc_usage_parse_stat(text, sysconf(_SC_CLK_TCK), sysconf(_SC_PAGESIZE),
                                        usage);
}
