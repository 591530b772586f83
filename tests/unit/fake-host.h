/* SPDX-License-Identifier: MIT */
/*
 * fake-host.h - a corral_host for policy unit tests, on a virtual clock.
 *
 * The fake plays corrald's part around a policy plugin: it keeps the
 * service state and the process table exactly as core/service.c does,
 * refuses what the core refuses, and records every request the policy
 * makes so that a test can assert on it.  Nothing forks, sleeps or reads
 * a real clock.
 *
 * There is one fake host per test process, because the clock, random and
 * spawn-counter entries of corral_host take no context.  Call
 * fake_host_init() at the start of each test and fake_host_deinit() at the
 * end (cmocka setup and teardown fit).  Several services may live in it
 * at once, each with its own policy, or with none.
 *
 * The model, rule by rule:
 *
 * Clock and loop.  Time is in microseconds and starts at
 * FAKE_HOST_START_USEC.  It moves only in fake_host_advance*(), which
 * runs one main-loop iteration at every instant where a timer falls due,
 * up to and including the target instant.  fake_host_run_pending() runs
 * one iteration without moving the clock (as fake_host_advance(0) does).
 * An iteration fires each timer that is due at that instant once, in the
 * order (due time, creation), then delivers listener_readable to every
 * service that is listening with connections queued.  A timer re-armed
 * for the same instant, such as a repeating 0 ms timer, fires again in
 * the next iteration, so 0 ms timers advance one step per call and never
 * spin.
 *
 * Timers.  A repeating timer is re-armed `msecs` after each firing until
 * removed.  A one-shot timer is gone once it has fired: removing it from
 * its own callback is tolerated (as in the core), removing it later fails
 * the test, as does removing any timer twice.
 *
 * Processes.  spawn() appends a process (pids count up from
 * FAKE_HOST_FIRST_PID across all services) with available_count =
 * client_limit, and raises process_count and process_avail.  It is
 * refused while stopping or throttled and at process_limit, and fails
 * on demand (fake_host_fail_spawns) as a failed fork would; both a
 * failure and a success advance the spawn counter, a refusal does not.
 * fake_host_status() plays a valid status record, fake_host_exit() a
 * reap, fake_host_first_status_timeout() the core's 30 s kill of a
 * silent process.  signal() and signal_all() set last_kill_usec on each
 * process they reach, as the core does.  A refused request is recorded
 * as FAKE_REFUSED; the core's own log lines (exit texts, refusals) are
 * not, so FAKE_LOG holds only what the policy wrote.
 *
 * Connections.  Each service has a count of queued connections, the
 * listen backlog as the core sees it.  fake_host_connect() queues and, if
 * the service is listening, delivers listener_readable at once.  Queued
 * connections leave only when the policy drops them, when a throttle
 * with no processes left drains them, or when the test hands one to a
 * process with fake_host_accept().
 *
 * Callbacks.  As in the core, policy callbacks are delivered only between
 * fake_host_start() and fake_host_stop(); a process that exits after
 * the stop is freed without a callback, unless the policy sets
 * CORRAL_POLICY_TIMERS_OUTLIVE_STOP: then its timers keep firing and
 * process_exited still arrives.
 */
#ifndef FAKE_HOST_H
#define FAKE_HOST_H

#include <corral/policy.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define FAKE_HOST_START_USEC (1000ull * 1000000ull)
#define FAKE_HOST_FIRST_PID 1000

/* Linux wait statuses for fake_host_exit(). */
#define FAKE_EXITED(code) (((code) & 0xff) << 8)
#define FAKE_KILLED(signo) ((signo) & 0x7f)

/* A service's settings before the core's defaults, which the fake
 * applies as the core does: process_limit 0 -> 100, client_limit 0 ->
 * 1000 then capped at a non-zero service_count, idle_kill_secs 0 -> 60. */
typedef struct fake_service_settings {
    const char *name; /* NULL -> "test" */
    corral_service_type type;
    unsigned process_limit;
    unsigned process_min_avail;
    unsigned client_limit;
    unsigned service_count;
    unsigned idle_kill_secs;
} fake_service_settings;

typedef enum fake_action_kind {
    FAKE_SPAWN,        /* pid: the new process */
    FAKE_SPAWN_FAILED, /* a failure asked for with fake_host_fail_spawns() */
    FAKE_SIGNAL,       /* pid, signo */
    FAKE_SIGNAL_ALL,   /* signo; count: processes signalled */
    FAKE_MARK_BUSY,    /* pid */
    FAKE_LISTEN,       /* on */
    FAKE_DROP_QUEUED,  /* count: connections closed */
    FAKE_DROP_ONE,     /* count: 1, or 0 when nothing was queued */
    FAKE_THROTTLE,     /* msecs */
    FAKE_LOGIN_NOTIFY, /* on: true for FULL */
    FAKE_LOG,          /* level, text */
    FAKE_REFUSED,      /* refused: what the core would have refused */
} fake_action_kind;

/* One request from a policy.  Fields not listed for the kind are zero. */
typedef struct fake_action {
    fake_action_kind kind;
    corral_service *svc;
    uint64_t usec; /* the clock when it was made */
    pid_t pid;
    int signo;
    unsigned count;
    unsigned msecs;
    bool on;
    corral_log_level level;
    char *text;                /* the whole line: "service(NAME): ..." */
    fake_action_kind refused;  /* FAKE_SPAWN, FAKE_SIGNAL, FAKE_LISTEN or FAKE_THROTTLE */
} fake_action;

/* ------------------------------------------------------------------ */
/* Life cycle.                                                         */

void fake_host_init(void);
/* Stops and frees every service (policy stop, then service_free), then
 * everything else. */
void fake_host_deinit(void);
const corral_host *fake_host_get(void);
/* fake_host_init() and fake_host_deinit() as cmocka setup and teardown. */
int fake_host_setup(void **state);
int fake_host_teardown(void **state);

/* Adds a service run by `policy` (NULL: no policy; its spawns still count
 * for spawn_counter).  `values` go to service_new, which must succeed. */
corral_service *fake_host_add_service(const fake_service_settings *settings,
                                      const corral_policy *policy,
                                      const corral_policy_value *values);
const corral_service_state *fake_host_state(corral_service *svc);
/* What service_new returned, for calling a policy callback directly. */
void *fake_host_policy_state(corral_service *svc);

/* policy start(), after which callbacks are delivered. */
void fake_host_start(corral_service *svc);
/* policy started(). */
void fake_host_started(corral_service *svc);
/* policy stop(); then, as the core does, stops listening and throttling
 * and removes the service's timers (those the policy armed stay with
 * CORRAL_POLICY_TIMERS_OUTLIVE_STOP).  Returns how many timers the policy
 * had left armed. */
unsigned fake_host_stop(corral_service *svc);

/* Values for `policy`'s keys as the core would hand them over: each key
 * takes its value from `settings` ("name=value" strings, NULL-terminated;
 * NULL for none) or else its declared default, checked against the key's
 * range.  Durations are "500ms", "2s", "3m", "1h", or bare seconds.  Fails
 * the test on an unknown key or a bad value.  The array lives until
 * fake_host_deinit(). */
const corral_policy_value *fake_host_policy_values(const corral_policy *policy,
                                                   const char *const *settings);

/* ------------------------------------------------------------------ */
/* Clock and randomness.                                               */

uint64_t fake_host_now(void);
void fake_host_run_pending(void);
void fake_host_advance(uint64_t usec);
void fake_host_advance_ms(uint64_t msecs);
/* Advances to an absolute time, which must not be in the past. */
void fake_host_advance_to(uint64_t usec);

/* random(bound) returns values[i] % bound, cycling through `values`;
 * with count 0 it goes back to a fixed-seed generator. */
void fake_host_set_random(const uint32_t *values, size_t count);

/* ------------------------------------------------------------------ */
/* Processes.                                                          */

corral_process *fake_host_process(corral_service *svc, pid_t pid);
/* The index-th live process in creation order; fails the test if none. */
pid_t fake_host_pid(corral_service *svc, unsigned index);
/* Makes the next `count` spawns of the service fail as a fork would. */
void fake_host_fail_spawns(corral_service *svc, unsigned count);
/* A valid status record reporting `available_count`. */
void fake_host_status(corral_service *svc, pid_t pid, unsigned available_count);
/* The core gave up waiting for a first status: the process counts as
 * initialized from now on (its SIGKILL is the core's, not recorded). */
void fake_host_first_status_timeout(corral_service *svc, pid_t pid);
/* The process was reaped with `wait_status` (FAKE_EXITED, FAKE_KILLED). */
void fake_host_exit(corral_service *svc, pid_t pid, int wait_status);

/* ------------------------------------------------------------------ */
/* Connections.                                                        */

void fake_host_connect(corral_service *svc, unsigned count);
/* The process takes a client, one from the queue if any: its
 * available_count drops by one through a status record. */
void fake_host_accept(corral_service *svc, pid_t pid);
/* A client of the process leaves: available_count rises by one. */
void fake_host_release(corral_service *svc, pid_t pid);
unsigned fake_host_queued(corral_service *svc);
/* The interval the policy last asked for with sample_load; 0 if never. */
unsigned fake_host_sample_interval(corral_service *svc);

/* ------------------------------------------------------------------ */
/* Timers the policy armed (the fake's throttle timer is not counted). */

unsigned fake_host_timer_count(corral_service *svc);
bool fake_host_has_timer(corral_service *svc, unsigned msecs, bool repeat);

/* ------------------------------------------------------------------ */
/* Recorded requests.  Set FAKE_HOST_TRACE=1 to print them as they come. */

size_t fake_host_action_count(void);
const fake_action *fake_host_action(size_t index);
/* Requests of `kind` for `svc` (NULL: any service) since the last clear. */
unsigned fake_host_count(corral_service *svc, fake_action_kind kind);
const fake_action *fake_host_last(corral_service *svc, fake_action_kind kind);
/* Log lines at `level` whose text is exactly `line`. */
unsigned fake_host_count_log(corral_log_level level, const char *line);
void fake_host_clear_actions(void);

#endif /* FAKE_HOST_H */
