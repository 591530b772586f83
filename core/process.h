/* SPDX-License-Identifier: MIT */
/*
 * process.h - the master's record of one worker process.
 */
#ifndef CORRAL_PROCESS_H
#define CORRAL_PROCESS_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include <corral/policy.h>

struct corral_service;

typedef struct corral_process_record {
    corral_process view;          /* what the policy sees; pid lives here */
    struct corral_service *service;
    uint32_t generation;          /* GENERATION given to this process */
    guint first_status_timer;     /* armed until the first valid record */
    GList link;                   /* in the service's creation-ordered queue */
    /* Dovecot's idle_start, for doveadm: the time of the last record that
     * reported the process idle (view.idle_since_usec keeps the first). */
    uint64_t idle_record_usec;
    corral_process *shadow_views; /* one per shadow policy, or NULL */
    bool listeners_stale;         /* holds a listener that was re-created: it
                                   * takes no new client and counts as busy */
    /* worker_protocol = systemd: connections held at the last sample. */
    unsigned connections;
    bool measured;                /* sampled at least once */
} corral_process_record;

/* What Dovecot's exit texts say about the service beside the status. */
typedef struct corral_exit_hints {
    const char *service_name;
    uint64_t vsz_limit;        /* bytes; 0 for none */
    bool login;                /* type = login */
    bool login_dump_core;      /* "-D" among the executable's arguments */
    const char *chroot;        /* NULL for none */
} corral_exit_hints;

/* Records whether the master's own RLIMIT_CORE is 0, once, at start, as
 * Dovecot does ("core dumps disabled" hints follow it, not the child's). */
void corral_exit_texts_init(void);

/* Dovecot's exit text ("child 123 returned error 83 (Out of memory ...)",
 * "child 123 killed with signal 11 (core dumps disabled - URL)"), without
 * the "service(NAME): " prefix; NULL for exit 0.  `hints` may be NULL:
 * then no hint names the service.  The result is g_free()d by the
 * caller. */
char *corral_exit_text(pid_t pid, int wait_status, const corral_exit_hints *hints);

#endif
