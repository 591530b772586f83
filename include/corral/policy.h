/* SPDX-License-Identifier: MIT */
/*
 * corral/policy.h - the one header a Corral policy plugin needs.
 *
 * A policy plugin makes every scaling decision for the services that name
 * it: when to start processes, when to ask an idle one to leave, when to
 * stop forking after failures, and what to do when the process limit is
 * reached.  It never forks, signals, accepts, waits or reads a clock
 * itself.  It reacts to events from the core and asks the core to act
 * through a table of host functions.  The core enforces process_limit,
 * throttling and shutdown whatever the plugin asks, and logs and refuses
 * any request that would break them.
 *
 * Because the host is a table of functions, the same compiled plugin runs
 * inside corrald, inside unit tests with a fake host and a virtual clock,
 * and inside a simulator.
 *
 * Worked example: a policy that keeps `spare` idle processes around.
 *
 *   #include <corral/policy.h>
 *   #include <stdlib.h>
 *   #include <string.h>
 *
 *   static const corral_policy_key keys[] = {
 *       { "spare", CORRAL_KEY_UINT, "2", 0, 1000, "idle processes to keep" },
 *       { NULL }
 *   };
 *
 *   struct spare { const corral_host *host; corral_service *svc; uint64_t spare; };
 *
 *   static void *spare_new(const corral_host *host, corral_service *svc,
 *                          const corral_policy_value *values, char **error)
 *   {
 *       struct spare *s = calloc(1, sizeof(*s));
 *       if (s == NULL) { *error = strdup("out of memory"); return NULL; }
 *       s->host = host; s->svc = svc; s->spare = values[0].u;
 *       return s;
 *   }
 *
 *   static void top_up(struct spare *s)
 *   {
 *       const corral_service_state *st = s->host->state(s->svc);
 *       while (st->process_avail < s->spare && st->process_count < st->process_limit)
 *           if (!s->host->spawn(s->svc)) break;
 *   }
 *
 *   static void spare_started(void *p) { top_up(p); }
 *   static void spare_status(void *p, corral_process *proc, unsigned old)
 *   { (void)proc; (void)old; top_up(p); }
 *   static void spare_exited(void *p, const corral_exit *e) { (void)e; top_up(p); }
 *
 *   static const corral_policy spare_policy = {
 *       .abi_version = CORRAL_POLICY_ABI_VERSION,
 *       .struct_size = sizeof(corral_policy),
 *       .name = "spare", .description = "keeps N spare processes",
 *       .keys = keys,
 *       .service_new = spare_new, .service_free = free,
 *       .started = spare_started, .status_changed = spare_status,
 *       .process_exited = spare_exited,
 *   };
 *   CORRAL_POLICY_DEFINE(spare, spare_policy)
 *
 * Build it as a shared module named spare.so (no "lib" prefix), put it in
 * a policy directory and write `policy = spare` in a [service NAME] group.
 *
 * Rules of the road:
 *   - Every callback runs on corrald's main loop thread.  Never block.
 *   - Every pointer the core hands over (corral_service, corral_process,
 *     corral_service_state, corral_exit) stays valid only as documented
 *     below.  Do not keep a corral_process after process_exited returns.
 *   - Timers belong to the service.  The core removes any that remain
 *     after service_free, but a tidy plugin removes its own in stop()
 *     (the core removes the rest at stop() unless the plugin sets
 *     CORRAL_POLICY_TIMERS_OUTLIVE_STOP).
 *   - Callbacks left NULL are skipped; only abi_version, struct_size, name
 *     and service_new are required.
 */
#ifndef CORRAL_POLICY_H
#define CORRAL_POLICY_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version a plugin built against this header carries.  It goes up
 * whenever a structure below changes; the loader accepts every version from
 * CORRAL_POLICY_ABI_VERSION_MIN up to this one and refuses the others.
 *   1: the first.
 *   2: corral_host.queued_clients, appended to the host table.  A version 1
 *      plugin never reads it, so it still loads; a version 2 plugin is
 *      refused by a corrald that only speaks version 1.
 *   3: corral_policy.flags and corral_policy.report, appended to the
 *      descriptor, and corral_host.sample_load, appended to the host table
 *      for processes that send no status (worker_protocol = systemd).  The
 *      core reads the new descriptor members only from a version 3 plugin,
 *      so the shorter descriptor of a version 1 or 2 plugin still loads,
 *      and older plugins never call sample_load.
 * Renaming a field keeps the layout and the version: corral_process's
 * clients_served became clients_seen, the name of what it counts. */
#define CORRAL_POLICY_ABI_VERSION 3u
#define CORRAL_POLICY_ABI_VERSION_MIN 1u

/* The symbol every plugin exports.  libltdl looks for
 * `<module>_LTX_corral_policy_entry` first, then the plain name, so plugins
 * defined with CORRAL_POLICY_DEFINE can also be linked statically into
 * tests side by side. */
#define CORRAL_POLICY_ENTRY_SYMBOL "corral_policy_entry"

/* Means "never" for idle_kill, as in Dovecot (4294967295 seconds). */
#define CORRAL_IDLE_KILL_NEVER 4294967295u

/* ------------------------------------------------------------------ */
/* Opaque handles owned by the core.                                   */

/* One configured service.  Valid from service_new until service_free. */
typedef struct corral_service corral_service;
/* A timer armed through corral_host.timer_add. */
typedef struct corral_timer corral_timer;

/* ------------------------------------------------------------------ */
/* What a plugin can see.                                              */

/* Dovecot's service types; they change drop and notify behaviour. */
typedef enum corral_service_type {
    CORRAL_SERVICE_DEFAULT = 0, /* type = "" */
    CORRAL_SERVICE_LOGIN,       /* gets the login-notify fd 4 */
    CORRAL_SERVICE_WORKER,      /* reaching process_limit is normal */
    CORRAL_SERVICE_STARTUP,     /* one process at start regardless of min */
} corral_service_type;

/*
 * The core's live view of a service.  The pointer returned by
 * corral_host.state() stays valid for the service's lifetime and is
 * updated in place by the core before each callback, so a plugin may keep
 * it.  A plugin never writes to it.
 */
typedef struct corral_service_state {
    const char *name;
    corral_service_type type;

    /* Effective limits (config defaults applied, client_limit capped at
     * service_count when that is non-zero). */
    unsigned process_limit;
    unsigned process_min_avail;
    unsigned client_limit;
    unsigned service_count;   /* 0 = unlimited */
    unsigned idle_kill_secs;  /* CORRAL_IDLE_KILL_NEVER = never */

    /* Accounting kept by the core from spawns, status records and reaps. */
    unsigned process_count;   /* live processes */
    unsigned process_avail;   /* processes whose available_count > 0 */

    /* Mechanics state. */
    bool listening;           /* the core watches the listeners for us */
    bool throttled;           /* spawning is refused until throttle ends */
    bool stopping;            /* shutdown or reload: spawning is refused */
    bool have_listeners;      /* at least one listener fd exists */

    /* Exit accounting for the storm rule (seconds are monotonic). */
    bool have_success;        /* some process has exited with status 0 */
    unsigned exit_failures_in_sec;
    uint64_t exit_failure_last_sec;
} corral_service_state;

/*
 * One worker process as the core sees it.  Valid from the first callback
 * that mentions it until process_exited returns.  Only `policy_data` may
 * be written by the plugin; the core never touches it.
 */
typedef struct corral_process {
    pid_t pid;
    unsigned available_count;   /* last reported; client_limit at spawn */
    bool initialized;           /* sent a first status (or was killed for not) */
    uint64_t created_usec;      /* host clock */
    uint64_t last_status_usec;  /* 0 before the first record */
    uint64_t last_kill_usec;    /* last corral_host.signal() to it; 0 if none.
                                 * signal_all() does not set it. */
    uint64_t idle_since_usec;   /* 0 while busy */
    /* Clients the status records showed the process taking: the sum of
     * every drop in available_count the master read.  A lower bound, not
     * a count of clients served: a worker reports at most once a second
     * unless it fills up or frees its last slot, so clients that come and
     * go between two reports are never seen (Dovecot's total_count). */
    uint64_t clients_seen;
    void *policy_data;
} corral_process;

/* How a process ended, given to process_exited after the core has logged
 * the exit text and removed the process from the counts in the state. */
typedef struct corral_exit {
    corral_process *process;  /* still readable during the callback */
    int wait_status;          /* as from waitpid() */
    bool success;             /* exited with status 0 */
    bool before_first_status; /* died without ever sending a valid record */
} corral_exit;

/* ------------------------------------------------------------------ */
/* Configuration keys a plugin declares.                               */

typedef enum corral_key_type {
    CORRAL_KEY_UINT,     /* decimal, within [min, max] */
    CORRAL_KEY_BOOL,     /* yes/no/true/false/1/0 */
    CORRAL_KEY_DURATION, /* "60", "60s", "500ms", "2m", "1h"; value in msecs */
    CORRAL_KEY_STRING,   /* free text */
} corral_key_type;

typedef struct corral_policy_key {
    const char *name;          /* NULL ends the array */
    corral_key_type type;
    const char *default_value; /* parsed like a configured value */
    uint64_t min, max;         /* inclusive range for UINT and DURATION (msecs); 0,0 = any */
    const char *description;
} corral_policy_key;

/* Parsed values, one per declared key and in the same order. */
typedef union corral_policy_value {
    uint64_t u;        /* UINT, DURATION (msecs) */
    bool b;            /* BOOL */
    const char *s;     /* STRING; valid until service_free */
} corral_policy_value;

/* ------------------------------------------------------------------ */
/* What a plugin can ask for.                                          */

typedef enum corral_log_level {
    CORRAL_LOG_DEBUG,
    CORRAL_LOG_INFO,
    CORRAL_LOG_WARNING,
    CORRAL_LOG_ERROR,
} corral_log_level;

typedef void corral_timer_fn(void *data);

/*
 * The host interface.  Every function that takes a corral_service acts on
 * that service only.  Functions that can be refused return false and the
 * core logs why; a refusal never changes state.
 */
typedef struct corral_host {
    /* The live state of a service (see corral_service_state). */
    const corral_service_state *(*state)(corral_service *svc);

    /* Looks a process of this service up by pid; NULL if unknown. */
    corral_process *(*process)(corral_service *svc, pid_t pid);
    /* Iterates the service's processes in creation order: pass NULL to
     * get the first, the previous one to get the next.  Returns NULL at
     * the end.  Do not spawn or mark processes busy while iterating. */
    corral_process *(*process_next)(corral_service *svc, corral_process *prev);

    /* Starts one process.  Refused while throttled or stopping, and when
     * process_count == process_limit.  Returns false on refusal or on a
     * failed spawn (logged by the core); a plugin usually throttles then. */
    bool (*spawn)(corral_service *svc);
    /* A counter that grows with every spawn attempt of every service.  A
     * change between two looks means the master was busy forking. */
    uint64_t (*spawn_counter)(void);

    /* Sends a signal to one process of this service.  Allowed: SIGINT,
     * SIGTERM, SIGUSR1, SIGKILL.  Sets last_kill_usec on success; ESRCH is
     * not an error. */
    bool (*signal)(corral_service *svc, pid_t pid, int signo);
    /* Sends a signal to every process of the service that has sent its
     * first status (every process for SIGKILL); returns how many.  Does not
     * touch last_kill_usec: this is for notifications such as SIGUSR1. */
    unsigned (*signal_all)(corral_service *svc, int signo);
    /* Counts the process as busy (available_count 0) until it next
     * reports a non-zero count, as if it had taken every free slot (they
     * count in clients_seen, as Dovecot's total_count).  Used when a
     * process ignores idle kills. */
    bool (*mark_busy)(corral_service *svc, pid_t pid);

    /* Starts or stops watching the listeners.  While watching, a pending
     * connection calls listener_readable; the core never accepts it. */
    void (*listen)(corral_service *svc, bool on);
    /* Accepts and closes every queued connection on every listener. */
    unsigned (*drop_queued)(corral_service *svc);
    /* Accepts and closes one queued connection. */
    bool (*drop_one)(corral_service *svc);

    /* Refuses spawns and stops listening for `msecs`; with no processes
     * left, queued connections are dropped first (clients see EOF rather
     * than a hang).  throttle_ended fires when it is over.  Refused when
     * already throttled or stopping. */
    bool (*throttle)(corral_service *svc, unsigned msecs);

    /* Login services only: publishes FULL (true) or NONFULL (false) in
     * the offset of fd 4.  Does not signal; pair with signal_all(SIGUSR1). */
    void (*login_notify)(corral_service *svc, bool full);

    /* Timers on the host clock.  A repeating timer fires every `msecs`
     * until removed; a one-shot timer is removed by the core after it
     * fires, so do not remove it again.  Removing inside its own callback
     * is allowed. */
    corral_timer *(*timer_add)(corral_service *svc, unsigned msecs, bool repeat,
                               corral_timer_fn *fn, void *data);
    void (*timer_remove)(corral_service *svc, corral_timer *timer);

    /* Host clock: monotonic microseconds. */
    uint64_t (*now_usec)(void);
    /* A uniformly distributed number in [0, bound). */
    uint32_t (*random)(uint32_t bound);

    /* Logs `service(NAME): <message>` at the given level. */
    void (*log)(corral_service *svc, corral_log_level level, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

    /* Since ABI version 2.  Clients waiting in the kernel's accept queues
     * of the service's TCP listeners right now, read without accepting
     * (TCP_INFO).  Unix listeners cannot be counted this way and add
     * nothing, so 0 means "none known", not "none": a policy woken by
     * listener_readable should still assume one. */
    unsigned (*queued_clients)(corral_service *svc);

    /* Since ABI version 3.  For a service whose processes send no status
     * (worker_protocol = systemd), the core measures how many connections
     * each process (with everything it forked) holds, every
     * `interval_msecs` (50 to 60000; 0 goes back to the default of 1000),
     * and reports a change as a status change: available_count becomes
     * client_limit minus the connections, and a process without any is
     * idle.  The shortest interval asked for wins.  Does nothing for
     * services whose processes report their own status.  A host that
     * predates it leaves it NULL (the simulator, older fake hosts). */
    void (*sample_load)(corral_service *svc, unsigned interval_msecs);
} corral_host;

/* ------------------------------------------------------------------ */
/* The descriptor a plugin exports.                                     */

/* corral_policy.flags (ABI version 3). */
enum {
    /* Timers outlive stop(): the core leaves armed whatever the plugin
     * did not remove in stop(), and keeps calling process_exited for the
     * service's processes until service_free, so that a per-process timer
     * (Dovecot's idle kill) runs its course while its process lives.
     * After stop() such a timer may only signal, mark busy and remove
     * timers; every other request is refused. */
    CORRAL_POLICY_TIMERS_OUTLIVE_STOP = 1u << 0,
};

/* What a plugin tells operators about a service beyond the core's
 * accounting: doveadm's service status (ABI version 3).  The core fills
 * each field with its own view first; report() overwrites what the
 * plugin knows better. */
typedef struct corral_policy_report {
    /* While throttled: the length doveadm shows, in seconds.  The core's
     * view is the current throttle's; Dovecot shows the next one. */
    unsigned throttle_secs;
    /* Host clock of the last "... reached, client connections are being
     * dropped" warning; 0 for never.  The core's view: the last drop. */
    uint64_t last_drop_warning_usec;
    /* Full and waiting out the grace period before queued clients are
     * dropped, or dropping them since.  The core's view: full, not
     * throttled and not listening. */
    bool listen_pending;
} corral_policy_report;

typedef struct corral_policy {
    uint32_t abi_version;  /* CORRAL_POLICY_ABI_VERSION */
    uint32_t struct_size;  /* sizeof(corral_policy) */
    const char *name;
    const char *description;
    const corral_policy_key *keys; /* may be NULL; else ends with name NULL */

    /* Once per service configuration.  Returns the plugin's state for the
     * service, or NULL with *error set to a malloc()ed message, which the
     * core logs with the file and service and frees. */
    void *(*service_new)(const corral_host *host, corral_service *svc,
                         const corral_policy_value *values, char **error);
    /* Frees what service_new returned.  The service is stopped already. */
    void (*service_free)(void *state);

    /* The service's listeners are open; it is now monitored. */
    void (*start)(void *state);
    /* Every service has started; a good moment to prefork. */
    void (*started)(void *state);
    /* The service is being stopped (shutdown or reload).  Remove timers;
     * no spawn will be honoured from here on, and no further callback
     * arrives: processes still alive get no process_exited, so free their
     * policy_data in service_free.  (With CORRAL_POLICY_TIMERS_OUTLIVE_STOP,
     * timers left armed still fire and process_exited still arrives.) */
    void (*stop)(void *state);

    /* A valid status record arrived, changed or not.  The core has already
     * updated process->available_count, process_avail and the first-status
     * bookkeeping; `old_count` is the value before this record. */
    void (*status_changed)(void *state, corral_process *process, unsigned old_count);
    /* A connection is waiting while the policy has the core listening. */
    void (*listener_readable)(void *state);
    /* A process was reaped; see corral_exit. */
    void (*process_exited)(void *state, const corral_exit *exit);
    /* A throttle set with corral_host.throttle has ended. */
    void (*throttle_ended)(void *state);

    /* Since ABI version 3; read only from a version 3 plugin. */
    uint32_t flags;       /* CORRAL_POLICY_TIMERS_OUTLIVE_STOP, ... */
    /* Fills in what operators see (doveadm service status); may be NULL.
     * Called at any time, also after stop(); must not call the host. */
    void (*report)(void *state, corral_policy_report *report);
} corral_policy;

typedef const corral_policy *corral_policy_entry_fn(void);

/*
 * Exports the descriptor.  `module` must be the file's base name (spare for
 * spare.so) so that libltdl finds module_LTX_corral_policy_entry.
 */
#define CORRAL_POLICY_DEFINE(module, descriptor)                               \
    __attribute__((visibility("default"))) const corral_policy                 \
        *module##_LTX_corral_policy_entry(void);                               \
    const corral_policy *module##_LTX_corral_policy_entry(void)                \
    {                                                                          \
        return &(descriptor);                                                  \
    }

#ifdef __cplusplus
}
#endif

#endif /* CORRAL_POLICY_H */
