/* SPDX-License-Identifier: MIT */
/*
 * shadow.h - shadow policies: would-be decisions, never acted on.
 *
 * A service may name shadow policies (`shadow_policies = dynamic, queue`).
 * Each receives exactly the events its active policy receives and sees the
 * same live state, but every action it asks for (spawn, signal, listen,
 * drop, throttle, login notify) goes to the service's decision journal
 * instead of being carried out.  Timers, the clock and randomness are
 * real, so a shadow's timing decisions show up as they would.
 *
 * A shadow's own keys are written with its name as prefix in the service
 * group (`queue.headroom = 1.5`); the active policy does not see them.
 * Each process has a separate corral_process view per shadow, so a
 * shadow's policy_data never meets the active policy's.
 */
#ifndef CORRAL_SHADOW_H
#define CORRAL_SHADOW_H

#include <glib.h>
#include <stdbool.h>

#include <corral/policy.h>

#include "policy-loader.h"

struct corral_service;
struct corral_process_record;

typedef struct corral_shadows corral_shadows;

/* One decision a shadow would have taken. */
typedef struct corral_decision {
    uint64_t usec;         /* host clock */
    char *policy;          /* the shadow's policy name */
    char *text;            /* "spawn", "signal 1234 SIGINT", "throttle 2000 ms", ... */
} corral_decision;

/* How many decisions a service's journal keeps; older ones are dropped. */
#define CORRAL_DECISION_JOURNAL_SIZE 256

/* Loads and instantiates the shadows the service configures; returns NULL
 * (no error) when it has none. */
corral_shadows *corral_shadows_new(struct corral_service *svc, corral_policy_loader *loader,
                                   GError **error);
void corral_shadows_free(corral_shadows *shadows);
unsigned corral_shadows_count(const corral_shadows *shadows);

/* The journal, oldest first (corral_decision*). */
const GQueue *corral_shadows_journal(const corral_shadows *shadows);

/* Per-process views, made at spawn and freed when the process is gone. */
corral_process *corral_shadows_new_views(const corral_shadows *shadows);
void corral_shadows_free_views(const corral_shadows *shadows, corral_process *views);

/* The events, mirrored from the active policy's. */
void corral_shadows_start(corral_shadows *shadows);
void corral_shadows_started(corral_shadows *shadows);
void corral_shadows_stop(corral_shadows *shadows);
void corral_shadows_status_changed(corral_shadows *shadows, corral_process *process,
                                   unsigned old_count);
void corral_shadows_listener_readable(corral_shadows *shadows);
void corral_shadows_process_exited(corral_shadows *shadows, const corral_exit *exit);
void corral_shadows_throttle_ended(corral_shadows *shadows);

/* Key names in the service group that belong to a shadow ("NAME.key"). */
bool corral_shadows_owns_key(const char *const *shadow_names, const char *key);

#endif
