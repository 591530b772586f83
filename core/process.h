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
    corral_process *shadow_views; /* one per shadow policy, or NULL */
    /* worker_protocol = systemd: connections held at the last sample. */
    unsigned connections;
    bool measured;                /* sampled at least once */
} corral_process_record;

/* Dovecot's exit text ("child 123 returned error 3", "child 123 killed
 * with signal 9"), without the "service(NAME): " prefix; NULL for exit 0.
 * The result is g_free()d by the caller. */
char *corral_exit_text(pid_t pid, int wait_status);

#endif
