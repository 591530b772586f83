/* SPDX-License-Identifier: MIT */
/*
 * test-policy-static.c - the static policy on the fake host.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "fake-host.h"

const corral_policy *static_LTX_corral_policy_entry(void);

#define KEYS(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define SEC 1000000ull
#define MSEC 1000ull

/* ------------------------------------------------------------------ */
/* Helpers.                                                            */

static corral_service *start_service(const fake_service_settings *settings,
                                     const char *const *keys)
{
    const corral_policy *policy = static_LTX_corral_policy_entry();
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

static unsigned spawns(corral_service *svc)
{
    return fake_host_count(svc, FAKE_SPAWN);
}

/* The first process reports, then dies with status 1. */
static void first_process_fails(corral_service *svc)
{
    pid_t pid = fake_host_pid(svc, 0);

    fake_host_status(svc, pid, state_of(svc)->client_limit);
    fake_host_exit(svc, pid, FAKE_EXITED(1));
}

/* Expects a replacement exactly `msecs` from now. */
static void assert_replaced_after(corral_service *svc, unsigned msecs)
{
    unsigned before = spawns(svc);

    assert_true(fake_host_has_timer(svc, msecs, false));
    fake_host_advance(msecs * MSEC - 1);
    assert_int_equal(spawns(svc), before);
    fake_host_advance(1);
    assert_int_equal(spawns(svc), before + 1);
}

static char *refusal(const fake_service_settings *settings, const char *const *keys)
{
    const corral_policy *policy = static_LTX_corral_policy_entry();
    corral_service *svc = fake_host_add_service(settings, NULL, NULL);
    char *error = NULL;

    assert_null(policy->service_new(fake_host_get(), svc, fake_host_policy_values(policy, keys),
                                    &error));
    assert_non_null(error);
    return error;
}

/* ------------------------------------------------------------------ */
/* Tests.                                                              */

static void test_starts_exactly_processes_and_never_listens(void **state)
{
    corral_service *svc = SERVICE(KEYS("processes=3"), .process_limit = 5,
                                  .process_min_avail = 5);

    (void)state;
    assert_int_equal(spawns(svc), 3);
    assert_false(state_of(svc)->listening);
    assert_int_equal(fake_host_timer_count(svc), 0);

    for (unsigned i = 0; i < 3; i++)
        fake_host_status(svc, fake_host_pid(svc, i), 0);
    fake_host_connect(svc, 4);
    fake_host_advance(120 * SEC);
    assert_int_equal(spawns(svc), 3);
    assert_false(state_of(svc)->listening);
    assert_int_equal(fake_host_count(NULL, FAKE_REFUSED), 0);
}

static void test_default_is_one_process(void **state)
{
    corral_service *svc = SERVICE(NULL);

    (void)state;
    assert_int_equal(spawns(svc), 1);
}

static void test_exit_is_replaced_after_restart_backoff(void **state)
{
    corral_service *svc = SERVICE(KEYS("processes=2"));

    (void)state;
    first_process_fails(svc);
    assert_int_equal(fake_host_count_log(CORRAL_LOG_WARNING,
                                         "service(test): restarting in 0.100 secs"),
                     1);
    assert_replaced_after(svc, 100);
    assert_int_equal(state_of(svc)->process_count, 2);
}

static void test_backoff_doubles_up_to_restart_backoff_max(void **state)
{
    corral_service *svc = SERVICE(NULL);
    const unsigned waits[] = { 100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000 };

    (void)state;
    for (size_t i = 0; i < sizeof(waits) / sizeof(waits[0]); i++) {
        first_process_fails(svc);
        assert_replaced_after(svc, waits[i]);
    }
}

static void test_backoff_keys(void **state)
{
    corral_service *svc = SERVICE(KEYS("restart_backoff=1s", "restart_backoff_max=3s"));
    const unsigned waits[] = { 1000, 2000, 3000, 3000 };

    (void)state;
    for (size_t i = 0; i < sizeof(waits) / sizeof(waits[0]); i++) {
        first_process_fails(svc);
        assert_replaced_after(svc, waits[i]);
    }
}

static void test_process_that_lived_stable_after_resets_the_backoff(void **state)
{
    corral_service *svc = SERVICE(NULL);

    (void)state;
    for (unsigned wait = 100; wait <= 800; wait *= 2) {
        first_process_fails(svc);
        assert_replaced_after(svc, wait);
    }
    /* The wait would be 1.6 s, but this one lived its ten seconds. */
    fake_host_advance(10 * SEC);
    first_process_fails(svc);
    assert_replaced_after(svc, 100);
    first_process_fails(svc);
    assert_replaced_after(svc, 200);
}

static void test_stable_after_key(void **state)
{
    corral_service *svc = SERVICE(KEYS("stable_after=2s"));

    (void)state;
    first_process_fails(svc);
    fake_host_advance(SEC);
    first_process_fails(svc);
    assert_replaced_after(svc, 200);
    fake_host_advance(2 * SEC);
    first_process_fails(svc);
    assert_replaced_after(svc, 100);
}

static void test_clean_exit_waits_the_first_backoff_and_resets_it(void **state)
{
    corral_service *svc = SERVICE(NULL);

    (void)state;
    first_process_fails(svc);
    fake_host_advance(SEC);
    first_process_fails(svc);
    fake_host_advance(SEC);
    fake_host_clear_actions();

    fake_host_exit(svc, fake_host_pid(svc, 0), 0);
    assert_int_equal(fake_host_count(svc, FAKE_LOG), 0);
    assert_replaced_after(svc, 100);
    first_process_fails(svc);
    assert_replaced_after(svc, 200);
}

static void test_exits_together_share_one_restart_round(void **state)
{
    corral_service *svc = SERVICE(KEYS("processes=3"));

    (void)state;
    for (unsigned i = 0; i < 3; i++)
        first_process_fails(svc);
    assert_int_equal(fake_host_timer_count(svc), 1);
    fake_host_advance(100 * MSEC);
    assert_int_equal(state_of(svc)->process_count, 3);

    first_process_fails(svc);
    assert_replaced_after(svc, 200);
}

static void test_failed_spawn_is_retried_after_the_backoff(void **state)
{
    const corral_policy *policy = static_LTX_corral_policy_entry();
    corral_service *svc = fake_host_add_service(&(fake_service_settings){ 0 }, policy,
                                                fake_host_policy_values(policy,
                                                                        KEYS("processes=2")));

    (void)state;
    fake_host_fail_spawns(svc, 1);
    fake_host_start(svc);
    fake_host_started(svc);
    assert_int_equal(spawns(svc), 0);
    assert_true(fake_host_has_timer(svc, 100, false));
    fake_host_advance(100 * MSEC);
    assert_int_equal(spawns(svc), 2);
}

static void test_processes_above_process_limit_is_refused(void **state)
{
    char *error = refusal(&(fake_service_settings){ .process_limit = 4 }, KEYS("processes=5"));

    (void)state;
    assert_string_equal(error, "processes (5) is greater than process_limit (4)");
    free(error);
}

static void test_backoff_above_its_maximum_is_refused(void **state)
{
    char *error = refusal(&(fake_service_settings){ 0 },
                          KEYS("restart_backoff=2s", "restart_backoff_max=1s"));

    (void)state;
    assert_string_equal(error,
                        "restart_backoff (2000 ms) is greater than restart_backoff_max (1000 ms)");
    free(error);
}

static void test_stop_removes_the_restart_timer(void **state)
{
    corral_service *svc = SERVICE(NULL);

    (void)state;
    first_process_fails(svc);
    assert_int_equal(fake_host_timer_count(svc), 1);
    assert_int_equal(fake_host_stop(svc), 0);
}

int main(void)
{
#define TEST(name) cmocka_unit_test_setup_teardown(name, fake_host_setup, fake_host_teardown)
    const struct CMUnitTest tests[] = {
        TEST(test_starts_exactly_processes_and_never_listens),
        TEST(test_default_is_one_process),
        TEST(test_exit_is_replaced_after_restart_backoff),
        TEST(test_backoff_doubles_up_to_restart_backoff_max),
        TEST(test_backoff_keys),
        TEST(test_process_that_lived_stable_after_resets_the_backoff),
        TEST(test_stable_after_key),
        TEST(test_clean_exit_waits_the_first_backoff_and_resets_it),
        TEST(test_exits_together_share_one_restart_round),
        TEST(test_failed_spawn_is_retried_after_the_backoff),
        TEST(test_processes_above_process_limit_is_refused),
        TEST(test_backoff_above_its_maximum_is_refused),
        TEST(test_stop_removes_the_restart_timer),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
