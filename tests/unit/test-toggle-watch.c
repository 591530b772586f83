/* SPDX-License-Identifier: MIT */
/*
 * The toggle watch on a real pipe and the real GLib main loop: it calls
 * back only while on, a readable descriptor does not spin the loop while
 * off, and switching writes nothing to GLib's wakeup eventfd (no extra
 * loop iteration).
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <glib.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
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

static unsigned broken_calls;

static void on_broken(void *data)
{
    (void)data;
    broken_calls++;
}

static void on_never(void *data)
{
    (void)data;
    fail_msg("a broken listener must not be reported as readable");
}

/* A listening socket that a process shut down reports POLLHUP (TCP) or
 * POLLRDHUP (unix) for ever: the watch says so once, on or off, and then
 * leaves the descriptor alone instead of waking the loop again. */
static void test_reports_a_shut_down_listener_once(void **unused)
{
    const int kinds[] = { AF_INET, AF_UNIX };

    (void)unused;
    for (size_t k = 0; k < G_N_ELEMENTS(kinds); k++) {
        int fd = socket(kinds[k], SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        corral_toggle_watch *watch;

        assert_true(fd >= 0);
        if (kinds[k] == AF_INET) {
            struct sockaddr_in addr = { .sin_family = AF_INET,
                                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
            assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
        } else {
            struct sockaddr_un addr = { .sun_family = AF_UNIX };
            /* An abstract address: nothing to clean up. */
            g_snprintf(addr.sun_path + 1, sizeof(addr.sun_path) - 1, "corral-test-%d",
                       (int)getpid());
            assert_int_equal(bind(fd, (struct sockaddr *)&addr,
                                  offsetof(struct sockaddr_un, sun_path) + 1 +
                                      strlen(addr.sun_path + 1)), 0);
        }
        assert_int_equal(listen(fd, 4), 0);
        watch = corral_toggle_watch_new(fd, on_never, NULL);
        corral_toggle_watch_on_broken(watch, on_broken);
        broken_calls = 0;
        while (g_main_context_iteration(NULL, FALSE))
            ;
        assert_int_equal(broken_calls, 0); /* a healthy listener is quiet */

        assert_int_equal(shutdown(fd, SHUT_RDWR), 0);
        while (g_main_context_iteration(NULL, FALSE))
            ;
        assert_int_equal(broken_calls, 1);
        /* Nothing more, however long the loop runs. */
        for (int i = 0; i < 100; i++)
            (void)g_main_context_iteration(NULL, FALSE);
        assert_int_equal(broken_calls, 1);
        corral_toggle_watch_free(watch);
        close(fd);
    }
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
        cmocka_unit_test(test_reports_a_shut_down_listener_once),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
