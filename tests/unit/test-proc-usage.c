/* SPDX-License-Identifier: MIT */
/* /proc/PID/stat parsing: fields after a command name the worker chose. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "proc-usage.h"

/* Fields 3.. of a real line, with utime 250, stime 50 and rss 3000 pages. */
#define TAIL "S 1 100 100 0 -1 4194560 500 0 0 0 250 50 0 0 20 0 1 0 12345 " \
             "45678592 3000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0"

static void parses_plain_line(void **state)
{
    corral_proc_usage usage;

    (void)state;
    assert_true(corral_proc_usage_parse_stat("4242 (imap) " TAIL, 100, 4096, &usage));
    assert_int_equal(usage.cpu_usecs, 3000000);
    assert_int_equal(usage.rss_bytes, 3000 * 4096);
}

static void hostile_command_names_do_not_shift_fields(void **state)
{
    corral_proc_usage usage;

    (void)state;
    assert_true(corral_proc_usage_parse_stat("4242 (a) 9 9 (b) 7) " TAIL, 100, 4096, &usage));
    assert_int_equal(usage.cpu_usecs, 3000000);
    assert_int_equal(usage.rss_bytes, 3000 * 4096);
}

static void short_or_garbled_lines_fail(void **state)
{
    corral_proc_usage usage;

    (void)state;
    assert_false(corral_proc_usage_parse_stat("4242 imap S 1 2 3", 100, 4096, &usage));
    assert_false(corral_proc_usage_parse_stat("4242 (imap) S 1 2 3", 100, 4096, &usage));
    assert_false(corral_proc_usage_parse_stat("4242 (imap) S 1 x 3 " TAIL, 100, 4096, &usage));
    assert_int_equal(usage.cpu_usecs, 0);
}

static void reads_own_process(void **state)
{
    corral_proc_usage usage;

    (void)state;
    assert_true(corral_proc_usage_read(getpid(), &usage));
    assert_true(usage.rss_bytes > 0);
    assert_false(corral_proc_usage_read(0, &usage));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_plain_line),
        cmocka_unit_test(hostile_command_names_do_not_shift_fields),
        cmocka_unit_test(short_or_garbled_lines_fail),
        cmocka_unit_test(reads_own_process),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
