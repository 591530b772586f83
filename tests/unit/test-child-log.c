/* SPDX-License-Identifier: MIT */
/* Parsing workers' stderr lines in Dovecot's internal log format. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "child-log.h"
#include "log-limit.h"

static void test_internal_line_levels_and_pid(void **unused)
{
    struct { const char *line; corral_level level; } cases[] = {
        { "\x01\x01" "123 dbg", CORRAL_LEVEL_DEBUG },
        { "\x01\x02" "123 info", CORRAL_LEVEL_INFO },
        { "\x01\x03" "123 warn", CORRAL_LEVEL_WARNING },
        { "\x01\x04" "123 err", CORRAL_LEVEL_ERROR },
        { "\x01\x05" "123 fatal", CORRAL_LEVEL_FATAL },
        { "\x01\x06" "123 panic", CORRAL_LEVEL_FATAL },
    };
    corral_child_log_line parsed;

    (void)unused;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        corral_child_log_parse(cases[i].line, &parsed);
        assert_int_equal(parsed.level, cases[i].level);
        assert_int_equal(parsed.pid, 123);
        assert_false(parsed.option);
        assert_ptr_equal(parsed.text, cases[i].line + 6);
    }
}

static void test_prefix_length_flag_is_skipped(void **unused)
{
    corral_child_log_line parsed;

    (void)unused;
    corral_child_log_parse("\x01\x42" "77 5 imap: hello", &parsed);
    assert_int_equal(parsed.level, CORRAL_LEVEL_INFO);
    assert_int_equal(parsed.pid, 77);
    assert_string_equal(parsed.text, "imap: hello");
}

static void test_option_lines_are_marked(void **unused)
{
    corral_child_log_line parsed;

    (void)unused;
    corral_child_log_parse("\x01\x08" "55 ip=127.0.0.1", &parsed);
    assert_true(parsed.option);
    assert_int_equal(parsed.pid, 55);
}

static void test_raw_lines_are_errors(void **unused)
{
    const char *raw[] = {
        "raw line without prefix",
        "\x01",                     /* no type byte */
        "\x01\x02" "abc text",      /* no pid */
        "\x01\x02" "12text",        /* no space after pid */
        "\x01\x07" "12 text",       /* unknown type */
        "\x01\x02" "-5 text",       /* negative pid */
    };
    corral_child_log_line parsed;

    (void)unused;
    for (size_t i = 0; i < sizeof(raw) / sizeof(raw[0]); i++) {
        corral_child_log_parse(raw[i], &parsed);
        assert_int_equal(parsed.level, CORRAL_LEVEL_ERROR);
        assert_int_equal(parsed.pid, 0);
        assert_ptr_equal(parsed.text, raw[i]);
    }
}

static void test_control_characters_are_escaped(void **unused)
{
    struct { const char *in, *out; } cases[] = {
        { "plain text", "plain text" },
        { "ansi \033[2J\033[31mred\007", "ansi \\x1b[2J\\x1b[31mred\\x07" },
        { "tab\there\rcr", "tab\\x09here\\x0dcr" },
        { "back\\slash", "back\\\\slash" },
        { "del\x7f", "del\\x7f" },
        { "caf\xc3\xa9", "caf\xc3\xa9" },            /* valid UTF-8 stays */
        { "bin\xff\xc3\xa9", "bin\\xff\\xc3\\xa9" }, /* not UTF-8: every high byte */
    };

    (void)unused;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *escaped = corral_child_log_escape(cases[i].in);
        assert_string_equal(escaped, cases[i].out);
        g_free(escaped);
    }
}

static void test_log_limit_budget_and_suppressed_count(void **unused)
{
    corral_log_limit limit = { 0 };
    uint64_t suppressed = 99, now = 1000;

    (void)unused;
    for (unsigned i = 0; i < CORRAL_LOG_LIMIT_LINES; i++) {
        assert_true(corral_log_limit_allow(&limit, now, &suppressed));
        assert_int_equal(suppressed, 0);
    }
    assert_false(corral_log_limit_allow(&limit, now + 1, &suppressed));
    assert_false(corral_log_limit_allow(&limit, now + 2, &suppressed));
    /* The next window allows again and tells what was held back. */
    assert_true(corral_log_limit_allow(&limit, now + CORRAL_LOG_LIMIT_WINDOW_USEC, &suppressed));
    assert_int_equal(suppressed, 2);
    assert_int_equal(corral_log_limit_take_suppressed(&limit), 0);
    for (unsigned i = 1; i <= CORRAL_LOG_LIMIT_LINES; i++)
        (void)corral_log_limit_allow(&limit, now + CORRAL_LOG_LIMIT_WINDOW_USEC, &suppressed);
    assert_int_equal(corral_log_limit_take_suppressed(&limit), 1);
    assert_int_equal(corral_log_limit_take_suppressed(&limit), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_internal_line_levels_and_pid),
        cmocka_unit_test(test_prefix_length_flag_is_skipped),
        cmocka_unit_test(test_option_lines_are_marked),
        cmocka_unit_test(test_raw_lines_are_errors),
        cmocka_unit_test(test_control_characters_are_escaped),
        cmocka_unit_test(test_log_limit_budget_and_suppressed_count),
    };
    return cmocka_run_group_tests_name("child-log", tests, NULL, NULL);
}
