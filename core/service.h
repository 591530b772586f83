/* SPDX-License-Identifier: MIT */
/*
 * service.h - one supervised service at run time.
 *
 * A service owns its listeners, one status pipe, one master-dead pipe, one
 * stderr pipe (and for login services the notify file) shared by all of
 * its processes, so the master's descriptor count grows with services, not
 * with processes.  It keeps the accounting the policy reads
 * (corral_service_state) and carries out what the policy asks, refusing
 * what would break process_limit, a throttle or a shutdown.
 */
#ifndef CORRAL_SERVICE_H
#define CORRAL_SERVICE_H

#include <glib.h>
#include <stdbool.h>

#include <corral/policy.h>

#include "child-log.h"
#include "log-limit.h"
#include "inetd.h"
#include "config.h"
#include "policy-loader.h"
#include "process.h"
#include "shadow.h"
#include "status-watch.h"

struct corral_supervisor;

struct corral_service {
    struct corral_supervisor *supervisor;
    const corral_service_config *config;
    corral_service_state state;          /* the policy's view */

    corral_policy_module *policy_module;
    corral_policy_value *policy_values;
    void *policy_state;
    corral_shadows *shadows;             /* NULL without shadow_policies */

    GPtrArray *listeners;                /* corral_listener* */
    bool monitoring;                     /* started and not stopped */

    /* Per-service pipes: [0] read end kept by the master, [1] for children. */
    int status_pipe[2];
    int dead_pipe[2];
    int log_pipe_write;
    int login_notify_fd;
    corral_status_watch *status_watch;
    corral_child_log *child_log;
    corral_log_limit worker_fault_log;   /* budget for lines about bad records */
    guint worker_fault_timer;            /* tells what the budget held back */
    corral_inetd *inetd;                 /* worker_protocol = inetd only */
    struct corral_load_sampler *load_sampler; /* systemd only, while monitored */

    /* Spawn inputs prepared once per service. */
    char *exec_path;
    char **argv;
    char **env_base;                     /* every variable but GENERATION (dovecot)
                                          * or LISTEN_PID (systemd) */
    int *fd_map;
    int fd_count;
    uid_t uid;
    gid_t gid;
    gid_t *groups;
    int group_count;

    GQueue processes;                    /* corral_process_record*, by age */
    GList *timers;                       /* policy timers still armed */
    guint throttle_timer;

    /* Counters for operators. */
    uint64_t spawned_total;
    uint64_t connections_dropped;
    uint64_t last_drop_usec;             /* host clock of the last drop; 0 = never */
    uint64_t exit_failures_total;        /* non-zero exits and deaths by signal */
    uint64_t status_records_total;       /* records read from the status pipe */
    uint64_t status_reads_total;         /* read()s that returned records */
    /* Times every process became busy at process_limit (php-fpm's
     * max_children_reached): new clients then wait in the listen queue. */
    uint64_t process_limit_reached_total;
    unsigned queued_max;                 /* accept queue high-water mark, sampled */
    uint64_t throttled_until_usec;       /* host clock; meaningful while throttled */
    uint64_t status_rejected_total;      /* forged, impossible or partial records */
    uint64_t listeners_recreated;        /* listeners found dead and made anew */
    unsigned listeners_dead;             /* dead ones that could not be made anew */
    unsigned throttle_msecs;             /* length of the current throttle */
    bool stopped_by_operator;            /* corralctl/doveadm service stop */
};
typedef struct corral_service corral_service;

/* Prepares a service from its configuration: opens listeners and loads the
 * policy's state.  Nothing is spawned until corral_service_start(). */
corral_service *corral_service_new(struct corral_supervisor *supervisor,
                                   const corral_service_config *config,
                                   corral_policy_module *module, corral_policy_loader *loader,
                                   GError **error);
void corral_service_free(corral_service *svc);

/* Creates the pipes and starts monitoring: the policy's start() runs. */
bool corral_service_start(corral_service *svc, GError **error);
/* The policy's started() runs, once every service has started. */
void corral_service_started(corral_service *svc);
/* Stops monitoring (policy stop(), timers, listening, status reading)
 * and refuses spawns from now on.  Processes are left alone. */
void corral_service_stop(corral_service *svc);
/* Removes every timer the policy armed, also those that outlived stop(). */
void corral_service_remove_timers(corral_service *svc);
/* Keeps every timer from firing again, leaving each for the policy to
 * remove (it still holds them): the shutdown wait. */
void corral_service_mute_timers(corral_service *svc);
/* Closes the listeners and the status pipe of a retired service; its
 * processes keep their own copies until they leave. */
void corral_service_release_listeners(corral_service *svc);
/* Closes the master-dead pipe: processes see it and finish up. */
void corral_service_close_dead_pipe(corral_service *svc);
/* Reads until the status pipe is empty.  The status watch may put reads
 * off under load (status-watch.h), so everything that acts on the
 * service's accounting for any other reason calls this first. */
void corral_service_drain_status(corral_service *svc);

/* Host actions, enforcing the hard limits. */
bool corral_service_spawn(corral_service *svc);
/* worker_protocol = inetd: starts a process for the accepted connection
 * `fd` (the caller closes its own copy) with `extra_env` added to the
 * service's variables.  Returns the pid, or -1 when refused or failed.
 * *setup_failed tells that the process exists but failed before exec (it
 * exits 84 or 89, as under Dovecot). */
pid_t corral_service_spawn_connection(corral_service *svc, int fd, char *const *extra_env,
                                      bool *setup_failed);
/* worker_protocol = systemd: the process (with its group) holds
 * `connections`, measured by the load sampler; its available_count
 * becomes client_limit minus that, and a change is a status change. */
void corral_service_measured_load(corral_service *svc, corral_process_record *record,
                                  unsigned connections);
/* A policy asks for load samples every `interval_msecs` (load-sampler.h);
 * ignored for services whose processes send status. */
void corral_service_sample_load(corral_service *svc, unsigned interval_msecs);
/* A client waits while the master listens for the policy (or, for inetd,
 * while the service is at process_limit): the policy's listener_readable. */
void corral_service_client_waiting(corral_service *svc);
void corral_service_listen(corral_service *svc, bool on);
unsigned corral_service_drop_queued(corral_service *svc, unsigned max);
/* Clients waiting in the TCP listeners' accept queues (listener.h). */
unsigned corral_service_queued_clients(const corral_service *svc);
/* Reads the accept queues and raises queued_max to what they hold.  The
 * supervisor calls it every second, the service when it becomes full. */
void corral_service_sample_queue(corral_service *svc);
bool corral_service_throttle(corral_service *svc, unsigned msecs);
bool corral_service_signal(corral_service *svc, corral_process_record *record, int signo);
unsigned corral_service_signal_all(corral_service *svc, int signo);
bool corral_service_mark_busy(corral_service *svc, corral_process_record *record);
void corral_service_login_notify(corral_service *svc, bool full);
corral_process_record *corral_service_find_process(corral_service *svc, pid_t pid);

corral_timer *corral_service_timer_add(corral_service *svc, unsigned msecs, bool repeat,
                                       corral_timer_fn *fn, void *data);
/* The same, for a shadow policy: removed at stop() whatever the policy's
 * flags, since shadows hear of no exit after it. */
corral_timer *corral_service_shadow_timer_add(corral_service *svc, unsigned msecs, bool repeat,
                                              corral_timer_fn *fn, void *data);
void corral_service_timer_remove(corral_service *svc, corral_timer *timer);

/* Called by the reaper for each of this service's processes. */
void corral_service_process_exited(corral_service *svc, corral_process_record *record,
                                   int wait_status);

/* corralctl service stop and doveadm's STOP: stops monitoring, closes the
 * listeners, the status pipe and the master-dead pipe, so the processes
 * finish their clients and leave.  None of them counts as available any
 * more.  The service stays configured, with stopped_by_operator set. */
void corral_service_stop_by_operator(corral_service *svc);
/* corralctl service start: opens the listeners and pipes again and starts
 * monitoring anew with a fresh policy instance (service_new, start,
 * started), as at startup.  Fails when the service was not stopped by an
 * operator, the policy refuses, or a listener cannot be opened; the
 * service then stays stopped. */
bool corral_service_start_by_operator(corral_service *svc, GError **error);

/* The host table every policy instance receives. */
const corral_host *corral_host_get(void);

#endif
