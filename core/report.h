/* SPDX-License-Identifier: MIT */
/*
 * report.h - what operators see of services and processes.
 *
 * corralctl, doveadm's master socket and the metrics endpoint all show the
 * same facts; this is the one place that derives them from the core's
 * accounting, so that the three never disagree.  Times are converted from
 * the host's monotonic clock to unix time (seconds) here; 0 means never.
 */
#ifndef CORRAL_REPORT_H
#define CORRAL_REPORT_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "service.h"
#include "supervisor.h"

typedef struct corral_service_report {
    const char *name;
    const char *policy;
    const char *worker_protocol; /* dovecot, systemd or inetd */
    bool stopped;                 /* by corralctl service stop or doveadm service stop */

    unsigned process_count;
    unsigned process_avail;
    unsigned process_limit;
    unsigned client_limit;
    unsigned process_min_avail;

    bool throttled;
    int64_t throttled_until;      /* while throttled */
    unsigned throttle_secs;       /* length of the current throttle, rounded up; 0 if none */

    bool listening;               /* the master watches the listeners */
    /* Full and not listening: every process busy at process_limit, so new
     * clients wait in the listen queue until a process frees up or the
     * policy drops them. */
    bool listen_pending;
    unsigned queued;              /* clients in the TCP listeners' accept queues now */
    unsigned queued_max;          /* the most seen there: sampled every second, when the
                                   * service fills up and whenever it is reported */
    uint64_t process_limit_reached; /* times every process became busy at process_limit */

    uint64_t processes_spawned;   /* processes started, all time */
    uint64_t connections_dropped; /* queued clients accepted and closed */
    int64_t last_drop;            /* when the last one was dropped */
    uint64_t exit_failures;       /* exits with a non-zero status or by a signal */
    unsigned exit_failures_in_sec; /* the storm rule's count for its last second */
    int64_t exit_failure_last;    /* the storm rule's last failure */
    bool have_success;            /* a process has exited with status 0 */
    /* doveadm service status's fields, in the policy's terms where it
     * gives them (corral_policy.report), else the core's: */
    unsigned doveadm_throttle_secs; /* Dovecot's: the next throttle's length */
    int64_t last_drop_warning;      /* Dovecot's: the last "reached" warning */
    bool doveadm_listen_pending;    /* Dovecot's: also while dropping after the grace period */
    /* Status records read, and the read()s that took them: under load the
     * status watch batches records, so reads grow slower than records. */
    uint64_t status_records;
    uint64_t status_reads;
    /* Listeners that stopped accepting (a process shut one down) and were
     * made anew, and those that could not be. */
    uint64_t listeners_recreated;
    unsigned listeners_dead;
} corral_service_report;

typedef struct corral_process_report {
    const char *service;
    pid_t pid;
    unsigned available_count;
    uint64_t clients_seen;        /* a lower bound; see corral_process */
    bool initialized;             /* has sent its first status */
    int64_t started;
    int64_t idle_since;           /* 0 while busy */
    int64_t idle_start;           /* Dovecot's: the last idle record; 0 while busy */
    int64_t last_status;
    int64_t last_kill;
    uint64_t age_secs;
    uint64_t rss_bytes;           /* from /proc; 0 when it cannot be read */
    uint64_t cpu_usecs;           /* user + system */
} corral_process_report;

void corral_service_report_fill(const corral_service *svc, corral_service_report *report);
void corral_process_report_fill(const corral_service *svc, const corral_process_record *record,
                                corral_process_report *report);

/* The running configuration's service called `name`, or NULL. */
corral_service *corral_report_find_service(corral_supervisor *supervisor, const char *name);

/* The unix time, in seconds, of a reading of the host clock; 0 stays 0. */
int64_t corral_report_unix_time(uint64_t host_usec);

#endif
