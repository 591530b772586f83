/* SPDX-License-Identifier: MIT */
/*
 * The toggle watch on a real pipe and the real GLib main loop: it calls
 * back only while on, a readable descriptor does not spin the loop while
 * off, and switching writes nothing to GLib's wakeup eventfd (no extra
 * loop iteration).
 */
#include <fcntl.h>
#include <glib.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>

#include "toggle-watch.h"

typedef struct {
    int fds[2];
    corral_toggle_watch *watch;
    unsigned calls;
    bool free_on_call;
    bool off_on_call;
} fixture;

static void on_ready(void *data)
{
    fixture *f = data;

    f->calls++;
    if (f->off_on_call)
        corral_toggle_watch_set(f->watch, false);
    if (f->free_on_call) {
        corral_toggle_watch_free(f->watch);
        f->watch = NULL;
    }
}

static int setup(void **state)
{
    fixture *f = g_new0(fixture, 1);

    if (pipe2(f->fds, O_NONBLOCK | O_CLOEXEC) < 0)
        return -1;
    f->watch = corral_toggle_watch_new(f->fds[0], on_ready, f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;

    corral_toggle_watch_free(f->watch);
    while (g_main_context_iteration(NULL, FALSE))
        ;
    close(f->fds[0]);
    close(f->fds[1]);
    g_free(f);
    return 0;
}

/* Runs every iteration that is ready now; returns how many there were. */
static unsigned iterate_ready(void)
{
    unsigned iterations = 0;

    while (g_main_context_iteration(NULL, FALSE) && iterations < 1000)
        iterations++;
    return iterations;
}

static void make_readable(fixture *f)
{
    assert_int_equal(write(f->fds[1], "x", 1), 1);
}

static void test_starts_off_and_ignores_a_readable_fd(void **state)
{
    fixture *f = *state;

    make_readable(f);
    iterate_ready();
    assert_false(corral_toggle_watch_is_on(f->watch));
    assert_int_equal(f->calls, 0);
    /* Nothing is ready: the loop would sleep, not spin on the pipe. */
    assert_false(g_main_context_pending(NULL));
}

static void test_calls_back_while_on_until_switched_off(void **state)
{
    fixture *f = *state;

    make_readable(f);
    corral_toggle_watch_set(f->watch, true);
    assert_true(corral_toggle_watch_is_on(f->watch));
    f->off_on_call = true;
    assert_true(g_main_context_iteration(NULL, FALSE));
    assert_int_equal(f->calls, 1);
    iterate_ready();
    assert_int_equal(f->calls, 1); /* still readable, but off */
    corral_toggle_watch_set(f->watch, true);
    assert_true(g_main_context_iteration(NULL, FALSE));
    assert_int_equal(f->calls, 2);
}

static void test_switching_wakes_nothing(void **state)
{
    fixture *f = *state;

    iterate_ready();
    /* g_unix_fd_add and g_source_remove would each signal GLib's wakeup
     * eventfd, making the next iteration return at once. */
    for (int i = 0; i < 100; i++) {
        corral_toggle_watch_set(f->watch, true);
        corral_toggle_watch_set(f->watch, false);
    }
    assert_false(g_main_context_pending(NULL));
    assert_int_equal(iterate_ready(), 0);
    assert_int_equal(f->calls, 0);
}

static void test_may_be_freed_from_its_callback(void **state)
{
    fixture *f = *state;

    f->free_on_call = true;
    make_readable(f);
    corral_toggle_watch_set(f->watch, true);
    iterate_ready();
    assert_int_equal(f->calls, 1);
    assert_null(f->watch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_starts_off_and_ignores_a_readable_fd, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_calls_back_while_on_until_switched_off, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_switching_wakes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_may_be_freed_from_its_callback, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
