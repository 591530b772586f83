/* SPDX-License-Identifier: MIT */
/*
 * test-policy-ondemand.c - the ondemand policy on the fake host.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fake-host.h"

const corral_policy *ondemand_LTX_corral_policy_entry(void);

#define KEYS(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define SEC 1000000ull
#define MSEC 1000ull

/* ------------------------------------------------------------------ */
/* Helpers.                                                            */

static corral_service *start_service(const fake_service_settings *settings,
                                     const char *const *keys)
{
    const corral_policy *policy = ondemand_LTX_corral_policy_entry();
    corral_service *svc =
        fake_host_add_service(settings, policy, fake_host_policy_values(policy, keys));

    fake_host_start(svc);
    fake_host_started(svc);
    return svc;
}

/* One slot per process unless a test says otherwise, so that one client
 * makes a process busy. */
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

/* A client arrives while nobody is free, and its new process takes it. */
static pid_t serve_new_client(corral_service *svc)
{
    const fake_action *spawn;

    fake_host_connect(svc, 1);
    spawn = fake_host_last(svc, FAKE_SPAWN);
    assert_non_null(spawn);
    fake_host_accept(svc, spawn->pid);
    return spawn->pid;
}

static void assert_sigint_to(corral_service *svc, pid_t pid)
{
    const fake_action *signal = fake_host_last(svc, FAKE_SIGNAL);

    assert_non_null(signal);
    assert_int_equal(signal->signo, SIGINT);
    assert_int_equal(signal->pid, pid);
}

static void assert_nothing_refused(void)
{
    assert_int_equal(fake_host_count(NULL, FAKE_REFUSED), 0);
}

/* ------------------------------------------------------------------ */
/* Starting processes.                                                 */

static void test_no_process_until_a_client_comes(void **state)
{
    corral_service *svc = SERVICE(NULL, .process_min_avail = 3);

    (void)state;
    fake_host_advance(60 * SEC);
    assert_int_equal(fake_host_count(svc, FAKE_SPAWN), 0);
    assert_true(state_of(svc)->listening);
}

static void test_each_client_finding_no_free_slot_gets_one_process(void **state)
{
    corral_service *svc = SERVICE(NULL);

    (void)state;
    fake_host_connect(svc, 1);
    assert_int_equal(fake_host_count(svc, FAKE_SPAWN), 1);
    assert_false(state_of(svc)->listening);
    fake_host_accept(svc, fake_host_pid(svc, 0));
    assert_true(state_of(svc)->listening);

    serve_new_client(svc);
    assert_int_equal(state_of(svc)->process_count, 2);
    assert_true(state_of(svc)->listening);
    assert_nothing_refused();
}

/* Clients already waiting when the listener wakes each get a process at
 * once, not one per wakeup. */
static void test_queued_clients_each_get_a_process_at_once(void **state)
{
    corral_service *svc = SERVICE(NULL, .process_limit = 10);

    (void)state;
    fake_host_connect(svc, 4);
    assert_int_equal(fake_host_count(svc, FAKE_SPAWN), 4);
    assert_false(state_of(svc)->listening);
    for (unsigned i = 0; i < 4; i++)
        fake_host_accept(svc, fake_host_pid(svc, i));
    assert_int_equal(fake_host_queued(svc), 0);
    assert_true(state_of(svc)->listening);
    assert_nothing_refused();
}

static void test_queued_clients_share_processes_up_to_client_limit_and_process_limit(void **state)
{
    corral_service *shared =
        start_service(&(fake_service_settings){ .process_limit = 10, .client_limit = 2 }, NULL);
    corral_service *capped = SERVICE(NULL, .name = "capped", .process_limit = 3);

    (void)state;
    fake_host_connect(shared, 5);
    assert_int_equal(fake_host_count(shared, FAKE_SPAWN), 3);
    fake_host_connect(capped, 5);
    assert_int_equal(fake_host_count(capped, FAKE_SPAWN), 3);
    assert_nothing_refused();
}

static void test_free_slot_takes_the_client_without_a_new_process(void **state)
{
    corral_service *svc = SERVICE(NULL);
    pid_t pid = serve_new_client(svc);

    (void)state;
    fake_host_release(svc, pid);
    assert_false(state_of(svc)->listening);
    fake_host_connect(svc, 1);
    assert_int_equal(fake_host_count(svc, FAKE_SPAWN), 1);
}

/* ------------------------------------------------------------------ */
/* Idle processes.                                                     */

static void test_idle_process_asked_to_leave_after_process_idle_timeout(void **state)
{
    corral_service *svc = SERVICE(NULL);
    pid_t pid = serve_new_client(svc);

    (void)state;
    fake_host_release(svc, pid);
    assert_true(fake_host_has_timer(svc, 10000, false));
    fake_host_advance(10 * SEC - 1);
    assert_int_equal(sigints(svc), 0);
    fake_host_advance(1);
    assert_int_equal(sigints(svc), 1);
    assert_sigint_to(svc, pid);

    fake_host_exit(svc, pid, 0);
    assert_true(state_of(svc)->listening);
    assert_int_equal(fake_host_timer_count(svc), 0);
    assert_nothing_refused();
}

static void test_client_before_the_timeout_restarts_it(void **state)
{
    corral_service *svc = SERVICE(NULL);
    pid_t pid = serve_new_client(svc);
    uint64_t idle_again;

    (void)state;
    fake_host_release(svc, pid);
    fake_host_advance(6 * SEC);
    fake_host_accept(svc, pid);
    assert_int_equal(fake_host_timer_count(svc), 0);
    fake_host_advance(6 * SEC);
    fake_host_release(svc, pid);
    idle_again = fake_host_now();

    fake_host_advance_to(idle_again + 10 * SEC - 1);
    assert_int_equal(sigints(svc), 0);
    fake_host_advance(1);
    assert_sigint_to(svc, pid);
}

static void test_each_process_has_its_own_timer(void **state)
{
    corral_service *svc = SERVICE(NULL);
    pid_t first = serve_new_client(svc), second = serve_new_client(svc);

    (void)state;
    fake_host_release(svc, first);
    fake_host_advance(3 * SEC);
    fake_host_release(svc, second);
    assert_int_equal(fake_host_timer_count(svc), 2);

    fake_host_advance(7 * SEC);
    assert_int_equal(sigints(svc), 1);
    assert_sigint_to(svc, first);
    fake_host_advance(3 * SEC);
    assert_int_equal(sigints(svc), 2);
    assert_sigint_to(svc, second);
}

static void test_process_with_a_client_is_not_idle(void **state)
{
    corral_service *svc = start_service(&(fake_service_settings){ .client_limit = 5 }, NULL);

    (void)state;
    fake_host_connect(svc, 1);
    fake_host_accept(svc, fake_host_pid(svc, 0));
    fake_host_advance(60 * SEC);
    assert_int_equal(sigints(svc), 0);
    assert_int_equal(fake_host_timer_count(svc), 0);
}

static void test_new_process_is_idle_from_its_first_record(void **state)
{
    corral_service *svc = SERVICE(NULL);
    pid_t pid;

    (void)state;
    fake_host_connect(svc, 1);
    pid = fake_host_pid(svc, 0);
    fake_host_advance(20 * SEC); /* no record yet: not known to be idle */
    assert_int_equal(fake_host_timer_count(svc), 0);
    fake_host_status(svc, pid, 1); /* the client went elsewhere */
    fake_host_advance(10 * SEC);
    assert_sigint_to(svc, pid);
}

static void test_process_idle_timeout_key(void **state)
{
    corral_service *svc = SERVICE(KEYS("process_idle_timeout=500ms"));
    pid_t pid = serve_new_client(svc);

    (void)state;
    fake_host_release(svc, pid);
    fake_host_advance(500 * MSEC);
    assert_sigint_to(svc, pid);
}

static void test_refused_sigint_is_repeated_only_a_whole_timeout_later(void **state)
{
    corral_service *svc = SERVICE(NULL);
    pid_t pid = serve_new_client(svc);
    uint64_t first_sigint;

    (void)state;
    fake_host_release(svc, pid);
    fake_host_advance(10 * SEC);
    first_sigint = fake_host_now();
    assert_int_equal(sigints(svc), 1);

    fake_host_advance(100 * MSEC);
    fake_host_status(svc, pid, 1); /* the application refused to leave */
    fake_host_advance_to(first_sigint + 10 * SEC - 1);
    assert_int_equal(sigints(svc), 1);
    fake_host_advance(1);
    assert_int_equal(sigints(svc), 2);
}

static void test_silent_process_after_sigint_gets_no_second_one(void **state)
{
    corral_service *svc = SERVICE(NULL);
    pid_t pid = serve_new_client(svc);

    (void)state;
    fake_host_release(svc, pid);
    fake_host_advance(60 * SEC);
    assert_int_equal(sigints(svc), 1);
    assert_int_equal(fake_host_timer_count(svc), 0);
}

/* ------------------------------------------------------------------ */
/* process_limit, failures, stop.                                      */

static void test_at_process_limit_clients_wait_with_a_warning(void **state)
{
    corral_service *svc = SERVICE(NULL, .process_limit = 1);
    pid_t pid = serve_new_client(svc);

    (void)state;
    assert_true(state_of(svc)->listening);
    fake_host_connect(svc, 2);
    assert_int_equal(fake_host_count_log(CORRAL_LOG_WARNING,
                                         "service(test): process_limit (1) reached, client "
                                         "connections are being dropped"),
                     1);
    assert_false(state_of(svc)->listening);
    assert_int_equal(fake_host_queued(svc), 2);

    fake_host_release(svc, pid);
    fake_host_accept(svc, pid); /* the process takes the next one itself */
    assert_int_equal(fake_host_queued(svc), 1);
    assert_int_equal(fake_host_count(svc, FAKE_DROP_QUEUED) + fake_host_count(svc, FAKE_DROP_ONE),
                     0);
    assert_int_equal(fake_host_count(svc, FAKE_SPAWN), 1);
    assert_nothing_refused();
}

static void test_startup_failure_throttles_then_listens_again(void **state)
{
    corral_service *svc = SERVICE(NULL);

    (void)state;
    fake_host_connect(svc, 1);
    fake_host_exit(svc, fake_host_pid(svc, 0), FAKE_EXITED(1));
    assert_int_equal(fake_host_count_log(CORRAL_LOG_ERROR,
                                         "service(test): command startup failed, throttling for "
                                         "2.000 secs"),
                     1);
    assert_false(state_of(svc)->listening);
    fake_host_advance(2 * SEC);
    assert_true(state_of(svc)->listening);

    fake_host_connect(svc, 1);
    fake_host_exit(svc, fake_host_pid(svc, 0), FAKE_EXITED(1));
    assert_int_equal(fake_host_last(svc, FAKE_THROTTLE)->msecs, 4000);
    assert_nothing_refused();
}

static void test_stop_removes_every_idle_timer(void **state)
{
    corral_service *svc = SERVICE(NULL);
    pid_t first = serve_new_client(svc), second = serve_new_client(svc);

    (void)state;
    fake_host_release(svc, first);
    fake_host_release(svc, second);
    assert_int_equal(fake_host_timer_count(svc), 2);
    assert_int_equal(fake_host_stop(svc), 0);
    assert_false(state_of(svc)->listening);
}

int main(void)
{
#define TEST(name) cmocka_unit_test_setup_teardown(name, fake_host_setup, fake_host_teardown)
    const struct CMUnitTest tests[] = {
        TEST(test_no_process_until_a_client_comes),
        TEST(test_each_client_finding_no_free_slot_gets_one_process),
        TEST(test_queued_clients_each_get_a_process_at_once),
        TEST(test_queued_clients_share_processes_up_to_client_limit_and_process_limit),
        TEST(test_free_slot_takes_the_client_without_a_new_process),
        TEST(test_idle_process_asked_to_leave_after_process_idle_timeout),
        TEST(test_client_before_the_timeout_restarts_it),
        TEST(test_each_process_has_its_own_timer),
        TEST(test_process_with_a_client_is_not_idle),
        TEST(test_new_process_is_idle_from_its_first_record),
        TEST(test_process_idle_timeout_key),
        TEST(test_refused_sigint_is_repeated_only_a_whole_timeout_later),
        TEST(test_silent_process_after_sigint_gets_no_second_one),
        TEST(test_at_process_limit_clients_wait_with_a_warning),
        TEST(test_startup_failure_throttles_then_listens_again),
        TEST(test_stop_removes_every_idle_timer),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
