/* SPDX-License-Identifier: MIT */
/*
 * The status watch on a real pipe and the real GLib main loop: when it
 * reads at once, when it puts a read off to the end of its interval, and
 * that a put-off pipe does not spin the loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <unistd.h>

#include <cmocka.h>

#include "status-watch.h"

/* Long enough that "at once" and "after the interval" cannot be confused
 * on a loaded machine; short enough to keep the test quick. */
#define INTERVAL_USEC (300 * 1000)
#define DEADLINE_USEC (5 * 1000 * 1000)

typedef struct {
    int fds[2];
    corral_status_watch *watch;
    bool urgent;
    bool free_on_read;
    unsigned reads;
    size_t bytes;
    int64_t read_usec[16];
} fixture;

static void on_read(void *data)
{
    fixture *f = data;
    char buf[4096];
    ssize_t n;

    while ((n = read(f->fds[0], buf, sizeof(buf))) > 0)
        f->bytes += (size_t)n;
    assert_true(n < 0 && errno == EAGAIN);
    if (f->reads < G_N_ELEMENTS(f->read_usec))
        f->read_usec[f->reads] = g_get_monotonic_time();
    f->reads++;
    if (f->free_on_read) {
        corral_status_watch_free(f->watch);
        f->watch = NULL;
    }
}

static bool is_urgent(void *data)
{
    return ((fixture *)data)->urgent;
}

static int setup(void **state)
{
    fixture *f = g_new0(fixture, 1);

    if (pipe2(f->fds, O_NONBLOCK | O_CLOEXEC) < 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;

    corral_status_watch_free(f->watch);
    /* Let GLib finish destroying the source before the next test. */
    while (g_main_context_iteration(NULL, FALSE))
        ;
    close(f->fds[0]);
    close(f->fds[1]);
    g_free(f);
    return 0;
}

static void watch(fixture *f, uint64_t interval_usec)
{
    f->watch = corral_status_watch_new(f->fds[0], interval_usec, on_read, is_urgent, f);
}

static void write_record(fixture *f)
{
    char record[12] = { 0 };

    assert_int_equal(write(f->fds[1], record, sizeof(record)), sizeof(record));
}

/* Iterates the loop until `reads` reads have happened, or fails at the
 * deadline.  Returns the number of loop iterations it took. */
static unsigned run_until_reads(fixture *f, unsigned reads)
{
    int64_t deadline = g_get_monotonic_time() + DEADLINE_USEC;
    unsigned iterations = 0;

    while (f->reads < reads) {
        assert_true(g_get_monotonic_time() < deadline);
        g_main_context_iteration(NULL, TRUE);
        iterations++;
    }
    return iterations;
}

static void test_first_record_is_read_at_once(void **state)
{
    fixture *f = *state;
    int64_t written;

    watch(f, INTERVAL_USEC);
    written = g_get_monotonic_time();
    write_record(f);
    run_until_reads(f, 1);
    assert_true(f->read_usec[0] - written < INTERVAL_USEC / 2);
    assert_int_equal(f->bytes, 12);
}

static void test_records_within_the_interval_come_in_one_read_at_its_end(void **state)
{
    fixture *f = *state;
    unsigned iterations;

    watch(f, INTERVAL_USEC);
    write_record(f);
    run_until_reads(f, 1);
    for (int i = 0; i < 5; i++)
        write_record(f);
    iterations = run_until_reads(f, 2);
    assert_int_equal(f->reads, 2);
    assert_int_equal(f->bytes, 6 * 12);
    assert_true(f->read_usec[1] - f->read_usec[0] >= INTERVAL_USEC);
    assert_true(f->read_usec[1] - f->read_usec[0] < INTERVAL_USEC + DEADLINE_USEC / 5);
    /* The readable pipe is out of the poll set meanwhile: the loop sleeps
     * instead of waking for it again and again. */
    assert_true(iterations <= 4);
}

static void test_urgent_records_are_read_at_once(void **state)
{
    fixture *f = *state;
    int64_t written;

    watch(f, INTERVAL_USEC);
    write_record(f);
    run_until_reads(f, 1);
    f->urgent = true;
    written = g_get_monotonic_time();
    write_record(f);
    run_until_reads(f, 2);
    assert_true(f->read_usec[1] - written < INTERVAL_USEC / 2);
}

static void set_flag(gpointer data)
{
    *(bool *)data = true;
}

static void test_record_after_a_quiet_interval_is_read_at_once(void **state)
{
    fixture *f = *state;
    int64_t written;

    watch(f, INTERVAL_USEC / 3);
    write_record(f);
    run_until_reads(f, 1);
    /* Let the interval pass with the loop running: nothing to read,
     * nothing read. */
    bool quiet_over = false;
    g_timeout_add_once((INTERVAL_USEC / 3) / 1000 + 10, set_flag, &quiet_over);
    while (!quiet_over)
        g_main_context_iteration(NULL, TRUE);
    assert_int_equal(f->reads, 1);
    written = g_get_monotonic_time();
    write_record(f);
    run_until_reads(f, 2);
    assert_true(f->read_usec[1] - written < INTERVAL_USEC / 6);
}

static void test_interval_zero_reads_every_wakeup(void **state)
{
    fixture *f = *state;

    watch(f, 0);
    for (unsigned i = 1; i <= 10; i++) {
        write_record(f);
        run_until_reads(f, i);
        assert_int_equal(f->bytes, i * 12);
    }
}

static void test_watch_may_be_freed_from_its_read(void **state)
{
    fixture *f = *state;

    watch(f, INTERVAL_USEC);
    f->free_on_read = true;
    write_record(f);
    run_until_reads(f, 1);
    assert_null(f->watch);
    write_record(f);
    while (g_main_context_iteration(NULL, FALSE))
        ;
    assert_int_equal(f->reads, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_first_record_is_read_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_records_within_the_interval_come_in_one_read_at_its_end, setup, teardown),
        cmocka_unit_test_setup_teardown(test_urgent_records_are_read_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_after_a_quiet_interval_is_read_at_once,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_interval_zero_reads_every_wakeup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch_may_be_freed_from_its_read, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
