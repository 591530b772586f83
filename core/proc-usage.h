/* SPDX-License-Identifier: MIT */
/*
 * proc-usage.h - a process's resident memory and CPU time, from /proc.
 *
 * Read for corrald's own children, which stay ours (a zombie at worst)
 * until reaped, so the pid cannot name another process meanwhile.  The
 * command name in /proc/PID/stat is the worker's to choose; parsing starts
 * after its last ')' so that no name can shift the fields.
 */
#ifndef CORRAL_PROC_USAGE_H
#define CORRAL_PROC_USAGE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct corral_proc_usage {
    uint64_t rss_bytes;   /* resident set size */
    uint64_t cpu_usecs;   /* user + system CPU time */
} corral_proc_usage;

/* False (usage zeroed) when /proc has no such process or cannot be read. */
bool corral_proc_usage_read(pid_t pid, corral_proc_usage *usage);

/* Parses the text of /proc/PID/stat; `ticks_per_sec` is sysconf(_SC_CLK_TCK).
 * Exposed for the unit tests. */
bool corral_proc_usage_parse_stat(const char *stat, long ticks_per_sec, long page_size,
                                  corral_proc_usage *usage);

#endif
