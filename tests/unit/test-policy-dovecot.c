/* SPDX-License-Identifier: MIT */
/*
 * test-policy-dovecot.c - the dovecot policy, rule by rule, on the fake
 * host.
 *
 * Test names start with the rule of reference/dovecot-2.3-master.md §4
 * they check.  Two rules belong to the core and are tested there: M7
 * (reading and validating status records) in the core's status reader
 * tests, and M19 (the 30 s first-status kill) in the core's first-status
 * timer tests; their consequence for the policy is M23 below.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fake-host.h"

const corral_policy *dovecot_LTX_corral_policy_entry(void);

#define SEC 1000000ull
#define T0 FAKE_HOST_START_USEC

/* ------------------------------------------------------------------ */
/* Helpers.                                                            */

static int setup(void **state)
{
    (void)state;
    fake_host_init();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fake_host_deinit();
    return 0;
}

/* Services are called "mysvc" unless a test names them. */
static corral_service *add_service(const fake_service_settings *settings)
{
    fake_service_settings named = *settings;

    if (named.name == NULL)
        named.name = "mysvc";
    return fake_host_add_service(&named, dovecot_LTX_corral_policy_entry(), NULL);
}

static corral_service *start_service(const fake_service_settings *settings)
{
    corral_service *svc = add_service(settings);

    fake_host_start(svc);
    fake_host_started(svc);
    return svc;
}

#define SERVICE(...) start_service(&(fake_service_settings){ __VA_ARGS__ })

static const corral_service_state *state_of(corral_service *svc)
{
    return fake_host_state(svc);
}

static pid_t last_spawned(corral_service *svc)
{
    const fake_action *spawn = fake_host_last(svc, FAKE_SPAWN);

    assert_non_null(spawn);
    return spawn->pid;
}

static unsigned actions(fake_action_kind kind)
{
    return fake_host_count(NULL, kind);
}

static pid_t first_available(corral_service *svc)
{
    const corral_host *host = fake_host_get();

    for (corral_process *p = host->process_next(svc, NULL); p != NULL;
         p = host->process_next(svc, p)) {
        if (p->available_count > 0)
            return p->pid;
    }
    fail_msg("no process of %s has a free slot", state_of(svc)->name);
    return -1;
}

/* One client at a time, as clients arrive in real life, until every
 * process is busy and the service is at process_limit. */
static void fill_to_limit(corral_service *svc)
{
    const corral_service_state *st = state_of(svc);

    while (st->process_count < st->process_limit || st->process_avail > 0) {
        if (st->process_avail == 0) {
            assert_true(st->listening);
            fake_host_connect(svc, 1);
        }
        fake_host_accept(svc, first_available(svc));
        fake_host_run_pending(); /* the loop keeps turning */
    }
    /* A prefork timer armed on the way sees the limit and goes. */
    fake_host_run_pending();
    fake_host_run_pending();
    assert_true(st->listening);
}

/* A client arrives while nobody is available: a process is started for
 * it, serves it, and the client leaves.  Returns that process. */
static pid_t serve_one_client(corral_service *svc)
{
    pid_t pid;

    fake_host_connect(svc, 1);
    pid = last_spawned(svc);
    fake_host_accept(svc, pid);
    fake_host_release(svc, pid);
    return pid;
}

/* Every process reports its first status with all slots free. */
static void all_report_idle(corral_service *svc)
{
    const corral_host *host = fake_host_get();

    for (corral_process *p = host->process_next(svc, NULL); p != NULL;
         p = host->process_next(svc, p))
        fake_host_status(svc, p->pid, state_of(svc)->client_limit);
}

static void assert_log(corral_log_level level, const char *line, unsigned expected)
{
    unsigned found = fake_host_count_log(level, line);

    if (found != expected)
        fail_msg("\"%s\" logged %u times, expected %u", line, found, expected);
}

static void assert_nothing_refused(void)
{
    assert_int_equal(actions(FAKE_REFUSED), 0);
}

/* ------------------------------------------------------------------ */
/* M1, M2: start.                                                      */

static void test_M1_start_listens_while_no_process_is_available(void **state)
{
    corral_service *svc = add_service(&(fake_service_settings){ .type = CORRAL_SERVICE_DEFAULT });

    (void)state;
    fake_host_start(svc);
    assert_int_equal(actions(FAKE_LISTEN), 1);
    assert_true(fake_host_last(svc, FAKE_LISTEN)->on);
    assert_true(state_of(svc)->listening);
}

static void test_M2_started_creates_one_process_for_min_avail_at_once(void **state)
{
    corral_service *svc = SERVICE(.process_min_avail = 3);

    (void)state;
    assert_int_equal(actions(FAKE_SPAWN), 1);
    assert_false(state_of(svc)->listening);
    assert_true(fake_host_has_timer(svc, 0, true));
}

static void test_M2_startup_service_gets_one_process_regardless_of_min(void **state)
{
    corral_service *plain = SERVICE(.name = "plain");
    corral_service *startup = SERVICE(.name = "boot", .type = CORRAL_SERVICE_STARTUP);

    (void)state;
    assert_int_equal(fake_host_count(plain, FAKE_SPAWN), 0);
    assert_true(state_of(plain)->listening);
    assert_int_equal(fake_host_count(startup, FAKE_SPAWN), 1);
    assert_false(state_of(startup)->listening);
    assert_nothing_refused();
}

static void test_M2_startup_service_at_limit_asks_for_nothing_more(void **state)
{
    (void)state;
    SERVICE(.type = CORRAL_SERVICE_STARTUP, .process_limit = 1, .process_min_avail = 1);
    assert_int_equal(actions(FAKE_SPAWN), 1);
    assert_nothing_refused();
}

/* ------------------------------------------------------------------ */
/* M3-M6: listening on behalf of the service.                          */

static void test_M3_master_listens_only_while_no_process_is_available(void **state)
{
    corral_service *svc = SERVICE(.process_limit = 3, .client_limit = 2);
    pid_t pid;

    (void)state;
    assert_true(state_of(svc)->listening);
    fake_host_connect(svc, 1);
    pid = last_spawned(svc);
    assert_false(state_of(svc)->listening);

    fake_host_accept(svc, pid); /* one slot left */
    assert_false(state_of(svc)->listening);
    fake_host_accept(svc, pid); /* none left */
    assert_int_equal(state_of(svc)->process_avail, 0);
    assert_true(state_of(svc)->listening);

    fake_host_release(svc, pid);
    assert_false(state_of(svc)->listening);
}

static void test_M4_listen_stop_clears_pending_and_both_drop_timers(void **state)
{
    corral_service *svc = SERVICE(.type = CORRAL_SERVICE_WORKER, .process_limit = 1,
                                  .client_limit = 1);
    pid_t pid;

    (void)state;
    fill_to_limit(svc);
    pid = fake_host_pid(svc, 0);
    fake_host_connect(svc, 1);
    assert_true(fake_host_has_timer(svc, 10000, false));
    assert_true(fake_host_has_timer(svc, 500, true));

    fake_host_release(svc, pid);
    assert_false(fake_host_has_timer(svc, 10000, false));
    assert_false(fake_host_has_timer(svc, 500, true));

    /* No longer pending: filling up again at the limit listens at once. */
    fake_host_accept(svc, pid);
    assert_true(state_of(svc)->listening);
    fake_host_advance_ms(20000);
    assert_int_equal(actions(FAKE_DROP_QUEUED), 0);
    assert_int_equal(actions(FAKE_LOG), 0);
}

static void test_M5_listen_start_skipped_while_a_process_is_available(void **state)
{
    corral_service *svc = SERVICE(.process_min_avail = 2, .client_limit = 1);

    (void)state;
    fake_host_run_pending();
    fake_host_run_pending();
    assert_int_equal(state_of(svc)->process_avail, 2);
    fake_host_clear_actions();

    fake_host_accept(svc, fake_host_pid(svc, 0));
    assert_int_equal(state_of(svc)->process_avail, 1);
    assert_int_equal(actions(FAKE_LISTEN), 0);
    assert_false(state_of(svc)->listening);
}

static void test_M5_listen_start_skipped_while_throttled(void **state)
{
    corral_service *svc = SERVICE(.process_limit = 3, .client_limit = 1);
    pid_t pid;

    (void)state;
    fake_host_connect(svc, 1);
    pid = last_spawned(svc);
    fake_host_accept(svc, pid);
    fake_host_fail_spawns(svc, 1);
    fake_host_connect(svc, 1);
    assert_true(state_of(svc)->throttled);

    fake_host_release(svc, pid);
    fake_host_clear_actions();
    fake_host_accept(svc, pid); /* nobody available again, but throttled */
    assert_int_equal(actions(FAKE_LISTEN), 0);
    assert_nothing_refused();

    fake_host_advance_ms(2000);
    assert_false(state_of(svc)->throttled);
    assert_true(state_of(svc)->listening);
}

static void test_M5_listen_start_skipped_at_limit_while_pending(void **state)
{
    corral_service *svc = SERVICE(.process_limit = 2, .client_limit = 1);
    const corral_policy *policy = dovecot_LTX_corral_policy_entry();

    (void)state;
    fill_to_limit(svc);
    fake_host_connect(svc, 1);
    fake_host_clear_actions();

    /* No core event reaches M5 in this state; call it through the one
     * callback that only runs M5. */
    policy->throttle_ended(fake_host_policy_state(svc));
    assert_int_equal(actions(FAKE_LISTEN), 0);
    assert_true(fake_host_has_timer(svc, 10000, false));
}

static void test_M5_listen_start_clears_pending_and_drop_timer(void **state)
{
    corral_service *svc = SERVICE(.process_limit = 2, .client_limit = 1);

    (void)state;
    fill_to_limit(svc);
    fake_host_connect(svc, 1);
    assert_true(fake_host_has_timer(svc, 10000, false));

    fake_host_exit(svc, fake_host_pid(svc, 0), 0);
    assert_true(state_of(svc)->listening);
    assert_int_equal(fake_host_timer_count(svc), 0);

    /* Not pending any more: the queued client gets a new process. */
    fake_host_run_pending();
    assert_int_equal(state_of(svc)->process_count, 2);
    assert_int_equal(actions(FAKE_DROP_ONE), 0);
}

static void test_M6_readable_below_limit_spawns_one_and_stops_listening(void **state)
{
    corral_service *svc = SERVICE(.process_limit = 3);

    (void)state;
    fake_host_clear_actions();
    fake_host_connect(svc, 2);
    assert_int_equal(actions(FAKE_SPAWN), 1);
    assert_int_equal(actions(FAKE_LISTEN), 1);
    assert_false(fake_host_last(svc, FAKE_LISTEN)->on);
    /* The new process accepts both; the master does not spawn again. */
    fake_host_run_pending();
    assert_int_equal(actions(FAKE_SPAWN), 1);
}

static void test_M6_failed_spawn_throttles(void **state)
{
    corral_service *svc = SERVICE(.process_limit = 3);

    (void)state;
    fake_host_fail_spawns(svc, 1);
    fake_host_connect(svc, 1);
    assert_int_equal(actions(FAKE_SPAWN_FAILED), 1);
    assert_log(CORRAL_LOG_ERROR, "service(mysvc): command startup failed, throttling for 2.000 secs", 1);
    assert_int_equal(fake_host_last(svc, FAKE_THROTTLE)->msecs, 2000);
    assert_false(state_of(svc)->listening);
}

static void test_M6_readable_at_limit_spawns_nothing(void **state)
{
    corral_service *svc = SERVICE(.process_limit = 2, .client_limit = 1);

    (void)state;
    fill_to_limit(svc);
    fake_host_clear_actions();
    fake_host_connect(svc, 1);
    assert_int_equal(actions(FAKE_SPAWN), 0);
    assert_nothing_refused();
    assert_int_equal(actions(FAKE_LOG), 1);
}

/* ------------------------------------------------------------------ */
/* M8, M9: status changes.                                             */

static void test_M8_decrease_cancels_idle_timer(void **state)
{
    corral_service *svc = SERVICE(.process_limit = 3, .client_limit = 2, .idle_kill_secs = 10);
    pid_t pid;

    (void)state;
    pid = serve_one_client(svc);
    assert_int_equal(fake_host_timer_count(svc), 1);

    fake_host_accept(svc, pid);
    assert_int_equal(fake_host_timer_count(svc), 0);
    fake_host_advance_ms(30000);
    assert_int_equal(actions(FAKE_SIGNAL), 0);
}

static void test_M8_last_slot_taken_starts_a_process_for_min_avail(void **state)
{
    corral_service *svc = SERVICE(.process_min_avail = 1, .process_limit = 3, .client_limit = 1);

    (void)state;
    fake_host_clear_actions();
    fake_host_accept(svc, fake_host_pid(svc, 0));
    assert_int_equal(actions(FAKE_SPAWN), 1);
    assert_int_equal(state_of(svc)->process_avail, 1);
    assert_int_equal(actions(FAKE_LISTEN), 0);
}

static void test_M8_last_slot_taken_without_min_listens(void **state)
{
    corral_service *svc = SERVICE(.process_limit = 3, .client_limit = 1);
    pid_t pid;

    (void)state;
    fake_host_connect(svc, 1);
    pid = last_spawned(svc);
    fake_host_clear_actions();
    fake_host_accept(svc, pid);
    assert_int_equal(actions(FAKE_SPAWN), 0);
    assert_true(fake_host_last(svc, FAKE_LISTEN)->on);
}

static void test_M8_login_full_only_when_last_process_fills_at_limit(void **state)
{
    corral_service *svc = SERVICE(.type = CORRAL_SERVICE_LOGIN, .process_limit = 2,
                                  .client_limit = 1);

    (void)state;
    fake_host_connect(svc, 1);
    fake_host_accept(svc, last_spawned(svc)); /* full, but below the limit */
    assert_int_equal(actions(FAKE_LOGIN_NOTIFY), 0);

    fake_host_connect(svc, 1);
    fake_host_accept(svc, last_spawned(svc));
    assert_int_equal(actions(FAKE_LOGIN_NOTIFY), 1);
    assert_true(fake_host_last(svc, FAKE_LOGIN_NOTIFY)->on);
    assert_int_equal(fake_host_last(svc, FAKE_SIGNAL_ALL)->signo, SIGUSR1);
    assert_int_equal(fake_host_last(svc, FAKE_SIGNAL_ALL)->count, 2);
}

static void test_M9_first_free_slot_stops_listening(void **state)
{
    corral_service *svc = SERVICE(.process_limit = 3, .client_limit = 1);
    pid_t pid;

    (void)state;
    fake_host_connect(svc, 1);
    pid = last_spawned(svc);
    fake_host_accept(svc, pid);
    assert_true(state_of(svc)->listening);

    fake_host_release(svc, pid);
    assert_false(state_of(svc)->listening);
    assert_false(fake_host_last(svc, FAKE_LISTEN)->on);
}

static void test_M9_login_nonfull_on_increase(void **state)
{
    corral_service *svc = SERVICE(.type = CORRAL_SERVICE_LOGIN, .process_limit = 2,
                                  .client_limit = 2);
    pid_t pid;

    (void)state;
    fill_to_limit(svc);
    assert_true(fake_host_last(svc, FAKE_LOGIN_NOTIFY)->on);
    pid = fake_host_pid(svc, 1);

    fake_host_release(svc, pid);
    assert_int_equal(actions(FAKE_LOGIN_NOTIFY), 2);
    assert_false(fake_host_last(svc, FAKE_LOGIN_NOTIFY)->on);
    /* Still NONFULL: a further increase changes nothing. */
    fake_host_release(svc, pid);
    assert_int_equal(actions(FAKE_LOGIN_NOTIFY), 2);
}

/* ------------------------------------------------------------------ */
/* M10, M12, M13: pre-forking.                                         */

static void test_M10_prefork_timer_is_0ms_and_repeating(void **state)
{
    corral_service *svc = SERVICE(.process_min_avail = 2);

    (void)state;
    assert_int_equal(actions(FAKE_SPAWN), 1);
    assert_int_equal(fake_host_timer_count(svc), 1);
    assert_true(fake_host_has_timer(svc, 0, true));
}

static void test_M10_nothing_when_min_avail_met(void **state)
{
    corral_service *svc = SERVICE(.process_min_avail = 1, .client_limit = 2);

    (void)state;
    assert_int_equal(actions(FAKE_SPAWN), 1);
    assert_int_equal(fake_host_timer_count(svc), 0);
    /* One slot taken, the process is still available. */
    fake_host_accept(svc, fake_host_pid(svc, 0));
    assert_int_equal(actions(FAKE_SPAWN), 1);
    assert_int_equal(fake_host_timer_count(svc), 0);
}

static void test_M10_nothing_at_process_limit(void **state)
{
    corral_service *svc = SERVICE(.process_min_avail = 2, .process_limit = 2, .client_limit = 1);

    (void)state;
    fake_host_run_pending();
    fake_host_run_pending();
    assert_int_equal(state_of(svc)->process_count, 2);
    fake_host_clear_actions();

    fake_host_accept(svc, fake_host_pid(svc, 0));
    assert_int_equal(state_of(svc)->process_avail, 1);
    assert_int_equal(fake_host_timer_count(svc), 0);
    fake_host_run_pending();
    assert_int_equal(actions(FAKE_SPAWN), 0);
    assert_nothing_refused();
}

static void test_M12_batch_capped_at_room_below_process_limit(void **state)
{
    corral_service *svc = SERVICE(.process_min_avail = 3, .process_limit = 4, .client_limit = 1);

    (void)state;
    fake_host_run_pending();
    fake_host_run_pending();
    assert_int_equal(state_of(svc)->process_count, 3);

    fake_host_accept(svc, fake_host_pid(svc, 0));
    fake_host_accept(svc, fake_host_pid(svc, 1));
    assert_int_equal(state_of(svc)->process_avail, 1);
    fake_host_clear_actions();
    fake_host_run_pending();
    fake_host_run_pending();
    /* Two short of min, room for one: not a failure to throttle for. */
    assert_int_equal(actions(FAKE_SPAWN), 1);
    assert_int_equal(actions(FAKE_THROTTLE), 0);
    assert_int_equal(state_of(svc)->process_count, 4);
    assert_int_equal(fake_host_timer_count(svc), 0);
    assert_nothing_refused();
}

static void test_M12_failed_spawn_throttles_and_ends_the_batch(void **state)
{
    corral_service *svc = SERVICE(.process_min_avail = 5);

    (void)state;
    fake_host_fail_spawns(svc, 1);
    fake_host_run_pending();
    fake_host_run_pending();
    assert_int_equal(actions(FAKE_SPAWN_FAILED), 1);
    assert_int_equal(actions(FAKE_SPAWN), 1);
    assert_int_equal(actions(FAKE_THROTTLE), 1);
    assert_int_equal(fake_host_timer_count(svc), 0);
    assert_nothing_refused();
}

static void test_M12_spawning_stops_listening(void **state)
{
    corral_service *svc = add_service(&(fake_service_settings){ .process_min_avail = 1 });

    (void)state;
    fake_host_start(svc);
    assert_true(state_of(svc)->listening);
    fake_host_started(svc);
    assert_int_equal(actions(FAKE_SPAWN), 1);
    assert_false(state_of(svc)->listening);
}

static void test_M13_first_prefork_tick_only_syncs_counter(void **state)
{
    corral_service *svc = SERVICE(.process_min_avail = 3);

    (void)state;
    assert_int_equal(actions(FAKE_SPAWN), 1);
    fake_host_run_pending();
    assert_int_equal(actions(FAKE_SPAWN), 1);
    assert_true(fake_host_has_timer(svc, 0, true));
    fake_host_run_pending();
    assert_int_equal(actions(FAKE_SPAWN), 3);
    assert_int_equal(fake_host_timer_count(svc), 0);
}

static void test_M13_spawn_elsewhere_postpones_preforking(void **state)
{
    corral_service *svc = SERVICE(.process_min_avail = 3);
    corral_service *other = fake_host_add_service(&(fake_service_settings){ .name = "other" },
                                                  NULL, NULL);

    (void)state;
    fake_host_run_pending(); /* syncs */
    assert_true(fake_host_get()->spawn(other));
    fake_host_run_pending(); /* the master was busy: syncs again */
    assert_int_equal(fake_host_count(svc, FAKE_SPAWN), 1);
    fake_host_run_pending();
    assert_int_equal(fake_host_count(svc, FAKE_SPAWN), 3);
}

static void test_M13_full_batch_of_10_keeps_the_timer(void **state)
{
    corral_service *svc = SERVICE(.process_min_avail = 25);
    static const unsigned expected_spawns[] = { 1, 11, 11, 21, 21, 25 };

    (void)state;
    for (size_t tick = 0; tick < sizeof(expected_spawns) / sizeof(expected_spawns[0]); tick++) {
        fake_host_run_pending();
        assert_int_equal(actions(FAKE_SPAWN), expected_spawns[tick]);
    }
    assert_int_equal(fake_host_timer_count(svc), 0);
}

static void test_M13_full_batch_reaching_min_removes_the_timer(void **state)
{
    corral_service *svc = SERVICE(.process_min_avail = 11);

    (void)state;
    fake_host_run_pending();
    fake_host_run_pending();
    assert_int_equal(actions(FAKE_SPAWN), 11);
    assert_int_equal(fake_host_timer_count(svc), 0);
}

/* ------------------------------------------------------------------ */
/* M11, M11a: idle processes.                                          */

static void test_M11_idle_timer_is_idle_kill_plus_jitter_and_repeats(void **state)
{
    static const uint32_t jitter[] = { 37 };
    corral_service *svc;

    (void)state;
    fake_host_set_random(jitter, 1);
    svc = SERVICE(.process_limit = 3, .client_limit = 2, .idle_kill_secs = 10);
    serve_one_client(svc);
    assert_int_equal(fake_host_timer_count(svc), 1);
    assert_true(fake_host_has_timer(svc, 10370, true));
}

static void test_M11_no_idle_timer_at_or_below_min(void **state)
{
    corral_service *svc = SERVICE(.process_min_avail = 2, .client_limit = 2, .idle_kill_secs = 10);

    (void)state;
    fake_host_run_pending();
    fake_host_run_pending();
    all_report_idle(svc);
    assert_int_equal(state_of(svc)->process_avail, 2);
    assert_int_equal(fake_host_timer_count(svc), 0);
}

static void test_M11_no_idle_timer_when_idle_kill_is_never(void **state)
{
    corral_service *svc = SERVICE(.process_limit = 3, .idle_kill_secs = CORRAL_IDLE_KILL_NEVER);

    (void)state;
    serve_one_client(svc);
    assert_int_equal(fake_host_timer_count(svc), 0);
}

static void test_M11_no_idle_timer_while_a_client_is_served(void **state)
{
    corral_service *svc = SERVICE(.process_limit = 3, .client_limit = 2, .idle_kill_secs = 10);

    (void)state;
    fake_host_connect(svc, 1);
    fake_host_accept(svc, last_spawned(svc));
    assert_int_equal(fake_host_timer_count(svc), 0);
}

static void test_M11_one_timer_per_process_however_many_records(void **state)
{
    static const uint32_t jitter[] = { 10, 90 };
    corral_service *svc;
    pid_t pid;

    (void)state;
    fake_host_set_random(jitter, 2);
    svc = SERVICE(.process_limit = 3, .client_limit = 2, .idle_kill_secs = 10);
    pid = serve_one_client(svc);
    fake_host_advance_ms(5000);
    fake_host_status(svc, pid, 2);
    assert_int_equal(fake_host_timer_count(svc), 1);
    /* The first timer runs on: due 10.1 s after the first record. */
    fake_host_advance_ms(5099);
    assert_int_equal(actions(FAKE_SIGNAL), 0);
    fake_host_advance_ms(1);
    assert_int_equal(actions(FAKE_SIGNAL), 1);
}

static void test_M11_already_idle_process_gets_a_timer_on_its_next_record(void **state)
{
    corral_service *svc = SERVICE(.process_min_avail = 1, .process_limit = 3, .client_limit = 1,
                                  .idle_kill_secs = 10);
    pid_t first, second;

    (void)state;
    first = fake_host_pid(svc, 0);
    fake_host_status(svc, first, 1);
    fake_host_accept(svc, first); /* full: a second process is started */
    second = last_spawned(svc);
    fake_host_status(svc, second, 1);
    assert_int_equal(fake_host_timer_count(svc), 0);

    /* avail rises above min with the first process; the second, idle
     * already, is not looked at until it reports again. */
    fake_host_release(svc, first);
    assert_int_equal(fake_host_timer_count(svc), 1);
    fake_host_status(svc, second, 1);
    assert_int_equal(fake_host_timer_count(svc), 2);
}

static void test_M11a_tick_at_or_below_min_disarms_without_killing(void **state)
{
    corral_service *svc = SERVICE(.process_min_avail = 1, .process_limit = 3, .client_limit = 1,
                                  .idle_kill_secs = 10);
    pid_t first, second;

    (void)state;
    first = fake_host_pid(svc, 0);
    fake_host_accept(svc, first);
    second = last_spawned(svc);
    fake_host_release(svc, first); /* two idle: a timer for the first */
    assert_int_equal(fake_host_timer_count(svc), 1);
    fake_host_accept(svc, second); /* back to one available */
    assert_int_equal(state_of(svc)->process_avail, 1);

    fake_host_advance_ms(11000);
    assert_int_equal(actions(FAKE_SIGNAL), 0);
    assert_int_equal(fake_host_timer_count(svc), 0);
}

static void test_M11a_tick_sends_sigint_and_keeps_the_timer(void **state)
{
    static const uint32_t jitter[] = { 0 };
    corral_service *svc;
    pid_t pid;

    (void)state;
    fake_host_set_random(jitter, 1);
    svc = SERVICE(.process_limit = 3, .client_limit = 2, .idle_kill_secs = 10);
    pid = serve_one_client(svc);

    fake_host_advance_ms(9999);
    assert_int_equal(actions(FAKE_SIGNAL), 0);
    fake_host_advance_ms(1);
    assert_int_equal(actions(FAKE_SIGNAL), 1);
    assert_int_equal(fake_host_last(svc, FAKE_SIGNAL)->pid, pid);
    assert_int_equal(fake_host_last(svc, FAKE_SIGNAL)->signo, SIGINT);
    assert_true(fake_host_has_timer(svc, 10000, true));

    fake_host_exit(svc, pid, 0);
    assert_int_equal(fake_host_timer_count(svc), 0);
}

static void test_M11a_ignoring_idle_sigint_marks_busy(void **state)
{
    static const uint32_t jitter[] = { 0 };
    corral_service *svc;
    pid_t pid;

    (void)state;
    fake_host_set_random(jitter, 1);
    svc = SERVICE(.process_limit = 3, .client_limit = 2, .idle_kill_secs = 3);
    pid = serve_one_client(svc);

    fake_host_advance_ms(3000);
    assert_int_equal(actions(FAKE_SIGNAL), 1);
    assert_int_equal(actions(FAKE_LOG), 0);
    fake_host_advance_ms(3000);
    assert_int_equal(actions(FAKE_SIGNAL), 1);
    assert_log(CORRAL_LOG_ERROR, "service(mysvc): Process 1000 is ignoring idle SIGINT", 1);
    assert_int_equal(fake_host_last(svc, FAKE_MARK_BUSY)->pid, pid);
    assert_int_equal(state_of(svc)->process_avail, 0);
    /* As if it had reported 0: nobody is available, so listen. */
    assert_true(state_of(svc)->listening);
    assert_int_equal(fake_host_timer_count(svc), 0);

    fake_host_advance_ms(60000);
    assert_int_equal(actions(FAKE_SIGNAL), 1);
    assert_int_equal(actions(FAKE_MARK_BUSY), 1);
}

static void test_M11a_ignoring_process_with_min_avail_gets_replaced(void **state)
{
    static const uint32_t jitter[] = { 0 };
    corral_service *svc;
    pid_t first;

    (void)state;
    fake_host_set_random(jitter, 1);
    svc = SERVICE(.process_min_avail = 1, .process_limit = 3, .client_limit = 1,
                  .idle_kill_secs = 10);
    first = fake_host_pid(svc, 0);
    fake_host_accept(svc, first);
    fake_host_status(svc, last_spawned(svc), 1);
    fake_host_release(svc, first); /* avail 2 > min 1: timer for the first */

    fake_host_advance_ms(20000);
    assert_int_equal(actions(FAKE_MARK_BUSY), 1);
    /* Still one available (the second), so nothing new is needed. */
    assert_int_equal(actions(FAKE_SPAWN), 2);
    assert_int_equal(state_of(svc)->process_avail, 1);
    assert_false(state_of(svc)->listening);
}

static void test_M11a_status_after_sigint_is_not_ignoring(void **state)
{
    static const uint32_t jitter[] = { 0 };
    corral_service *svc;
    pid_t pid;

    (void)state;
    fake_host_set_random(jitter, 1);
    svc = SERVICE(.process_limit = 3, .client_limit = 2, .idle_kill_secs = 10);
    pid = serve_one_client(svc);

    fake_host_advance_ms(10000);
    fake_host_advance_ms(100);
    fake_host_status(svc, pid, 2); /* refused to die, but alive */
    fake_host_advance_ms(9900);
    assert_int_equal(actions(FAKE_SIGNAL), 2);
    assert_int_equal(actions(FAKE_MARK_BUSY), 0);
    assert_int_equal(actions(FAKE_LOG), 0);
}

/* Whole seconds, and one of grace: a record in the second before the
 * SIGINT still counts as an answer. */
static void test_M11a_sigint_one_second_after_status_is_not_yet_ignored(void **state)
{
    static const uint32_t jitter[] = { 0 };
    corral_service *svc;
    pid_t pid;

    (void)state;
    fake_host_set_random(jitter, 1);
    svc = SERVICE(.process_limit = 3, .client_limit = 2, .idle_kill_secs = 10);
    pid = serve_one_client(svc);
    fake_host_advance_ms(9500);
    fake_host_status(svc, pid, 2); /* 1009.5 s */
    fake_host_advance_ms(500);     /* 1010.0 s: SIGINT */
    assert_int_equal(actions(FAKE_SIGNAL), 1);
    fake_host_advance_ms(10000);   /* 1020.0 s: 1010 is not > 1009 + 1 */
    assert_int_equal(actions(FAKE_SIGNAL), 2);
    assert_int_equal(actions(FAKE_MARK_BUSY), 0);
    fake_host_advance_ms(10000);   /* 1030.0 s: 1020 > 1009 + 1 */
    assert_int_equal(actions(FAKE_MARK_BUSY), 1);
}

static void test_M11a_login_sigusr1_is_not_an_idle_sigint(void **state)
{
    static const uint32_t jitter[] = { 0 };
    corral_service *svc;
    pid_t second;

    (void)state;
    fake_host_set_random(jitter, 1);
    svc = SERVICE(.type = CORRAL_SERVICE_LOGIN, .process_limit = 2, .client_limit = 1,
                  .idle_kill_secs = 10);
    fill_to_limit(svc); /* FULL, SIGUSR1 at 0 s */
    second = fake_host_pid(svc, 1);
    fake_host_release(svc, second); /* NONFULL; idle timer for it */
    fake_host_advance_ms(2000);      /* the held-back SIGUSR1 */
    assert_int_equal(actions(FAKE_SIGNAL_ALL), 2);

    fake_host_advance_ms(8000);
    assert_int_equal(actions(FAKE_SIGNAL), 1);
    assert_int_equal(fake_host_last(svc, FAKE_SIGNAL)->signo, SIGINT);
    assert_int_equal(actions(FAKE_MARK_BUSY), 0);
}

static void test_M11a_only_the_first_surplus_timer_kills(void **state)
{
    static const uint32_t jitter[] = { 10, 20, 30 };
    corral_service *svc;

    (void)state;
    fake_host_set_random(jitter, 3);
    svc = SERVICE(.process_min_avail = 2, .process_limit = 3, .client_limit = 2,
                  .idle_kill_secs = 10);
    fill_to_limit(svc);
    for (unsigned i = 0; i < 3; i++) {
        pid_t pid = fake_host_pid(svc, i);
        fake_host_release(svc, pid);
        fake_host_release(svc, pid);
    }
    all_report_idle(svc); /* every process reports once more */
    assert_int_equal(fake_host_timer_count(svc), 3);

    fake_host_advance_ms(10100);
    assert_int_equal(actions(FAKE_SIGNAL), 1);
    fake_host_exit(svc, fake_host_last(svc, FAKE_SIGNAL)->pid, 0);
    fake_host_advance_ms(60000);
    assert_int_equal(actions(FAKE_SIGNAL), 1);
    assert_int_equal(fake_host_timer_count(svc), 0);
    assert_int_equal(state_of(svc)->process_count, 2);
}

/* ------------------------------------------------------------------ */
/* M14-M18: at process_limit.                                          */

static void test_M14_warning_names_process_limit(void **state)
{
    corral_service *svc = SERVICE(.process_limit = 3, .client_limit = 2);

    (void)state;
    fill_to_limit(svc);
    fake_host_connect(svc, 1);
    assert_log(CORRAL_LOG_WARNING,
               "service(mysvc): process_limit (3) reached, client connections are being dropped", 1);
}

static void test_M14_warning_names_client_limit_when_single_process(void **state)
{
    corral_service *svc = SERVICE(.process_limit = 1, .client_limit = 5);

    (void)state;
    fill_to_limit(svc);
    fake_host_connect(svc, 1);
    assert_log(CORRAL_LOG_WARNING,
               "service(mysvc): client_limit (5) reached, client connections are being dropped", 1);
}

static void test_M14_warning_names_client_limit_service_count_when_one_per_process(void **state)
{
    corral_service *svc = SERVICE(.process_limit = 1, .service_count = 1);

    (void)state;
    assert_int_equal(state_of(svc)->client_limit, 1);
    fill_to_limit(svc);
    fake_host_connect(svc, 1);
    assert_log(CORRAL_LOG_WARNING,
               "service(mysvc): client_limit/service_count (1) reached, "
               "client connections are being dropped", 1);
}

static void test_M14_warning_at_most_once_per_second(void **state)
{
    corral_service *svc = SERVICE(.process_limit = 2, .client_limit = 1);

    (void)state;
    fill_to_limit(svc);
    fake_host_connect(svc, 1);       /* 1000.0 s: warns, pending */
    fake_host_advance_ms(10000);     /* 1010.0 s: grace period over */
    assert_int_equal(actions(FAKE_LOG), 1);
    fake_host_connect(svc, 1);       /* warns */
    fake_host_advance_ms(999);
    fake_host_connect(svc, 1);       /* 1010.999 s: same second */
    assert_int_equal(actions(FAKE_LOG), 2);
    fake_host_advance_ms(1);
    fake_host_connect(svc, 1);       /* 1011.0 s */
    assert_int_equal(actions(FAKE_LOG), 3);
    assert_int_equal(actions(FAKE_DROP_ONE), 3);
}

static void test_M15_default_type_warns_at_once_and_waits(void **state)
{
    corral_service *svc = SERVICE(.process_limit = 2, .client_limit = 1);

    (void)state;
    fill_to_limit(svc);
    fake_host_clear_actions();
    fake_host_connect(svc, 1);
    assert_int_equal(actions(FAKE_LOG), 1);
    assert_false(state_of(svc)->listening);
    assert_true(fake_host_has_timer(svc, 10000, false));
    assert_int_equal(actions(FAKE_DROP_ONE), 0);
    assert_int_equal(actions(FAKE_LOGIN_NOTIFY), 0);
}

static void test_M15_login_notifies_full_and_waits_on_every_event(void **state)
{
    corral_service *svc = SERVICE(.type = CORRAL_SERVICE_LOGIN, .process_limit = 1,
                                  .client_limit = 1);

    (void)state;
    fill_to_limit(svc);
    assert_true(fake_host_last(svc, FAKE_LOGIN_NOTIFY)->on);
    fake_host_connect(svc, 1);
    assert_false(state_of(svc)->listening);
    fake_host_advance_ms(10000);
    assert_int_equal(actions(FAKE_DROP_QUEUED), 1);
    assert_true(state_of(svc)->listening);

    /* Pending again after the drop, yet a login service waits again
     * instead of closing the client. */
    fake_host_connect(svc, 1);
    assert_int_equal(actions(FAKE_DROP_ONE), 0);
    assert_false(state_of(svc)->listening);
    assert_true(fake_host_has_timer(svc, 10000, false));
    assert_int_equal(actions(FAKE_LOG), 2);
}

static void test_M15_worker_warning_delayed_500ms(void **state)
{
    corral_service *svc = SERVICE(.type = CORRAL_SERVICE_WORKER, .process_limit = 1,
                                  .client_limit = 1);
    const char *warning =
        "service(mysvc): client_limit (1) reached, client connections are being dropped";

    (void)state;
    fill_to_limit(svc);
    fake_host_connect(svc, 1);
    assert_int_equal(actions(FAKE_LOG), 0);
    assert_true(fake_host_has_timer(svc, 500, true));

    fake_host_advance_ms(499);
    assert_int_equal(actions(FAKE_LOG), 0);
    fake_host_advance_ms(1);
    assert_log(CORRAL_LOG_WARNING, warning, 1);
    fake_host_advance_ms(500); /* 1001.0 s */
    assert_log(CORRAL_LOG_WARNING, warning, 2);
    fake_host_advance_ms(500); /* 1001.5 s: same second */
    assert_log(CORRAL_LOG_WARNING, warning, 2);

    /* Once a second until the drop timer ends the grace period. */
    fake_host_advance_ms(9000);
    assert_log(CORRAL_LOG_WARNING, warning, 10);
    assert_int_equal(actions(FAKE_DROP_QUEUED), 1);
    assert_int_equal(fake_host_timer_count(svc), 0);
}

static void test_M15_after_grace_period_each_client_is_closed_at_once(void **state)
{
    corral_service *svc = SERVICE(.process_limit = 2, .client_limit = 1);

    (void)state;
    fill_to_limit(svc);
    fake_host_connect(svc, 1);
    fake_host_advance_ms(10000);
    fake_host_clear_actions();

    fake_host_connect(svc, 1);
    assert_int_equal(actions(FAKE_DROP_ONE), 1);
    assert_int_equal(fake_host_last(svc, FAKE_DROP_ONE)->count, 1);
    assert_int_equal(fake_host_queued(svc), 0);
    assert_true(state_of(svc)->listening);
    assert_int_equal(fake_host_timer_count(svc), 0);
}

static void test_M16_pending_stops_listening_for_10s(void **state)
{
    corral_service *svc = SERVICE(.process_limit = 2, .client_limit = 1);

    (void)state;
    fill_to_limit(svc);
    fake_host_connect(svc, 1);
    assert_false(state_of(svc)->listening);
    assert_int_equal(fake_host_timer_count(svc), 1);
    assert_true(fake_host_has_timer(svc, 10000, false));

    fake_host_advance_ms(9999);
    assert_int_equal(actions(FAKE_DROP_QUEUED), 0);
    fake_host_advance_ms(1);
    assert_int_equal(actions(FAKE_DROP_QUEUED), 1);
}

static void test_M17_drop_timeout_accepts_and_closes(void **state)
{
    corral_service *svc = SERVICE(.process_limit = 2, .client_limit = 1);

    (void)state;
    fill_to_limit(svc);
    fake_host_connect(svc, 3);
    fake_host_advance_ms(10000);
    assert_int_equal(fake_host_last(svc, FAKE_DROP_QUEUED)->count, 3);
    assert_int_equal(fake_host_queued(svc), 0);
    assert_true(state_of(svc)->listening);
    assert_int_equal(fake_host_timer_count(svc), 0);

    /* Still pending: the next client is closed, no new grace period. */
    fake_host_connect(svc, 1);
    assert_int_equal(actions(FAKE_DROP_ONE), 1);
    assert_false(fake_host_has_timer(svc, 10000, false));
}

static void test_M18_free_slot_cancels_drop_and_warning(void **state)
{
    corral_service *svc = SERVICE(.type = CORRAL_SERVICE_WORKER, .process_limit = 2,
                                  .client_limit = 1);

    (void)state;
    fill_to_limit(svc);
    fake_host_connect(svc, 1);
    fake_host_advance_ms(300);
    fake_host_release(svc, fake_host_pid(svc, 0));
    assert_false(state_of(svc)->listening);
    assert_false(fake_host_has_timer(svc, 10000, false));
    assert_false(fake_host_has_timer(svc, 500, true));

    fake_host_advance_ms(20000);
    assert_int_equal(actions(FAKE_LOG), 0);
    assert_int_equal(actions(FAKE_DROP_QUEUED), 0);
    assert_int_equal(fake_host_queued(svc), 1); /* for the process to take */
}

/* ------------------------------------------------------------------ */
/* M20-M23: throttling and exits.                                      */

/* A connection starts a process that dies before its first status. */
static void failed_startup(corral_service *svc)
{
    fake_host_connect(svc, 1);
    fake_host_exit(svc, last_spawned(svc), FAKE_EXITED(1));
}

static void test_M20_throttle_doubles_to_60s_and_resets_on_clean_exit(void **state)
{
    corral_service *svc = SERVICE(.process_limit = 3);
    static const unsigned expected[] = { 2000, 4000, 8000, 16000, 32000, 60000, 60000 };
    static const char *const lines[] = {
        "service(mysvc): command startup failed, throttling for 2.000 secs",
        "service(mysvc): command startup failed, throttling for 4.000 secs",
        "service(mysvc): command startup failed, throttling for 8.000 secs",
        "service(mysvc): command startup failed, throttling for 16.000 secs",
        "service(mysvc): command startup failed, throttling for 32.000 secs",
        "service(mysvc): command startup failed, throttling for 60.000 secs",
    };
    pid_t pid;

    (void)state;
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
        failed_startup(svc);
        assert_int_equal(fake_host_last(svc, FAKE_THROTTLE)->msecs, expected[i]);
        fake_host_advance_ms(expected[i]);
        assert_true(state_of(svc)->listening);
    }
    for (size_t i = 0; i < 5; i++)
        assert_log(CORRAL_LOG_ERROR, lines[i], 1);
    assert_log(CORRAL_LOG_ERROR, lines[5], 2);

    pid = serve_one_client(svc);
    fake_host_exit(svc, pid, 0);
    fake_host_clear_actions();
    failed_startup(svc);
    assert_log(CORRAL_LOG_ERROR, lines[0], 1);
}

static void test_M20_throttle_end_listens_but_does_not_prefork(void **state)
{
    corral_service *svc = SERVICE(.process_min_avail = 2);

    (void)state;
    fake_host_exit(svc, fake_host_pid(svc, 0), FAKE_EXITED(1));
    assert_true(state_of(svc)->throttled);
    fake_host_run_pending();
    fake_host_run_pending();
    assert_int_equal(fake_host_timer_count(svc), 0);

    fake_host_advance_ms(2000);
    assert_false(state_of(svc)->throttled);
    assert_true(state_of(svc)->listening);
    fake_host_advance_ms(60000);
    assert_int_equal(actions(FAKE_SPAWN), 1);
    assert_nothing_refused();

    fake_host_connect(svc, 1);
    assert_int_equal(actions(FAKE_SPAWN), 2);
}

static void test_M20_no_second_throttle_while_throttled(void **state)
{
    corral_service *svc = SERVICE(.process_limit = 3, .client_limit = 1);
    pid_t first, second;

    (void)state;
    fake_host_connect(svc, 1);
    first = last_spawned(svc);
    fake_host_accept(svc, first);
    fake_host_connect(svc, 1);
    second = last_spawned(svc);
    fake_host_exit(svc, second, FAKE_EXITED(1));
    fake_host_exit(svc, first, FAKE_KILLED(SIGSEGV));
    assert_int_equal(actions(FAKE_THROTTLE), 1);
    assert_int_equal(actions(FAKE_LOG), 1);
    assert_nothing_refused();
}

static void test_M21_failure_before_first_status_throttles(void **state)
{
    corral_service *svc = SERVICE(.process_min_avail = 2);

    (void)state;
    fake_host_exit(svc, fake_host_pid(svc, 0), FAKE_EXITED(1));
    assert_int_equal(actions(FAKE_THROTTLE), 1);
    assert_log(CORRAL_LOG_ERROR, "service(mysvc): command startup failed, throttling for 2.000 secs", 1);
    assert_int_equal(actions(FAKE_SPAWN), 1);
    assert_false(state_of(svc)->listening);
}

static void test_M21_storm_throttles_on_eleventh_failure_in_one_second(void **state)
{
    corral_service *svc = SERVICE(.process_min_avail = 1);

    (void)state;
    for (unsigned failure = 1; failure <= 11; failure++) {
        pid_t pid = last_spawned(svc);
        fake_host_status(svc, pid, 1000);
        fake_host_exit(svc, pid, FAKE_EXITED(3));
        assert_int_equal(actions(FAKE_THROTTLE), failure == 11 ? 1 : 0);
    }
    assert_int_equal(actions(FAKE_SPAWN), 11);
    assert_log(CORRAL_LOG_ERROR, "service(mysvc): command startup failed, throttling for 2.000 secs", 1);
    assert_nothing_refused();
}

static void test_M21_failures_spread_over_seconds_do_not_throttle(void **state)
{
    corral_service *svc = SERVICE(.process_min_avail = 1);

    (void)state;
    for (unsigned failure = 1; failure <= 30; failure++) {
        pid_t pid = last_spawned(svc);
        fake_host_status(svc, pid, 1000);
        fake_host_exit(svc, pid, FAKE_EXITED(3));
        if (failure % 10 == 0)
            fake_host_advance_ms(1000);
    }
    assert_int_equal(actions(FAKE_THROTTLE), 0);
    assert_int_equal(actions(FAKE_SPAWN), 31);
}

static void test_M21_clean_exit_before_status_respawns_without_throttle(void **state)
{
    corral_service *svc = SERVICE(.process_min_avail = 1);

    (void)state;
    for (unsigned i = 0; i < 20; i++)
        fake_host_exit(svc, last_spawned(svc), 0);
    assert_int_equal(actions(FAKE_THROTTLE), 0);
    assert_int_equal(actions(FAKE_SPAWN), 21);
}

static void test_M21_exit_listens_again_when_nobody_is_available(void **state)
{
    corral_service *svc = SERVICE(.process_limit = 3, .client_limit = 1);
    pid_t pid;

    (void)state;
    fake_host_connect(svc, 1);
    pid = last_spawned(svc);
    fake_host_accept(svc, pid);
    fake_host_connect(svc, 1);
    pid = last_spawned(svc);
    assert_false(state_of(svc)->listening);
    fake_host_clear_actions();

    /* The new process dies cleanly before taking the client. */
    fake_host_exit(svc, pid, 0);
    assert_true(fake_host_last(svc, FAKE_LISTEN)->on);
    fake_host_run_pending();
    assert_int_equal(actions(FAKE_SPAWN), 1);
}

static void test_M22_no_storm_rule_after_success(void **state)
{
    corral_service *svc = SERVICE(.process_min_avail = 1);

    (void)state;
    fake_host_status(svc, last_spawned(svc), 1000);
    fake_host_exit(svc, last_spawned(svc), 0);
    for (unsigned i = 0; i < 30; i++) {
        pid_t pid = last_spawned(svc);
        fake_host_status(svc, pid, 1000);
        fake_host_exit(svc, pid, FAKE_KILLED(SIGSEGV));
    }
    assert_int_equal(actions(FAKE_THROTTLE), 0);
}

static void test_M22_failure_before_first_status_still_throttles_after_success(void **state)
{
    corral_service *svc = SERVICE(.process_min_avail = 1);

    (void)state;
    fake_host_status(svc, last_spawned(svc), 1000);
    fake_host_exit(svc, last_spawned(svc), 0);
    fake_host_exit(svc, last_spawned(svc), FAKE_EXITED(1));
    assert_int_equal(actions(FAKE_THROTTLE), 1);
}

static void test_M23_first_status_kill_does_not_throttle(void **state)
{
    corral_service *svc = SERVICE(.process_min_avail = 1);
    pid_t pid;

    (void)state;
    for (unsigned round = 1; round <= 3; round++) {
        pid = last_spawned(svc);
        fake_host_advance_ms(30000);
        fake_host_first_status_timeout(svc, pid);
        fake_host_exit(svc, pid, FAKE_KILLED(SIGKILL));
    }
    assert_int_equal(actions(FAKE_THROTTLE), 0);
    assert_int_equal(actions(FAKE_SPAWN), 4);
    assert_int_equal(actions(FAKE_LOG), 0);
}

/* ------------------------------------------------------------------ */
/* M24: login notify.                                                  */

static void test_M24_login_notify_rate_limited_to_2s(void **state)
{
    corral_service *svc = SERVICE(.type = CORRAL_SERVICE_LOGIN, .process_limit = 2,
                                  .client_limit = 1);
    pid_t first;

    (void)state;
    fill_to_limit(svc); /* FULL at 1000.0 s, signalled at once */
    first = fake_host_pid(svc, 0);
    assert_int_equal(actions(FAKE_SIGNAL_ALL), 1);

    fake_host_advance_ms(500);
    fake_host_release(svc, first);
    assert_int_equal(actions(FAKE_LOGIN_NOTIFY), 2); /* published at once */
    assert_false(fake_host_last(svc, FAKE_LOGIN_NOTIFY)->on);
    assert_int_equal(actions(FAKE_SIGNAL_ALL), 1);   /* signal held back */
    assert_true(fake_host_has_timer(svc, 2000, false));

    fake_host_advance_ms(500);
    fake_host_accept(svc, first);
    assert_int_equal(actions(FAKE_LOGIN_NOTIFY), 3);
    assert_int_equal(fake_host_timer_count(svc), 1); /* one delayed send */

    fake_host_advance_ms(1499);
    assert_int_equal(actions(FAKE_SIGNAL_ALL), 1);
    fake_host_advance_ms(1);
    assert_int_equal(actions(FAKE_SIGNAL_ALL), 2);
    assert_int_equal(fake_host_last(svc, FAKE_SIGNAL_ALL)->signo, SIGUSR1);
    assert_int_equal(fake_host_timer_count(svc), 0);
}

static void test_M24_change_after_2s_signals_at_once(void **state)
{
    corral_service *svc = SERVICE(.type = CORRAL_SERVICE_LOGIN, .process_limit = 2,
                                  .client_limit = 1);

    (void)state;
    fill_to_limit(svc);
    fake_host_advance_ms(2000);
    fake_host_release(svc, fake_host_pid(svc, 0));
    assert_int_equal(actions(FAKE_SIGNAL_ALL), 2);
    assert_false(fake_host_has_timer(svc, 2000, false));
}

static void test_M24_same_state_is_not_resent(void **state)
{
    corral_service *svc = SERVICE(.type = CORRAL_SERVICE_LOGIN, .process_limit = 2,
                                  .client_limit = 1);

    (void)state;
    fill_to_limit(svc);
    fake_host_connect(svc, 1); /* FULL again from the drop path */
    assert_int_equal(actions(FAKE_LOGIN_NOTIFY), 1);
    assert_int_equal(actions(FAKE_SIGNAL_ALL), 1);
}

static void test_M24_exit_below_limit_notifies_nonfull(void **state)
{
    corral_service *svc = SERVICE(.type = CORRAL_SERVICE_LOGIN, .process_limit = 2,
                                  .client_limit = 1);

    (void)state;
    fill_to_limit(svc);
    fake_host_exit(svc, fake_host_pid(svc, 1), 0);
    assert_int_equal(actions(FAKE_LOGIN_NOTIFY), 2);
    assert_false(fake_host_last(svc, FAKE_LOGIN_NOTIFY)->on);
}

static void test_M24_other_types_never_notify(void **state)
{
    corral_service *svc = SERVICE(.process_limit = 2, .client_limit = 1);

    (void)state;
    fill_to_limit(svc);
    fake_host_connect(svc, 1);
    fake_host_release(svc, fake_host_pid(svc, 0));
    assert_int_equal(actions(FAKE_LOGIN_NOTIFY), 0);
    assert_int_equal(actions(FAKE_SIGNAL_ALL), 0);
}

/* ------------------------------------------------------------------ */
/* M25, M27: stopping.                                                 */

static void test_M25_stop_removes_every_timer_and_stops_listening(void **state)
{
    corral_service *prefork, *idle, *worker, *login;

    (void)state;
    idle = SERVICE(.name = "idle", .process_limit = 3, .client_limit = 2, .idle_kill_secs = 10);
    fake_host_connect(idle, 1);
    fake_host_status(idle, last_spawned(idle), 2);
    assert_int_equal(fake_host_timer_count(idle), 1);

    worker = SERVICE(.name = "worker", .type = CORRAL_SERVICE_WORKER, .process_limit = 1,
                     .client_limit = 1);
    fill_to_limit(worker);
    fake_host_connect(worker, 1);
    assert_int_equal(fake_host_timer_count(worker), 2);

    login = SERVICE(.name = "login", .type = CORRAL_SERVICE_LOGIN, .process_limit = 2,
                    .client_limit = 1);
    fill_to_limit(login);
    fake_host_release(login, fake_host_pid(login, 0)); /* signal held back */
    fake_host_accept(login, fake_host_pid(login, 0));
    assert_int_equal(fake_host_timer_count(login), 1);
    assert_true(state_of(login)->listening);

    prefork = SERVICE(.name = "prefork", .process_min_avail = 5);
    assert_true(fake_host_has_timer(prefork, 0, true));

    assert_int_equal(fake_host_stop(prefork), 0);
    assert_int_equal(fake_host_stop(idle), 0);
    assert_int_equal(fake_host_stop(worker), 0);
    assert_int_equal(fake_host_stop(login), 0);
    assert_false(fake_host_last(login, FAKE_LISTEN)->on);
}

static void test_M27_no_spawn_or_listen_once_stopping(void **state)
{
    corral_service *below = SERVICE(.name = "below", .process_limit = 3);
    corral_service *full = SERVICE(.name = "full", .process_limit = 1, .client_limit = 1);
    const corral_policy *policy = dovecot_LTX_corral_policy_entry();

    (void)state;
    fill_to_limit(full);
    fake_host_stop(below);
    fake_host_stop(full);
    fake_host_clear_actions();
    /* The core stops delivering events; a late one must do nothing,
     * whether it would spawn or drop. */
    policy->listener_readable(fake_host_policy_state(below));
    policy->listener_readable(fake_host_policy_state(full));
    policy->throttle_ended(fake_host_policy_state(below));
    assert_int_equal(fake_host_action_count(), 0);
    assert_int_equal(fake_host_timer_count(full), 0);
}

/* ------------------------------------------------------------------ */
/* Scenarios from the reference's observations.                        */

/* 8 clients against 3 processes of 2 slots, min 2: a single warning and
 * the two extra clients closed 10 s later. */
static void test_scenario_burst_to_limit_drops_the_excess_after_10s(void **state)
{
    corral_service *svc = SERVICE(.process_min_avail = 2, .process_limit = 3, .client_limit = 2,
                                  .idle_kill_secs = 10);
    const corral_service_state *st = state_of(svc);

    (void)state;
    fake_host_run_pending();
    fake_host_run_pending();
    assert_int_equal(st->process_count, 2);
    all_report_idle(svc);

    fake_host_connect(svc, 8);
    for (unsigned client = 0; client < 6; client++) {
        fake_host_accept(svc, first_available(svc));
        fake_host_run_pending(); /* the loop keeps turning */
    }
    assert_int_equal(st->process_count, 3);
    assert_int_equal(st->process_avail, 0);
    assert_int_equal(fake_host_queued(svc), 2);
    assert_log(CORRAL_LOG_WARNING,
               "service(mysvc): process_limit (3) reached, client connections are being dropped", 1);

    fake_host_advance_ms(9999);
    assert_int_equal(actions(FAKE_DROP_QUEUED), 0);
    fake_host_advance_ms(1);
    assert_int_equal(fake_host_last(svc, FAKE_DROP_QUEUED)->count, 2);
    assert_int_equal(actions(FAKE_LOG), 1);
    assert_int_equal(actions(FAKE_SPAWN), 3);
    assert_nothing_refused();
}

/* After the burst the clients leave: of three idle processes with min 2,
 * only one is asked to go, about 10 s later. */
static void test_scenario_idle_kill_after_burst_kills_only_one(void **state)
{
    corral_service *svc = SERVICE(.process_min_avail = 2, .process_limit = 3, .client_limit = 2,
                                  .idle_kill_secs = 10);
    const corral_service_state *st = state_of(svc);
    pid_t victim;

    (void)state;
    fill_to_limit(svc);
    for (unsigned i = 0; i < 3; i++) {
        pid_t pid = fake_host_pid(svc, i);
        fake_host_release(svc, pid);
        fake_host_release(svc, pid);
    }
    assert_int_equal(st->process_avail, 3);
    assert_int_equal(fake_host_timer_count(svc), 1);

    fake_host_advance_ms(11000);
    assert_int_equal(actions(FAKE_SIGNAL), 1);
    victim = fake_host_last(svc, FAKE_SIGNAL)->pid;
    assert_int_equal(victim, fake_host_pid(svc, 2));
    fake_host_exit(svc, victim, 0);

    fake_host_advance_ms(120000);
    assert_int_equal(actions(FAKE_SIGNAL), 1);
    assert_int_equal(st->process_count, 2);
    assert_int_equal(st->process_avail, 2);
    assert_int_equal(actions(FAKE_SPAWN), 3);
}

/* ------------------------------------------------------------------ */
/* The fake host's own promises, which other policies' tests rely on.  */

struct firing_log {
    unsigned count;
    unsigned order[8];
};

struct tagged_timer {
    struct firing_log *log;
    unsigned tag;
};

static void note_firing(void *data)
{
    struct tagged_timer *timer = data;

    if (timer->log->count < 8)
        timer->log->order[timer->log->count] = timer->tag;
    timer->log->count++;
}

static corral_service *bare_service(unsigned process_limit)
{
    return fake_host_add_service(&(fake_service_settings){ .process_limit = process_limit }, NULL,
                                 NULL);
}

static void test_fake_host_zero_ms_timer_fires_once_per_iteration(void **state)
{
    const corral_host *host = fake_host_get();
    corral_service *svc = bare_service(1);
    struct firing_log zero = { 0 }, second = { 0 };
    struct tagged_timer zero_timer = { &zero, 0 }, second_timer = { &second, 1 };

    (void)state;
    host->timer_add(svc, 0, true, note_firing, &zero_timer);
    fake_host_run_pending();
    fake_host_run_pending();
    assert_int_equal(zero.count, 2);
    fake_host_advance(0);
    assert_int_equal(zero.count, 3);

    /* Iterations happen where timers fall due, and at the target. */
    host->timer_add(svc, 1000, true, note_firing, &second_timer);
    fake_host_advance_ms(3500);
    assert_int_equal(second.count, 3);
    assert_int_equal(zero.count, 3 + 4);
    assert_int_equal(fake_host_now(), T0 + 3500 * 1000);
}

static void test_fake_host_timers_fire_in_time_then_creation_order(void **state)
{
    const corral_host *host = fake_host_get();
    corral_service *svc = bare_service(1);
    struct firing_log log = { 0 };
    struct tagged_timer timers[] = { { &log, 30 }, { &log, 10 }, { &log, 20 }, { &log, 21 } };
    static const unsigned delays[] = { 300, 100, 200, 200 };

    (void)state;
    for (size_t i = 0; i < 4; i++)
        host->timer_add(svc, delays[i], false, note_firing, &timers[i]);
    fake_host_advance_ms(1000);
    assert_int_equal(log.count, 4);
    assert_int_equal(log.order[0], 10);
    assert_int_equal(log.order[1], 20);
    assert_int_equal(log.order[2], 21);
    assert_int_equal(log.order[3], 30);
    assert_int_equal(fake_host_timer_count(svc), 0); /* one-shots are gone */
}

static void test_fake_host_refuses_like_the_core(void **state)
{
    const corral_host *host = fake_host_get();
    corral_service *svc = bare_service(1);
    uint64_t counter = host->spawn_counter();

    (void)state;
    assert_true(host->spawn(svc));
    assert_false(host->spawn(svc)); /* at process_limit */
    assert_int_equal(host->spawn_counter(), counter + 1);
    assert_int_equal(fake_host_last(svc, FAKE_REFUSED)->refused, FAKE_SPAWN);

    fake_host_exit(svc, fake_host_pid(svc, 0), 0);
    assert_true(host->throttle(svc, 1000));
    assert_false(host->throttle(svc, 1000));
    assert_false(host->spawn(svc));
    host->listen(svc, true);
    assert_false(state_of(svc)->listening);
    assert_int_equal(actions(FAKE_REFUSED), 4);

    fake_host_advance_ms(1000);
    assert_false(state_of(svc)->throttled);
    fake_host_fail_spawns(svc, 1);
    assert_false(host->spawn(svc)); /* a failed fork still counts */
    assert_int_equal(host->spawn_counter(), counter + 2);
    assert_true(host->spawn(svc));
    assert_false(host->signal(svc, fake_host_pid(svc, 0), SIGHUP));
    assert_false(host->signal(svc, 1, SIGINT)); /* not this service's */
    assert_int_equal(actions(FAKE_REFUSED), 6);
}

static void test_fake_host_keeps_the_core_accounting(void **state)
{
    const corral_host *host = fake_host_get();
    corral_service *svc = bare_service(20);
    const corral_service_state *st = state_of(svc);
    corral_process *proc;
    pid_t pid;

    (void)state;
    host->spawn(svc);
    host->spawn(svc);
    pid = fake_host_pid(svc, 0);
    assert_int_equal(st->process_count, 2);
    assert_int_equal(st->process_avail, 2);

    fake_host_status(svc, pid, 0);
    proc = fake_host_process(svc, pid);
    assert_true(proc->initialized);
    assert_int_equal(proc->last_status_usec, T0);
    assert_int_equal(proc->clients_seen, 1000);
    assert_int_equal(st->process_avail, 1);

    /* Failures before the first status and after a success do not count
     * toward the storm rule. */
    fake_host_exit(svc, fake_host_pid(svc, 1), FAKE_EXITED(1));
    assert_int_equal(st->exit_failures_in_sec, 0);
    fake_host_exit(svc, pid, FAKE_KILLED(SIGSEGV));
    assert_int_equal(st->exit_failures_in_sec, 1);
    assert_int_equal(st->process_count, 0);
    assert_int_equal(st->process_avail, 0);
    host->spawn(svc);
    fake_host_status(svc, fake_host_pid(svc, 0), 1000);
    fake_host_exit(svc, fake_host_pid(svc, 0), 0);
    assert_true(st->have_success);
    assert_int_equal(st->exit_failures_in_sec, 0);
}

#define TEST(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_M1_start_listens_while_no_process_is_available),
        TEST(test_M2_started_creates_one_process_for_min_avail_at_once),
        TEST(test_M2_startup_service_gets_one_process_regardless_of_min),
        TEST(test_M2_startup_service_at_limit_asks_for_nothing_more),
        TEST(test_M3_master_listens_only_while_no_process_is_available),
        TEST(test_M4_listen_stop_clears_pending_and_both_drop_timers),
        TEST(test_M5_listen_start_skipped_while_a_process_is_available),
        TEST(test_M5_listen_start_skipped_while_throttled),
        TEST(test_M5_listen_start_skipped_at_limit_while_pending),
        TEST(test_M5_listen_start_clears_pending_and_drop_timer),
        TEST(test_M6_readable_below_limit_spawns_one_and_stops_listening),
        TEST(test_M6_failed_spawn_throttles),
        TEST(test_M6_readable_at_limit_spawns_nothing),
        TEST(test_M8_decrease_cancels_idle_timer),
        TEST(test_M8_last_slot_taken_starts_a_process_for_min_avail),
        TEST(test_M8_last_slot_taken_without_min_listens),
        TEST(test_M8_login_full_only_when_last_process_fills_at_limit),
        TEST(test_M9_first_free_slot_stops_listening),
        TEST(test_M9_login_nonfull_on_increase),
        TEST(test_M10_prefork_timer_is_0ms_and_repeating),
        TEST(test_M10_nothing_when_min_avail_met),
        TEST(test_M10_nothing_at_process_limit),
        TEST(test_M11_idle_timer_is_idle_kill_plus_jitter_and_repeats),
        TEST(test_M11_no_idle_timer_at_or_below_min),
        TEST(test_M11_no_idle_timer_when_idle_kill_is_never),
        TEST(test_M11_no_idle_timer_while_a_client_is_served),
        TEST(test_M11_one_timer_per_process_however_many_records),
        TEST(test_M11_already_idle_process_gets_a_timer_on_its_next_record),
        TEST(test_M11a_tick_at_or_below_min_disarms_without_killing),
        TEST(test_M11a_tick_sends_sigint_and_keeps_the_timer),
        TEST(test_M11a_ignoring_idle_sigint_marks_busy),
        TEST(test_M11a_ignoring_process_with_min_avail_gets_replaced),
        TEST(test_M11a_status_after_sigint_is_not_ignoring),
        TEST(test_M11a_sigint_one_second_after_status_is_not_yet_ignored),
        TEST(test_M11a_login_sigusr1_is_not_an_idle_sigint),
        TEST(test_M11a_only_the_first_surplus_timer_kills),
        TEST(test_M12_batch_capped_at_room_below_process_limit),
        TEST(test_M12_failed_spawn_throttles_and_ends_the_batch),
        TEST(test_M12_spawning_stops_listening),
        TEST(test_M13_first_prefork_tick_only_syncs_counter),
        TEST(test_M13_spawn_elsewhere_postpones_preforking),
        TEST(test_M13_full_batch_of_10_keeps_the_timer),
        TEST(test_M13_full_batch_reaching_min_removes_the_timer),
        TEST(test_M14_warning_names_process_limit),
        TEST(test_M14_warning_names_client_limit_when_single_process),
        TEST(test_M14_warning_names_client_limit_service_count_when_one_per_process),
        TEST(test_M14_warning_at_most_once_per_second),
        TEST(test_M15_default_type_warns_at_once_and_waits),
        TEST(test_M15_login_notifies_full_and_waits_on_every_event),
        TEST(test_M15_worker_warning_delayed_500ms),
        TEST(test_M15_after_grace_period_each_client_is_closed_at_once),
        TEST(test_M16_pending_stops_listening_for_10s),
        TEST(test_M17_drop_timeout_accepts_and_closes),
        TEST(test_M18_free_slot_cancels_drop_and_warning),
        TEST(test_M20_throttle_doubles_to_60s_and_resets_on_clean_exit),
        TEST(test_M20_throttle_end_listens_but_does_not_prefork),
        TEST(test_M20_no_second_throttle_while_throttled),
        TEST(test_M21_failure_before_first_status_throttles),
        TEST(test_M21_storm_throttles_on_eleventh_failure_in_one_second),
        TEST(test_M21_failures_spread_over_seconds_do_not_throttle),
        TEST(test_M21_clean_exit_before_status_respawns_without_throttle),
        TEST(test_M21_exit_listens_again_when_nobody_is_available),
        TEST(test_M22_no_storm_rule_after_success),
        TEST(test_M22_failure_before_first_status_still_throttles_after_success),
        TEST(test_M23_first_status_kill_does_not_throttle),
        TEST(test_M24_login_notify_rate_limited_to_2s),
        TEST(test_M24_change_after_2s_signals_at_once),
        TEST(test_M24_same_state_is_not_resent),
        TEST(test_M24_exit_below_limit_notifies_nonfull),
        TEST(test_M24_other_types_never_notify),
        TEST(test_M25_stop_removes_every_timer_and_stops_listening),
        TEST(test_M27_no_spawn_or_listen_once_stopping),
        TEST(test_scenario_burst_to_limit_drops_the_excess_after_10s),
        TEST(test_scenario_idle_kill_after_burst_kills_only_one),
        TEST(test_fake_host_zero_ms_timer_fires_once_per_iteration),
        TEST(test_fake_host_timers_fire_in_time_then_creation_order),
        TEST(test_fake_host_refuses_like_the_core),
        TEST(test_fake_host_keeps_the_core_accounting),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
