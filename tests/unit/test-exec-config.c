/* SPDX-License-Identifier: MIT */
/* The execution keys: environment syntax, working_directory, stderr_level. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <cmocka.h>

#include <glib.h>

#include "exec-config.h"

static bool parse(corral_exec_config *exec, const char *key, const char *value, char **problem)
{
    bool known = false;
    bool ok = corral_exec_config_parse_key(exec, "/run/base", key, value, &known, problem);

    assert_true(known);
    return ok;
}

static void test_environment_words_set_and_pass_through(void **state)
{
    corral_exec_config exec;
    char *problem = NULL;
    char **env;

    (void)state;
    corral_exec_config_init(&exec);
    g_setenv("CORRAL_TEST_PASSED", "outer", TRUE);
    g_unsetenv("CORRAL_TEST_ABSENT");
    assert_true(parse(&exec, "environment",
                      "A=1 B=\"two words\" C='it''s' D=x\\ y E= CORRAL_TEST_PASSED "
                      "CORRAL_TEST_ABSENT A=again", &problem));
    env = corral_exec_config_apply_environment(&exec, NULL);
    assert_string_equal(g_environ_getenv(env, "A"), "again");
    assert_string_equal(g_environ_getenv(env, "B"), "two words");
    assert_string_equal(g_environ_getenv(env, "C"), "its");
    assert_string_equal(g_environ_getenv(env, "D"), "x y");
    assert_string_equal(g_environ_getenv(env, "E"), "");
    assert_string_equal(g_environ_getenv(env, "CORRAL_TEST_PASSED"), "outer");
    assert_null(g_environ_getenv(env, "CORRAL_TEST_ABSENT"));
    assert_int_equal(g_strv_length(env), 6);
    g_strfreev(env);

    /* Empty unsets the list. */
    assert_true(parse(&exec, "environment", "", &problem));
    assert_null(exec.environment);
    assert_null(corral_exec_config_apply_environment(&exec, NULL));
    corral_exec_config_clear(&exec);
}

static void test_environment_refuses_bad_names_and_quoting(void **state)
{
    const char *bad[] = { "9X=1", "=value", "A-B=1", "A B=1 'unterminated", "ÄB=1", "\"\"" };
    corral_exec_config exec;

    (void)state;
    corral_exec_config_init(&exec);
    assert_true(parse(&exec, "environment", "KEEP=1", &(char *){ NULL }));
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        char *problem = NULL;
        if (parse(&exec, "environment", bad[i], &problem))
            fail_msg("'%s' was accepted", bad[i]);
        assert_non_null(problem);
        g_free(problem);
        /* A refused value leaves the previous one. */
        assert_string_equal(exec.environment[0], "KEEP=1");
    }
    corral_exec_config_clear(&exec);
}

static void test_working_directory_and_stderr_level(void **state)
{
    corral_exec_config exec;
    char *problem = NULL;
    bool known = true;

    (void)state;
    corral_exec_config_init(&exec);
    assert_int_equal(exec.stderr_level, CORRAL_LEVEL_INFO);
    assert_null(exec.working_directory);
    assert_true(parse(&exec, "working_directory", "app/../srv", &problem));
    assert_string_equal(exec.working_directory, "/run/base/srv");
    assert_true(parse(&exec, "working_directory", "/abs", &problem));
    assert_string_equal(exec.working_directory, "/abs");
    assert_true(parse(&exec, "working_directory", "", &problem));
    assert_null(exec.working_directory);

    assert_true(parse(&exec, "stderr_level", "Warning", &problem));
    assert_int_equal(exec.stderr_level, CORRAL_LEVEL_WARNING);
    assert_true(parse(&exec, "stderr_level", "error", &problem));
    assert_int_equal(exec.stderr_level, CORRAL_LEVEL_ERROR);
    assert_false(parse(&exec, "stderr_level", "fatal", &problem));
    assert_non_null(problem);
    g_free(problem);
    assert_int_equal(exec.stderr_level, CORRAL_LEVEL_ERROR);

    /* Other keys are not this file's. */
    assert_true(corral_exec_config_parse_key(&exec, "/", "process_limit", "1", &known, &problem));
    assert_false(known);
    corral_exec_config_clear(&exec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_environment_words_set_and_pass_through),
        cmocka_unit_test(test_environment_refuses_bad_names_and_quoting),
        cmocka_unit_test(test_working_directory_and_stderr_level),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
