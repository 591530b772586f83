/* SPDX-License-Identifier: MIT */
/*
 * supervisor.h - the master: every service, the pid table, and the order
 * of start and shutdown.
 *
 * There is one supervisor per corrald.  It owns the configuration, the
 * policy loader and the services built from them, reaps children for all
 * services with one waitpid(-1) loop, and runs Dovecot's shutdown: close
 * the dead pipes, wait up to 5 s for processes to go idle and leave, send
 * SIGQUIT to the rest, and stop.
 */
#ifndef CORRAL_SUPERVISOR_H
#define CORRAL_SUPERVISOR_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "process.h"

typedef struct corral_supervisor corral_supervisor;

/* Builds every service of `config` (taking ownership of it): loads
 * policies, opens listeners.  Nothing runs until corral_supervisor_run(). */
corral_supervisor *corral_supervisor_new(corral_config *config, GError **error);
/* Starts every service and runs the main loop until shutdown completes.
 * Returns the process exit code. */
int corral_supervisor_run(corral_supervisor *supervisor);
void corral_supervisor_free(corral_supervisor *supervisor);

/* The running supervisor, for the host functions that name no service. */
corral_supervisor *corral_supervisor_get(void);

const corral_config *corral_supervisor_config(const corral_supervisor *supervisor);
uint64_t corral_supervisor_now_usec(void);
int corral_supervisor_dev_null(corral_supervisor *supervisor);
bool corral_supervisor_is_stopping(const corral_supervisor *supervisor);

void corral_supervisor_count_spawn(corral_supervisor *supervisor);
uint64_t corral_supervisor_spawn_counter(const corral_supervisor *supervisor);
uint32_t corral_supervisor_next_generation(corral_supervisor *supervisor);

void corral_supervisor_add_process(corral_supervisor *supervisor, corral_process_record *record);
void corral_supervisor_forget_process(corral_supervisor *supervisor,
                                      corral_process_record *record);
corral_process_record *corral_supervisor_find_process(corral_supervisor *supervisor, pid_t pid);

/* The services of the running configuration (corral_service*, in config
 * order), for corralctl, doveadm and the metrics.  The array is replaced
 * by a reload: look it up again rather than keep it. */
GPtrArray *corral_supervisor_services(corral_supervisor *supervisor);

/* Reaps every child that has exited. */
/* Reads every current service's status pipe: for the operator's views,
 * which should not show records the status watch has put off. */
void corral_supervisor_drain_status(corral_supervisor *supervisor);
void corral_supervisor_reap(corral_supervisor *supervisor);
/* Frees retired generations whose last process has been reaped. */
void corral_supervisor_free_drained_generations(corral_supervisor *supervisor);

/* How the last reload went.  Before any reload it reads as a success at
 * the start. */
typedef struct corral_reload_outcome {
    int64_t time_usec;       /* unix time of the last reload; 0 before any */
    bool ok;
    const char *error;       /* why the last reload failed; NULL when it did not */
    int64_t success_usec;    /* unix time of the last good load: start or reload */
} corral_reload_outcome;

/* Unix time (microseconds) at which this corrald started. */
int64_t corral_supervisor_start_usec(const corral_supervisor *supervisor);
void corral_supervisor_last_reload(const corral_supervisor *supervisor,
                                   corral_reload_outcome *outcome);

/* Builds the configuration anew from the same main file and, only if all
 * of it is good, swaps it in: inet listeners with an unchanged address are
 * kept, unix listeners recreated, and the old processes drain.  On failure
 * the running configuration is untouched and the error is logged. */
bool corral_supervisor_reload(corral_supervisor *supervisor, GError **error);
/* Starts Dovecot's shutdown sequence (as SIGTERM does). */
void corral_supervisor_shutdown(corral_supervisor *supervisor);

/* The listener of the generation being replaced with the same address as
 * `config`, while a reload is being built; NULL otherwise. */
struct corral_listener *corral_supervisor_running_listener(corral_supervisor *supervisor,
                                                           const corral_listener_config *config);

#endif
