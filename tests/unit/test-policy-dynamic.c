/* SPDX-License-Identifier: MIT */
/*
 * test-policy-dynamic.c - the dynamic policy on the fake host.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "fake-host.h"

const corral_policy *dynamic_LTX_corral_policy_entry(void);

#define KEYS(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define SEC 1000000ull

/* ------------------------------------------------------------------ */
/* Helpers.                                                            */

static corral_service *start_service(const fake_service_settings *settings,
                                     const char *const *keys)
{
    const corral_policy *policy = dynamic_LTX_corral_policy_entry();
    corral_service *svc =
        fake_host_add_service(settings, policy, fake_host_policy_values(policy, keys));

    fake_host_start(svc);
    fake_host_started(svc);
    return svc;
}

#define SERVICE(keys, ...) start_service(&(fake_service_settings){ __VA_ARGS__ }, keys)

static const corral_service_state *state_of(corral_service *svc)
{
    return fake_host_state(svc);
}

static void all_report_idle(corral_service *svc)
{
    const corral_host *host = fake_host_get();

    for (corral_process *p = host->process_next(svc, NULL); p != NULL;
         p = host->process_next(svc, p))
        fake_host_status(svc, p->pid, state_of(svc)->client_limit);
}

static unsigned spawns(corral_service *svc)
{
    return fake_host_count(svc, FAKE_SPAWN);
}

static unsigned sigints(corral_service *svc)
{
    return fake_host_count(svc, FAKE_SIGNAL);
}

static pid_t last_sigint(corral_service *svc)
{
    const fake_action *signal = fake_host_last(svc, FAKE_SIGNAL);

    assert_non_null(signal);
    assert_int_equal(signal->signo, SIGINT);
    return signal->pid;
}

static void assert_log(corral_log_level level, const char *line, unsigned expected)
{
    unsigned found = fake_host_count_log(level, line);

    if (found != expected)
        fail_msg("\"%s\" logged %u times, expected %u", line, found, expected);
}

static void assert_nothing_refused(void)
{
    assert_int_equal(fake_host_count(NULL, FAKE_REFUSED), 0);
}

/* service_new's error for these keys; the service itself has no policy. */
static char *refusal(const fake_service_settings *settings, const char *const *keys)
{
    const corral_policy *policy = dynamic_LTX_corral_policy_entry();
    corral_service *svc = fake_host_add_service(settings, NULL, NULL);
    char *error = NULL;

    assert_null(policy->service_new(fake_host_get(), svc, fake_host_policy_values(policy, keys),
                                    &error));
    assert_non_null(error);
    return error;
}

/* ------------------------------------------------------------------ */
/* Start.                                                              */

static void test_defaults_start_two_processes_and_tick_every_second(void **state)
{
    corral_service *svc = SERVICE(NULL, .process_limit = 10);

    (void)state;
    assert_int_equal(spawns(svc), 2);
    assert_int_equal(state_of(svc)->process_avail, 2);
    assert_false(state_of(svc)->listening);
    assert_true(fake_host_has_timer(svc, 1000, true));
    /* Pools that send no status are measured this often for it. */
    assert_int_equal(fake_host_sample_interval(svc), 250);
    assert_nothing_refused();
}

static void test_start_servers_zero_listens_for_the_first_client(void **state)
{
    corral_service *svc = SERVICE(KEYS("start_servers=0", "min_spare=0"));

    (void)state;
    assert_int_equal(spawns(svc), 0);
    assert_true(state_of(svc)->listening);
}

/* ------------------------------------------------------------------ */
/* Below min_spare.                                                    */

static void test_spawn_rate_doubles_each_tick_up_to_max_spawn_rate(void **state)
{
    corral_service *svc = SERVICE(KEYS("min_spare=20", "max_spare=30", "start_servers=0",
                                       "max_spawn_rate=4"),
                                  .process_limit = 100);
    const unsigned expected[] = { 1, 3, 7, 11, 15, 19, 20, 20 };

    (void)state;
    for (size_t tick = 0; tick < sizeof(expected) / sizeof(expected[0]); tick++) {
        fake_host_advance(SEC);
        assert_int_equal(state_of(svc)->process_count, expected[tick]);
    }
    assert_nothing_refused();
}

static void test_spawn_rate_resets_once_min_spare_is_met(void **state)
{
    corral_service *svc = SERVICE(KEYS("min_spare=4", "max_spare=10", "start_servers=0"),
                                  .process_limit = 100);

    (void)state;
    fake_host_advance(3 * SEC); /* 1, then 2, then the last 1 */
    assert_int_equal(state_of(svc)->process_count, 4);
    fake_host_advance(SEC); /* satisfied: back to 1 */
    all_report_idle(svc);
    for (unsigned i = 0; i < 3; i++)
        fake_host_status(svc, fake_host_pid(svc, i), 0);

    fake_host_advance(SEC);
    assert_int_equal(state_of(svc)->process_count, 5);
    fake_host_advance(SEC);
    assert_int_equal(state_of(svc)->process_count, 7);
}

static void test_short_tick_at_rate_8_says_the_service_seems_busy(void **state)
{
    corral_service *svc = SERVICE(KEYS("min_spare=100", "max_spare=100", "start_servers=0"),
                                  .process_limit = 200);

    (void)state;
    fake_host_advance(3 * SEC); /* 1 + 2 + 4 */
    assert_int_equal(fake_host_count(svc, FAKE_LOG), 0);
    fake_host_advance(SEC);
    assert_int_equal(state_of(svc)->process_count, 15);
    assert_log(CORRAL_LOG_WARNING,
               "service(test): seems busy (you may need to increase start_servers, or "
               "min_spare/max_spare), spawning 8 processes, there are 7 available, and 7 total "
               "processes",
               1);
}

static void test_tick_spawns_nothing_beyond_process_limit(void **state)
{
    corral_service *svc = SERVICE(KEYS("min_spare=10", "max_spare=10", "start_servers=3"),
                                  .process_limit = 4);

    (void)state;
    fake_host_advance(5 * SEC);
    assert_int_equal(state_of(svc)->process_count, 4);
    assert_nothing_refused();
}

static void test_longer_tick_key(void **state)
{
    corral_service *svc = SERVICE(KEYS("min_spare=2", "start_servers=0", "tick=250ms"));

    (void)state;
    assert_true(fake_host_has_timer(svc, 250, true));
    fake_host_advance_ms(250);
    assert_int_equal(spawns(svc), 1);
}

/* ------------------------------------------------------------------ */
/* Above max_spare.                                                    */

static void test_above_max_spare_one_sigint_per_tick_to_the_longest_idle(void **state)
{
    corral_service *svc = SERVICE(KEYS("min_spare=0", "max_spare=2", "start_servers=5"));
    const unsigned idle_order[] = { 4, 2, 0, 1, 3 };
    pid_t pids[5];

    (void)state;
    for (unsigned i = 0; i < 5; i++)
        pids[i] = fake_host_pid(svc, i);
    for (unsigned i = 0; i < 5; i++) {
        fake_host_status(svc, pids[idle_order[i]], state_of(svc)->client_limit);
        fake_host_advance_ms(10);
    }

    fake_host_advance_to(fake_host_now() + SEC - 50000);
    assert_int_equal(sigints(svc), 1);
    assert_int_equal(last_sigint(svc), pids[4]);
    fake_host_advance(SEC); /* pids[4] is leaving and does not count */
    assert_int_equal(sigints(svc), 2);
    assert_int_equal(last_sigint(svc), pids[2]);

    fake_host_exit(svc, pids[4], 0);
    fake_host_exit(svc, pids[2], 0);
    fake_host_advance(SEC);
    assert_int_equal(sigints(svc), 3);
    assert_int_equal(last_sigint(svc), pids[0]);
    fake_host_exit(svc, pids[0], 0);
    fake_host_advance(3 * SEC);
    assert_int_equal(sigints(svc), 3);
    assert_int_equal(state_of(svc)->process_count, 2);
}

static void test_partly_busy_processes_are_not_asked_to_leave(void **state)
{
    corral_service *svc = SERVICE(KEYS("min_spare=0", "max_spare=0", "start_servers=2"),
                                  .client_limit = 5);

    (void)state;
    fake_host_status(svc, fake_host_pid(svc, 0), 4);
    fake_host_status(svc, fake_host_pid(svc, 1), 4);
    fake_host_advance(3 * SEC);
    assert_int_equal(sigints(svc), 0);
}

static void test_silent_after_sigint_is_leaving_a_record_means_it_stays(void **state)
{
    corral_service *svc = SERVICE(KEYS("min_spare=0", "max_spare=1", "start_servers=2"));
    pid_t first = fake_host_pid(svc, 0);

    (void)state;
    all_report_idle(svc);
    fake_host_advance(SEC);
    assert_int_equal(last_sigint(svc), first);
    fake_host_advance(SEC); /* silent: leaving, one available left */
    assert_int_equal(sigints(svc), 1);

    fake_host_status(svc, first, state_of(svc)->client_limit); /* it refused */
    fake_host_advance(SEC);
    assert_int_equal(sigints(svc), 2);
    assert_int_equal(last_sigint(svc), first);
}

static void test_spawn_rate_resets_when_above_max_spare(void **state)
{
    corral_service *svc = SERVICE(KEYS("min_spare=2", "max_spare=2", "start_servers=0"));
    pid_t a, b, c;

    (void)state;
    fake_host_advance(2 * SEC); /* 1, then 1 more: the rate is 4 now */
    assert_int_equal(state_of(svc)->process_count, 2);
    a = fake_host_pid(svc, 0);
    b = fake_host_pid(svc, 1);
    fake_host_status(svc, a, 0);
    fake_host_status(svc, b, 0);
    fake_host_connect(svc, 1); /* nobody free: a third process */
    c = fake_host_pid(svc, 2);
    fake_host_accept(svc, c);
    fake_host_release(svc, c);
    fake_host_release(svc, a);
    fake_host_release(svc, b);

    fake_host_advance(SEC); /* three available: one leaves */
    assert_int_equal(last_sigint(svc), c);
    fake_host_exit(svc, c, 0);
    fake_host_status(svc, a, 0);
    fake_host_status(svc, b, 0);
    fake_host_advance(SEC);
    assert_int_equal(state_of(svc)->process_count, 3); /* rate 1, not 4 */
}

/* ------------------------------------------------------------------ */
/* Clients between ticks, and process_limit.                           */

static void test_client_finding_no_free_slot_gets_a_process(void **state)
{
    corral_service *svc = SERVICE(KEYS("min_spare=0", "start_servers=0"), .client_limit = 1);
    pid_t pid;

    (void)state;
    assert_true(state_of(svc)->listening);
    fake_host_connect(svc, 1);
    assert_int_equal(spawns(svc), 1);
    assert_false(state_of(svc)->listening);

    pid = fake_host_pid(svc, 0);
    fake_host_accept(svc, pid);
    assert_true(state_of(svc)->listening);
    fake_host_release(svc, pid);
    assert_false(state_of(svc)->listening);
    assert_nothing_refused();
}

static void test_at_process_limit_clients_wait_and_the_warning_is_once_a_second(void **state)
{
    corral_service *svc = SERVICE(KEYS("min_spare=0", "max_spare=2", "start_servers=2"),
                                  .process_limit = 2);
    const char *warning =
        "service(test): process_limit (2) reached, client connections are being dropped";
    pid_t a = fake_host_pid(svc, 0), b = fake_host_pid(svc, 1);

    (void)state;
    fake_host_status(svc, a, 0);
    fake_host_status(svc, b, 0);
    assert_true(state_of(svc)->listening);

    fake_host_connect(svc, 1);
    assert_log(CORRAL_LOG_WARNING, warning, 1);
    assert_false(state_of(svc)->listening);
    fake_host_connect(svc, 3);
    assert_int_equal(fake_host_queued(svc), 4);

    /* A freed slot takes a client; full again, the policy looks again. */
    fake_host_release(svc, a);
    assert_false(state_of(svc)->listening);
    fake_host_accept(svc, a);
    assert_true(state_of(svc)->listening);
    fake_host_run_pending();
    assert_false(state_of(svc)->listening);
    assert_log(CORRAL_LOG_WARNING, warning, 1); /* same second */

    fake_host_advance(SEC);
    fake_host_release(svc, a);
    fake_host_accept(svc, a);
    fake_host_run_pending();
    assert_log(CORRAL_LOG_WARNING, warning, 2);

    assert_int_equal(fake_host_queued(svc), 2);
    assert_int_equal(fake_host_count(svc, FAKE_DROP_QUEUED), 0);
    assert_int_equal(fake_host_count(svc, FAKE_DROP_ONE), 0);
    assert_nothing_refused();
}

static void test_exit_at_limit_gives_the_waiting_client_a_process(void **state)
{
    corral_service *svc = SERVICE(KEYS("min_spare=0", "max_spare=2", "start_servers=2"),
                                  .process_limit = 2);
    pid_t a = fake_host_pid(svc, 0), b = fake_host_pid(svc, 1);

    (void)state;
    fake_host_status(svc, a, 0);
    fake_host_status(svc, b, 0);
    fake_host_connect(svc, 1);
    assert_false(state_of(svc)->listening);

    fake_host_exit(svc, a, 0);
    assert_true(state_of(svc)->listening);
    fake_host_run_pending();
    assert_int_equal(spawns(svc), 3);
    assert_nothing_refused();
}

/* ------------------------------------------------------------------ */
/* Failures.                                                           */

static void test_startup_failures_throttle_doubling_and_clean_exit_resets(void **state)
{
    corral_service *svc = SERVICE(KEYS("min_spare=1", "start_servers=1"));
    const unsigned lengths[] = { 2000, 4000, 8000, 16000, 32000, 60000, 60000 };

    (void)state;
    for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++) {
        fake_host_exit(svc, fake_host_pid(svc, 0), FAKE_EXITED(1));
        assert_int_equal(fake_host_last(svc, FAKE_THROTTLE)->msecs, lengths[i]);
        fake_host_advance_ms(lengths[i]); /* the throttle ends, then a tick tops up */
        fake_host_advance(SEC);
        assert_int_equal(state_of(svc)->process_count, 1);
    }
    assert_log(CORRAL_LOG_ERROR, "service(test): command startup failed, throttling for 2.000 secs",
               1);
    assert_log(CORRAL_LOG_ERROR,
               "service(test): command startup failed, throttling for 60.000 secs", 2);

    fake_host_status(svc, fake_host_pid(svc, 0), 1);
    fake_host_exit(svc, fake_host_pid(svc, 0), 0);
    fake_host_advance(SEC);
    fake_host_exit(svc, fake_host_pid(svc, 0), FAKE_EXITED(1));
    assert_int_equal(fake_host_last(svc, FAKE_THROTTLE)->msecs, 2000);
    assert_nothing_refused();
}

static void test_failed_spawn_throttles_then_listens_again(void **state)
{
    corral_service *svc = SERVICE(KEYS("min_spare=0", "start_servers=0"));

    (void)state;
    fake_host_fail_spawns(svc, 1);
    fake_host_connect(svc, 1);
    assert_int_equal(fake_host_count(svc, FAKE_SPAWN_FAILED), 1);
    assert_true(state_of(svc)->throttled);
    assert_false(state_of(svc)->listening);
    assert_int_equal(fake_host_queued(svc), 0); /* nobody left to serve it: closed */

    fake_host_advance_ms(2000);
    assert_true(state_of(svc)->listening);
    fake_host_connect(svc, 1);
    assert_int_equal(spawns(svc), 1);
    assert_nothing_refused();
}

static void test_throttled_ticks_spawn_nothing(void **state)
{
    corral_service *svc = SERVICE(KEYS("min_spare=3", "start_servers=0"));

    (void)state;
    fake_host_fail_spawns(svc, 1);
    fake_host_advance(SEC);
    assert_true(state_of(svc)->throttled);
    fake_host_advance_ms(1500);
    assert_int_equal(spawns(svc), 0);
    fake_host_advance_ms(1500); /* the throttle ended at 3 s, after that tick */
    assert_int_equal(spawns(svc), 1);
    assert_nothing_refused();
}

/* ------------------------------------------------------------------ */
/* Settings and stop.                                                  */

static void test_min_spare_above_max_spare_is_refused(void **state)
{
    char *error = refusal(&(fake_service_settings){ 0 }, KEYS("min_spare=5", "max_spare=2"));

    (void)state;
    assert_string_equal(error, "min_spare (5) is greater than max_spare (2)");
    free(error);
}

static void test_start_servers_above_process_limit_is_refused(void **state)
{
    char *error = refusal(&(fake_service_settings){ .process_limit = 3 }, KEYS("start_servers=4"));

    (void)state;
    assert_string_equal(error, "start_servers (4) is greater than process_limit (3)");
    free(error);
}

static void test_stop_removes_the_tick_and_stops_listening(void **state)
{
    corral_service *svc = SERVICE(KEYS("min_spare=0", "start_servers=0"));

    (void)state;
    assert_true(state_of(svc)->listening);
    assert_int_equal(fake_host_stop(svc), 0);
    assert_false(state_of(svc)->listening);
}

int main(void)
{
#define TEST(name) cmocka_unit_test_setup_teardown(name, fake_host_setup, fake_host_teardown)
    const struct CMUnitTest tests[] = {
        TEST(test_defaults_start_two_processes_and_tick_every_second),
        TEST(test_start_servers_zero_listens_for_the_first_client),
        TEST(test_spawn_rate_doubles_each_tick_up_to_max_spawn_rate),
        TEST(test_spawn_rate_resets_once_min_spare_is_met),
        TEST(test_short_tick_at_rate_8_says_the_service_seems_busy),
        TEST(test_tick_spawns_nothing_beyond_process_limit),
        TEST(test_longer_tick_key),
        TEST(test_above_max_spare_one_sigint_per_tick_to_the_longest_idle),
        TEST(test_partly_busy_processes_are_not_asked_to_leave),
        TEST(test_silent_after_sigint_is_leaving_a_record_means_it_stays),
        TEST(test_spawn_rate_resets_when_above_max_spare),
        TEST(test_client_finding_no_free_slot_gets_a_process),
        TEST(test_at_process_limit_clients_wait_and_the_warning_is_once_a_second),
        TEST(test_exit_at_limit_gives_the_waiting_client_a_process),
        TEST(test_startup_failures_throttle_doubling_and_clean_exit_resets),
        TEST(test_failed_spawn_throttles_then_listens_again),
        TEST(test_throttled_ticks_spawn_nothing),
        TEST(test_min_spare_above_max_spare_is_refused),
        TEST(test_start_servers_above_process_limit_is_refused),
        TEST(test_stop_removes_the_tick_and_stops_listening),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
