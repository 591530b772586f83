/* SPDX-License-Identifier: MIT */
/*
 * test-policy-queue.c - the queue policy's estimator, and the policy on
 * the fake host.
 *
 * Policy tests set smoothing=1ms, which makes each average equal its
 * last one-second window, so the figures in the expected log lines are
 * those of the load the test plays.
 */
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "estimator.h"
#include "fake-host.h"

const corral_policy *queue_LTX_corral_policy_entry(void);

#define KEYS(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define SEC 1000000ull
#define MSEC 1000ull
#define T0 FAKE_HOST_START_USEC

/* ------------------------------------------------------------------ */
/* The estimator.                                                      */

static void test_estimator_window_samples(void **state)
{
    queue_estimator est;

    (void)state;
    queue_estimator_init(&est, T0, 1); /* alpha = 1: the averages are the samples */
    queue_estimator_taken(&est, T0, 1);
    queue_estimator_taken(&est, T0 + 200 * MSEC, 1);
    queue_estimator_freed(&est, T0 + 400 * MSEC, 1);
    queue_estimator_freed(&est, T0 + 500 * MSEC, 1);
    queue_estimator_taken(&est, T0 + 900 * MSEC, 1);
    queue_estimator_tick(&est, T0 + SEC);

    /* 3 arrivals in 1 s; 0.2 + 2 * 0.2 + 0.1 + 0.1 slot-seconds for 2 completions. */
    assert_float_equal(est.arrival_rate, 3.0, 1e-6);
    assert_float_equal(est.service_time, 0.4, 1e-6);
    assert_float_equal(queue_estimator_load(&est), 1.2, 1e-6);
}

static void test_estimator_weight_follows_the_window_length(void **state)
{
    queue_estimator est;
    double rate;

    (void)state;
    queue_estimator_init(&est, T0, 5 * SEC);
    queue_estimator_taken(&est, T0, 10);
    queue_estimator_freed(&est, T0 + 500 * MSEC, 10);
    queue_estimator_tick(&est, T0 + SEC);
    rate = (1 - exp(-0.2)) * 10;
    assert_float_equal(est.arrival_rate, rate, 1e-6);
    assert_float_equal(est.service_time, 0.5, 1e-6); /* the first one is taken as it is */

    queue_estimator_taken(&est, T0 + SEC, 1);
    queue_estimator_freed(&est, T0 + 3 * SEC, 1);
    queue_estimator_tick(&est, T0 + 3 * SEC); /* a 2 s window */
    assert_float_equal(est.arrival_rate, rate + (1 - exp(-0.4)) * (0.5 - rate), 1e-6);
    assert_float_equal(est.service_time, 0.5 + (1 - exp(-0.4)) * (2.0 - 0.5), 1e-6);
}

static void test_estimator_rising_load_follows_the_last_window_up_only(void **state)
{
    queue_estimator est;

    (void)state;
    queue_estimator_init(&est, T0, 10 * SEC);
    queue_estimator_taken(&est, T0, 20);
    queue_estimator_freed(&est, T0 + 100 * MSEC, 20); /* S = 0.1 s */
    queue_estimator_tick(&est, T0 + SEC);
    assert_float_equal(est.last_arrival_rate, 20.0, 1e-6);
    assert_float_equal(queue_estimator_rising_load(&est), 2.0, 1e-6); /* 20/s * 0.1 s */
    assert_true(queue_estimator_load(&est) < 0.2);

    queue_estimator_tick(&est, T0 + 2 * SEC); /* nobody: the average decides */
    assert_float_equal(est.last_arrival_rate, 0.0, 1e-6);
    assert_float_equal(queue_estimator_rising_load(&est), queue_estimator_load(&est), 1e-6);
}

static void test_estimator_client_served_across_windows_counts_whole(void **state)
{
    queue_estimator est;

    (void)state;
    queue_estimator_init(&est, T0, 1);
    queue_estimator_taken(&est, T0, 1);
    for (unsigned second = 1; second <= 3; second++) {
        queue_estimator_tick(&est, T0 + second * SEC);
        assert_false(est.have_service_time);
    }
    queue_estimator_freed(&est, T0 + 3500 * MSEC, 1);
    queue_estimator_tick(&est, T0 + 4 * SEC);
    assert_float_equal(est.service_time, 3.5, 1e-6);
    assert_float_equal(est.arrival_rate, 0.0, 1e-6);
}

static void test_estimator_slots_of_a_dead_process_are_no_completions(void **state)
{
    queue_estimator est;

    (void)state;
    queue_estimator_init(&est, T0, 1);
    queue_estimator_taken(&est, T0, 2);
    queue_estimator_dropped(&est, T0 + 500 * MSEC, 2);
    queue_estimator_tick(&est, T0 + SEC);
    assert_int_equal(est.busy_slots, 0);
    assert_false(est.have_service_time);
    assert_float_equal(est.arrival_rate, 2.0, 1e-6);
}

/* ------------------------------------------------------------------ */
/* Policy helpers.                                                     */

static corral_service *start_service(const fake_service_settings *settings,
                                     const char *const *keys)
{
    const corral_policy *policy = queue_LTX_corral_policy_entry();
    corral_service *svc =
        fake_host_add_service(settings, policy, fake_host_policy_values(policy, keys));

    fake_host_start(svc);
    fake_host_started(svc);
    return svc;
}

/* One slot per process, so that processes and busy slots are the same. */
#define SERVICE(keys, ...) \
    start_service(&(fake_service_settings){ .client_limit = 1, __VA_ARGS__ }, keys)

static const corral_service_state *state_of(corral_service *svc)
{
    return fake_host_state(svc);
}

static unsigned sigints(corral_service *svc)
{
    return fake_host_count(svc, FAKE_SIGNAL);
}

/* A process that got SIGINT while idle is on its way out and takes no
 * client. */
static pid_t first_available(corral_service *svc)
{
    const corral_host *host = fake_host_get();

    for (corral_process *p = host->process_next(svc, NULL); p != NULL;
         p = host->process_next(svc, p)) {
        if (p->available_count > 0 && p->last_kill_usec == 0)
            return p->pid;
    }
    fail_msg("no process has a free slot");
    return -1;
}

/* Clients connect one by one; a free process takes each, or the policy
 * starts one for it. */
static void clients_arrive(corral_service *svc, unsigned count)
{
    for (unsigned i = 0; i < count; i++) {
        fake_host_connect(svc, 1);
        fake_host_accept(svc, first_available(svc));
    }
}

static void clients_leave(corral_service *svc)
{
    const corral_host *host = fake_host_get();

    for (corral_process *p = host->process_next(svc, NULL); p != NULL;
         p = host->process_next(svc, p)) {
        while (p->available_count < state_of(svc)->client_limit)
            fake_host_release(svc, p->pid);
    }
}

/* From one tick to the next: `count` clients arrive at once and are
 * served for `msecs`.  Each second is lambda = count, S = msecs. */
static void one_second_of_load(corral_service *svc, unsigned count, unsigned msecs)
{
    uint64_t start = fake_host_now();

    clients_arrive(svc, count);
    fake_host_advance(msecs * MSEC);
    clients_leave(svc);
    fake_host_advance_to(start + SEC);
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

static char *refusal(const char *const *keys)
{
    const corral_policy *policy = queue_LTX_corral_policy_entry();
    corral_service *svc = fake_host_add_service(&(fake_service_settings){ 0 }, NULL, NULL);
    char *error = NULL;

    assert_null(policy->service_new(fake_host_get(), svc, fake_host_policy_values(policy, keys),
                                    &error));
    assert_non_null(error);
    return error;
}

/* ------------------------------------------------------------------ */
/* The policy.                                                         */

static void test_starts_min_spare_processes_and_ticks_every_second(void **state)
{
    corral_service *svc = SERVICE(KEYS("min_spare=2"));

    (void)state;
    assert_int_equal(fake_host_count(svc, FAKE_SPAWN), 2);
    assert_true(fake_host_has_timer(svc, 1000, true));
    fake_host_advance(10 * SEC); /* no load: nothing changes */
    assert_int_equal(state_of(svc)->process_count, 2);
    assert_int_equal(sigints(svc), 0);
}

/* Tests that check the sizing start with enough processes for their
 * load, so that no client finds the pool full and only Little's law
 * speaks. */
static void test_steady_load_sizes_the_pool_by_littles_law(void **state)
{
    corral_service *svc = SERVICE(KEYS("smoothing=1ms", "headroom=2", "min_spare=4"),
                                  .process_limit = 50);

    (void)state;
    one_second_of_load(svc, 4, 500);
    /* lambda 4/s * S 0.5 s = 2 busy slots; * 2 headroom = 4, + 4 spare. */
    assert_log(CORRAL_LOG_DEBUG,
               "service(test): target 8 processes: 4.00 arrivals/s (last 4.00), service time "
               "0.500 s, 2.00 busy slots, 0 clients found the pool full",
               1);
    assert_int_equal(state_of(svc)->process_count, 8);
    for (unsigned i = 0; i < 5; i++)
        one_second_of_load(svc, 4, 500);
    assert_int_equal(state_of(svc)->process_count, 8);
    assert_int_equal(sigints(svc), 0);
    assert_nothing_refused();
}

static void test_client_limit_converts_slots_to_processes(void **state)
{
    corral_service *svc = start_service(&(fake_service_settings){ .client_limit = 4 },
                                        KEYS("smoothing=1ms", "headroom=1.5", "min_spare=2"));

    (void)state;
    one_second_of_load(svc, 8, 500); /* 4 busy slots * 1.5 = 6 slots: 2 processes, + 2 */
    assert_log(CORRAL_LOG_DEBUG,
               "service(test): target 4 processes: 8.00 arrivals/s (last 8.00), service time "
               "0.500 s, 4.00 busy slots, 0 clients found the pool full",
               1);
    assert_int_equal(state_of(svc)->process_count, 4);
}

static void test_a_burst_is_met_at_the_next_tick_despite_smoothing(void **state)
{
    corral_service *svc = SERVICE(KEYS("smoothing=60s", "headroom=1", "min_spare=20"),
                                  .process_limit = 100);

    (void)state;
    one_second_of_load(svc, 20, 500);
    /* The average has hardly moved (1 - e^(-1/60) of 20/s); the last
     * second's rate sizes the target: 20/s * 0.5 s = 10 busy slots. */
    assert_log(CORRAL_LOG_DEBUG,
               "service(test): target 30 processes: 0.33 arrivals/s (last 20.00), service time "
               "0.500 s, 10.00 busy slots, 0 clients found the pool full",
               1);
    assert_int_equal(state_of(svc)->process_count, 30);
}

static void test_clients_finding_the_pool_full_raise_the_target(void **state)
{
    corral_service *svc = SERVICE(KEYS("smoothing=1ms", "headroom=1", "min_spare=0"),
                                  .process_limit = 100);

    (void)state;
    one_second_of_load(svc, 6, 500); /* six processes started for six clients */
    /* The load says 3 busy slots, but six clients waited for a process:
     * the rate seen was the pool's own, so at least the pool plus six. */
    assert_log(CORRAL_LOG_DEBUG,
               "service(test): target 12 processes: 6.00 arrivals/s (last 6.00), service time "
               "0.500 s, 3.00 busy slots, 6 clients found the pool full",
               1);
    assert_int_equal(state_of(svc)->process_count, 12);
}

static void test_growth_is_limited_per_tick(void **state)
{
    corral_service *svc = SERVICE(KEYS("smoothing=1ms", "headroom=10", "min_spare=4",
                                       "max_spawn_per_tick=2"),
                                  .process_limit = 100);

    (void)state;
    one_second_of_load(svc, 4, 500); /* target 24, four processes */
    assert_int_equal(state_of(svc)->process_count, 6);
    one_second_of_load(svc, 4, 500);
    assert_int_equal(state_of(svc)->process_count, 8);
    one_second_of_load(svc, 4, 500);
    assert_int_equal(state_of(svc)->process_count, 10);
}

static void test_target_is_capped_at_process_limit(void **state)
{
    corral_service *svc = SERVICE(KEYS("smoothing=1ms", "headroom=10", "min_spare=4"),
                                  .process_limit = 6);

    (void)state;
    for (unsigned i = 0; i < 3; i++)
        one_second_of_load(svc, 4, 500);
    assert_int_equal(state_of(svc)->process_count, 6);
    assert_log(CORRAL_LOG_DEBUG,
               "service(test): target 6 processes: 4.00 arrivals/s (last 4.00), service time "
               "0.500 s, 2.00 busy slots, 0 clients found the pool full",
               1);
    assert_nothing_refused();
}

#define SHRINKING "smoothing=1ms", "headroom=2", "min_spare=4"

static void test_shrinks_after_shrink_after_one_sigint_per_tick(void **state)
{
    corral_service *svc = SERVICE(KEYS(SHRINKING, "shrink_after=3s"));

    (void)state;
    one_second_of_load(svc, 4, 500);
    assert_int_equal(state_of(svc)->process_count, 8);

    fake_host_advance(SEC); /* a quiet second: the target falls to 4 */
    fake_host_advance(2 * SEC);
    assert_int_equal(sigints(svc), 0);
    fake_host_advance(SEC); /* lower for 3 s */
    assert_int_equal(sigints(svc), 1);
    fake_host_advance(SEC);
    assert_int_equal(sigints(svc), 2);
    fake_host_advance(10 * SEC); /* those asked do not count: four in all */
    assert_int_equal(sigints(svc), 4);
}

static void test_load_coming_back_restarts_the_shrink_countdown(void **state)
{
    corral_service *svc = SERVICE(KEYS(SHRINKING, "shrink_after=3s"));

    (void)state;
    one_second_of_load(svc, 4, 500);
    fake_host_advance(3 * SEC); /* lower for 2 s */
    one_second_of_load(svc, 4, 500);
    fake_host_advance(3 * SEC); /* lower again, for 2 s */
    assert_int_equal(sigints(svc), 0);
    fake_host_advance(SEC);
    assert_int_equal(sigints(svc), 1);
}

static void test_client_finding_every_slot_taken_restarts_the_countdown(void **state)
{
    corral_service *svc = SERVICE(KEYS(SHRINKING, "shrink_after=3s"));
    const corral_host *host = fake_host_get();

    (void)state;
    one_second_of_load(svc, 4, 500);
    fake_host_advance(3 * SEC); /* lower for 2 s */
    for (corral_process *p = host->process_next(svc, NULL); p != NULL;
         p = host->process_next(svc, p))
        fake_host_status(svc, p->pid, 0);
    fake_host_connect(svc, 1); /* every slot taken: a new process, and patience */
    clients_leave(svc);
    /* The next tick grows by one for that client; the target is lower
     * again from the tick after. */
    fake_host_advance(4 * SEC);
    assert_int_equal(sigints(svc), 0);
    fake_host_advance(SEC);
    assert_int_equal(sigints(svc), 1);
}

static void test_processes_asked_to_leave_do_not_count(void **state)
{
    corral_service *svc = SERVICE(KEYS(SHRINKING, "shrink_after=0"));

    (void)state;
    one_second_of_load(svc, 4, 500);
    fake_host_advance(SEC);
    assert_int_equal(sigints(svc), 1); /* 8 processes, target 4 */

    one_second_of_load(svc, 4, 500); /* target 8 again; one of the 8 is leaving */
    assert_int_equal(state_of(svc)->process_count, 9);
    assert_int_equal(sigints(svc), 1);
}

static void test_client_finding_no_free_slot_gets_a_process_between_ticks(void **state)
{
    corral_service *svc = SERVICE(KEYS("min_spare=0"));

    (void)state;
    assert_int_equal(fake_host_count(svc, FAKE_SPAWN), 0);
    assert_true(state_of(svc)->listening);
    fake_host_connect(svc, 1);
    assert_int_equal(fake_host_count(svc, FAKE_SPAWN), 1);
    assert_false(state_of(svc)->listening);
}

static void test_startup_failure_throttles(void **state)
{
    corral_service *svc = SERVICE(NULL);

    (void)state;
    fake_host_exit(svc, fake_host_pid(svc, 0), FAKE_EXITED(1));
    assert_log(CORRAL_LOG_ERROR, "service(test): command startup failed, throttling for 2.000 secs",
               1);
    fake_host_advance(SEC);
    assert_int_equal(fake_host_count(svc, FAKE_SPAWN), 1);
    fake_host_advance(2 * SEC);
    assert_int_equal(state_of(svc)->process_count, 1); /* min_spare again */
    assert_nothing_refused();
}

static void test_headroom_is_a_number_from_1_to_10(void **state)
{
    const char *const bad[] = { "0.5", "abc", "1.2.3", "10.5", "", "-1", "1,2" };
    const char *const good[] = { "1", "1.25", "10.0" };

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char setting[32], expected[80];
        char *error;

        snprintf(setting, sizeof(setting), "headroom=%s", bad[i]);
        snprintf(expected, sizeof(expected), "headroom '%s' is not a number from 1.0 to 10.0",
                 bad[i]);
        error = refusal(KEYS(setting));
        assert_string_equal(error, expected);
        free(error);
    }
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        char setting[32];

        snprintf(setting, sizeof(setting), "headroom=%s", good[i]);
        SERVICE(KEYS(setting));
    }
}

static void test_stop_removes_the_tick_and_stops_listening(void **state)
{
    corral_service *svc = SERVICE(KEYS("min_spare=0"));

    (void)state;
    assert_int_equal(fake_host_stop(svc), 0);
    assert_false(state_of(svc)->listening);
}

int main(void)
{
#define TEST(name) cmocka_unit_test_setup_teardown(name, fake_host_setup, fake_host_teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_estimator_window_samples),
        cmocka_unit_test(test_estimator_weight_follows_the_window_length),
        cmocka_unit_test(test_estimator_rising_load_follows_the_last_window_up_only),
        cmocka_unit_test(test_estimator_client_served_across_windows_counts_whole),
        cmocka_unit_test(test_estimator_slots_of_a_dead_process_are_no_completions),
        TEST(test_starts_min_spare_processes_and_ticks_every_second),
        TEST(test_steady_load_sizes_the_pool_by_littles_law),
        TEST(test_client_limit_converts_slots_to_processes),
        TEST(test_a_burst_is_met_at_the_next_tick_despite_smoothing),
        TEST(test_clients_finding_the_pool_full_raise_the_target),
        TEST(test_growth_is_limited_per_tick),
        TEST(test_target_is_capped_at_process_limit),
        TEST(test_shrinks_after_shrink_after_one_sigint_per_tick),
        TEST(test_load_coming_back_restarts_the_shrink_countdown),
        TEST(test_client_finding_every_slot_taken_restarts_the_countdown),
        TEST(test_processes_asked_to_leave_do_not_count),
        TEST(test_client_finding_no_free_slot_gets_a_process_between_ticks),
        TEST(test_startup_failure_throttles),
        TEST(test_headroom_is_a_number_from_1_to_10),
        TEST(test_stop_removes_the_tick_and_stops_listening),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
