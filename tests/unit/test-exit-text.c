/* SPDX-License-Identifier: MIT */
/*
 * The exit texts corrald logs for a child, word for word as Dovecot
 * 2.3.19.1's master writes them (service-process.c).
 */
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <cmocka.h>

#include "process.h"

#define URL "https://dovecot.org/bugreport.html#coredumps"

/* Linux wait statuses. */
#define EXITED(code) ((code) << 8)
#define SIGNALED(signo) (signo)
#define CORE_DUMPED(signo) ((signo) | 0x80)

static const corral_exit_hints hints = {
    .service_name = "imap",
    .vsz_limit = 256ull * 1024 * 1024,
};

static void assert_text(int wait_status, const corral_exit_hints *with, const char *expected)
{
    char *text = corral_exit_text(123, wait_status, with);

    if (expected == NULL) {
        assert_null(text);
        return;
    }
    assert_non_null(text);
    assert_string_equal(text, expected);
    g_free(text);
}

/* Sets the soft limit (at most the hard one) as corrald would start with
 * it; false when the hard limit allows no core at all. */
static bool set_core_limit(rlim_t limit)
{
    struct rlimit rl;

    assert_int_equal(getrlimit(RLIMIT_CORE, &rl), 0);
    rl.rlim_cur = limit > rl.rlim_max ? rl.rlim_max : limit;
    assert_int_equal(setrlimit(RLIMIT_CORE, &rl), 0);
    corral_exit_texts_init();
    return rl.rlim_cur == limit || rl.rlim_cur > 0;
}

static void test_clean_exit_has_no_text(void **state)
{
    (void)state;
    assert_text(EXITED(0), &hints, NULL);
}

static void test_lib_master_exit_codes_are_named(void **state)
{
    (void)state;
    assert_text(EXITED(3), &hints, "child 123 returned error 3");
    assert_text(EXITED(80), &hints, "child 123 returned error 80 (Can't open log file)");
    assert_text(EXITED(84), &hints, "child 123 returned error 84 (exec() failed)");
    assert_text(EXITED(89), &hints, "child 123 returned error 89 (Fatal failure)");
}

static void test_out_of_memory_names_vsz_limit_and_core_outofmem(void **state)
{
    corral_exit_hints unlimited = hints;

    (void)state;
    unsetenv("CORE_OUTOFMEM");
    assert_text(EXITED(83), &hints,
                "child 123 returned error 83 (Out of memory (service imap { vsz_limit=256 MB }, "
                "you may need to increase it) - set CORE_OUTOFMEM=1 environment to get core "
                "dump)");
    unlimited.vsz_limit = 0;
    assert_text(EXITED(83), &unlimited,
                "child 123 returned error 83 (Out of memory - set CORE_OUTOFMEM=1 environment "
                "to get core dump)");
    setenv("CORE_OUTOFMEM", "1", 1);
    assert_text(EXITED(83), &unlimited, "child 123 returned error 83 (Out of memory)");
    unsetenv("CORE_OUTOFMEM");
}

static void test_core_hints_follow_the_master_core_limit(void **state)
{
    char *text;

    (void)state;
    set_core_limit(0);
    assert_text(SIGNALED(SIGSEGV), &hints,
                "child 123 killed with signal 11 (core dumps disabled - " URL ")");
    assert_text(SIGNALED(SIGABRT), &hints,
                "child 123 killed with signal 6 (core dumps disabled - " URL ")");
    assert_text(SIGNALED(SIGBUS), &hints,
                "child 123 killed with signal 7 (core dumps disabled - " URL ")");
    /* Signals that do not dump core get no hint; a dump is said so. */
    assert_text(SIGNALED(SIGTERM), &hints, "child 123 killed with signal 15");
    assert_text(CORE_DUMPED(SIGSEGV), &hints, "child 123 killed with signal 11 (core dumped)");

    /* With cores allowed, the reason depends on the kernel's settings;
     * every variant starts the same way. */
    if (!set_core_limit(RLIM_INFINITY))
        skip();
    text = corral_exit_text(123, SIGNALED(SIGSEGV), &hints);
    assert_non_null(text);
    assert_true(g_str_has_prefix(text, "child 123 killed with signal 11 (core not dumped - " URL));
    assert_true(g_str_has_suffix(text, ")") || strstr(text, "add -D parameter") != NULL);
    g_free(text);
    set_core_limit(0);
}

static void test_no_hints_without_a_service(void **state)
{
    (void)state;
    unsetenv("CORE_OUTOFMEM");
    assert_text(EXITED(83), NULL,
                "child 123 returned error 83 (Out of memory - set CORE_OUTOFMEM=1 environment "
                "to get core dump)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean_exit_has_no_text),
        cmocka_unit_test(test_lib_master_exit_codes_are_named),
        cmocka_unit_test(test_out_of_memory_names_vsz_limit_and_core_outofmem),
        cmocka_unit_test(test_core_hints_follow_the_master_core_limit),
        cmocka_unit_test(test_no_hints_without_a_service),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
