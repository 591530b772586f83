/* SPDX-License-Identifier: MIT */
/* Which folders corrald trusts for its own files (dir-trust.h), on real
 * folders under a fresh temporary one. */
#include <glib.h>
#include <glib/gstdio.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "dir-trust.h"

static int setup(void **state)
{
    char *top = g_dir_make_tmp("corral-trust-XXXXXX", NULL);

    *state = top;
    return top != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    char *top = *state;
    char *command = g_strdup_printf("rm -rf '%s'", top);
    int status = system(command);

    g_free(command);
    g_free(top);
    return status == 0 ? 0 : -1;
}

static char *make_folder(const char *top, const char *name, mode_t mode)
{
    char *path = g_build_filename(top, name, NULL);

    assert_int_equal(g_mkdir_with_parents(path, 0700), 0);
    assert_int_equal(chmod(path, mode), 0);
    return path;
}

static void assert_refused(const char *path, const char *reason)
{
    GError *error = NULL;

    assert_false(corral_dir_is_trusted(path, &error));
    assert_non_null(error);
    if (strstr(error->message, reason) == NULL)
        fail_msg("'%s' does not say '%s'", error->message, reason);
    g_error_free(error);
}

static void test_private_and_sticky_folders_are_trusted(void **state)
{
    char *private = make_folder(*state, "private", 0755);
    char *sticky = make_folder(*state, "sticky", 01777);
    char *inside = make_folder(*state, "sticky/inside", 0755);

    assert_true(corral_dir_is_trusted(private, NULL));
    assert_true(corral_dir_is_trusted(sticky, NULL));
    assert_true(corral_dir_is_trusted(inside, NULL));
    g_free(private);
    g_free(sticky);
    g_free(inside);
}

static void test_writable_by_others_without_sticky_is_refused(void **state)
{
    char *open_to_all = make_folder(*state, "all", 0777);
    char *open_to_group = make_folder(*state, "group", 0775);
    char *below = make_folder(*state, "all/below", 0755);

    assert_refused(open_to_all, "is writable by everyone (mode 0777) without the sticky bit");
    assert_refused(open_to_group, "is writable by its group (mode 0775)");
    /* A safe folder inside an unsafe one is no safer. */
    assert_refused(below, "all is writable by everyone");
    g_free(open_to_all);
    g_free(open_to_group);
    g_free(below);
}

static void test_another_users_folder_is_refused(void **state)
{
    char *theirs;
    char *expected;

    if (geteuid() != 0)
        skip();
    theirs = make_folder(*state, "theirs", 0755);
    assert_int_equal(chown(theirs, 12345, 12345), 0);
    expected = g_strdup_printf("%s belongs to uid 12345, not to root or to corrald's uid 0",
                               theirs);
    assert_refused(theirs, expected);
    g_free(expected);
    g_free(theirs);
}

static void test_missing_and_non_folders_are_refused(void **state)
{
    char *missing = g_build_filename(*state, "missing", NULL);
    char *file = g_build_filename(*state, "file", NULL);

    assert_true(g_file_set_contents(file, "", 0, NULL));
    assert_refused(missing, "No such file or directory");
    assert_refused(file, "is not a folder");
    g_free(missing);
    g_free(file);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_private_and_sticky_folders_are_trusted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_writable_by_others_without_sticky_is_refused,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_another_users_folder_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_and_non_folders_are_refused, setup,
                                        teardown),
    };

    return cmocka_run_group_tests_name("dir-trust", tests, NULL, NULL);
}
