/* SPDX-License-Identifier: MIT */
/*
 * generation.h - the services built from one configuration.
 *
 * A reload builds a whole new generation beside the running one and swaps
 * only once every service of it is ready; the old generation then retires:
 * its processes see the master-dead pipe, finish their clients and exit,
 * and it is freed when the last of them has been reaped.
 */
#ifndef CORRAL_GENERATION_H
#define CORRAL_GENERATION_H

#include <glib.h>
#include <stdbool.h>

#include "config.h"
#include "listener.h"
#include "policy-loader.h"

struct corral_supervisor;

typedef struct corral_generation {
    corral_config *config;
    corral_policy_loader *loader;
    GPtrArray *services;       /* corral_service*, in config order */
    guint kill_timer;          /* stragglers after a reload */
    unsigned kill_rounds;
} corral_generation;

/* Loads policies and builds every service of `config` (taken over, and
 * freed on failure).  With a `predecessor`, inet listeners with the same
 * address are shared with it and unchanged policy modules reused. */
corral_generation *corral_generation_build(struct corral_supervisor *supervisor,
                                           corral_config *config,
                                           const corral_generation *predecessor,
                                           GError **error);
/* Moves replacement unix sockets into place.  Nothing can fail after. */
bool corral_generation_commit(corral_generation *generation, GError **error);
/* Starts every service's monitor, then tells each policy all have started. */
bool corral_generation_start(corral_generation *generation, GError **error);
/* Stops monitoring and closes the dead pipes, status pipes and listeners:
 * its processes finish their clients and leave. */
void corral_generation_retire(corral_generation *generation);
/* Stops monitoring and closes the dead pipes, keeping listeners (shutdown). */
void corral_generation_stop(corral_generation *generation);
/* Keeps every policy timer from firing again (shutdown). */
void corral_generation_mute_timers(corral_generation *generation);
void corral_generation_free(corral_generation *generation);

unsigned corral_generation_process_count(const corral_generation *generation);
bool corral_generation_any_available(const corral_generation *generation);
/* Sends `signo` to every process (only initialized ones unless SIGKILL)
 * and logs "Sent SIG... to N NAME processes" per service when asked.
 * *uninitialized_r counts the processes skipped as not yet initialized. */
unsigned corral_generation_signal(corral_generation *generation, int signo, bool log_each,
                                  unsigned *uninitialized_r);
/* Sends SIGQUIT to every process, initialized or not (shutdown). */
unsigned corral_generation_quit(corral_generation *generation);
/* Kills what is left in the process group of every process that has died
 * unreaped (the master stops reaping after SIGQUIT), and the whole group
 * of every process of a protocol without a dead pipe (systemd, inetd);
 * returns how many groups had something to kill. */
unsigned corral_generation_kill_orphans(corral_generation *generation);
corral_listener *corral_generation_find_listener(const corral_generation *generation,
                                                 const corral_listener_config *config);

#endif
