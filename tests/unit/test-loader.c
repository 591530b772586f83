/* SPDX-License-Identifier: MIT */
/* The policy loader against fixture plugins built beside the tests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <glib.h>

#include "config.h"
#include "policy-loader.h"

static const char *fixture_dir;

static char *fixture_path(const char *name)
{
    return g_strdup_printf("%s/%s.so", fixture_dir, name);
}

static void assert_contains(const char *haystack, const char *needle)
{
    if (strstr(haystack, needle) == NULL)
        fail_msg("\"%s\" does not contain \"%s\"", haystack, needle);
}

static void test_valid_plugin_loads(void **unused)
{
    char *path = fixture_path("policy_fixture_valid");
    GError *error = NULL;
    corral_policy_module *module = corral_policy_module_open(path, &error);

    (void)unused;
    assert_null(error);
    assert_non_null(module);
    assert_string_equal(module->name, "fixture_valid");
    assert_string_equal(module->path, path);
    assert_int_equal(module->policy->abi_version, CORRAL_POLICY_ABI_VERSION);
    assert_string_equal(module->policy->keys[0].name, "spare");
    corral_policy_module_unref(module);
    g_free(path);
}

static void test_wrong_abi_is_refused_naming_file_and_versions(void **unused)
{
    char *path = fixture_path("policy_fixture_wrong_abi");
    char *theirs = g_strdup_printf("version %u", CORRAL_POLICY_ABI_VERSION + 1);
    char *ours = g_strdup_printf("versions %u to %u", CORRAL_POLICY_ABI_VERSION_MIN,
                                 CORRAL_POLICY_ABI_VERSION);
    GError *error = NULL;

    (void)unused;
    assert_null(corral_policy_module_open(path, &error));
    assert_non_null(error);
    assert_contains(error->message, path);
    assert_contains(error->message, theirs);
    assert_contains(error->message, ours);
    g_error_free(error);
    g_free(theirs);
    g_free(ours);
    g_free(path);
}

/* Version 2 only appended to the host table: a version 1 plugin loads. */
static void test_older_compatible_abi_loads(void **unused)
{
    char *path = fixture_path("policy_fixture_abi_v1");
    GError *error = NULL;
    corral_policy_module *module;

    (void)unused;
    module = corral_policy_module_open(path, &error);
    assert_null(error);
    assert_non_null(module);
    assert_int_equal(module->policy->abi_version, 1);
    corral_policy_module_unref(module);
    g_free(path);
}

static void test_missing_entry_symbol_is_refused(void **unused)
{
    char *path = fixture_path("policy_fixture_no_entry");
    GError *error = NULL;

    (void)unused;
    assert_null(corral_policy_module_open(path, &error));
    assert_non_null(error);
    assert_contains(error->message, path);
    assert_contains(error->message, CORRAL_POLICY_ENTRY_SYMBOL);
    g_error_free(error);
    g_free(path);
}

static void test_missing_file_is_refused(void **unused)
{
    GError *error = NULL;

    (void)unused;
    assert_null(corral_policy_module_open("/nonexistent/nothing.so", &error));
    assert_non_null(error);
    assert_contains(error->message, "/nonexistent/nothing.so");
    g_error_free(error);
}

static void test_loader_searches_policy_path_and_shares_modules(void **unused)
{
    corral_policy_loader *loader;
    corral_policy_module *first, *second;
    GError *error = NULL;

    (void)unused;
    g_setenv("CORRAL_POLICY_PATH", fixture_dir, TRUE);
    loader = corral_policy_loader_new(NULL, NULL);
    first = corral_policy_loader_load(loader, "policy_fixture_valid", &error);
    assert_null(error);
    assert_non_null(first);
    second = corral_policy_loader_load(loader, "policy_fixture_valid", &error);
    assert_ptr_equal(first, second);
    corral_policy_module_unref(first);
    corral_policy_module_unref(second);
    corral_policy_loader_free(loader);
    g_unsetenv("CORRAL_POLICY_PATH");
}

static void test_unknown_policy_names_the_search_path(void **unused)
{
    corral_policy_loader *loader;
    GError *error = NULL;

    (void)unused;
    g_setenv("CORRAL_POLICY_PATH", fixture_dir, TRUE);
    loader = corral_policy_loader_new("/some/policy/dir", NULL);
    assert_null(corral_policy_loader_load(loader, "no_such_policy", &error));
    assert_non_null(error);
    assert_contains(error->message, "no_such_policy.so");
    assert_contains(error->message, fixture_dir);
    assert_contains(error->message, "/some/policy/dir");
    g_clear_error(&error);
    assert_null(corral_policy_loader_load(loader, "../escape", &error));
    assert_non_null(error);
    g_error_free(error);
    corral_policy_loader_free(loader);
    g_unsetenv("CORRAL_POLICY_PATH");
}

static corral_service_config *service_with_keys(const char *const *pairs)
{
    corral_service_config *config = g_new0(corral_service_config, 1);

    config->name = g_strdup("echo");
    config->file = g_strdup("/etc/corral/conf.d/10-echo.conf");
    config->policy_keys = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    for (; pairs != NULL && pairs[0] != NULL; pairs += 2)
        g_hash_table_insert(config->policy_keys, g_strdup(pairs[0]), g_strdup(pairs[1]));
    return config;
}

static void free_service(corral_service_config *config)
{
    g_hash_table_destroy(config->policy_keys);
    g_free(config->name);
    g_free(config->file);
    g_free(config);
}

typedef struct values_case {
    corral_policy_module *module;
} values_case;

static int open_valid(void **state)
{
    char *path = fixture_path("policy_fixture_valid");
    values_case *vc = g_new0(values_case, 1);

    vc->module = corral_policy_module_open(path, NULL);
    g_free(path);
    *state = vc;
    return vc->module != NULL ? 0 : -1;
}

static int close_valid(void **state)
{
    values_case *vc = *state;

    corral_policy_module_unref(vc->module);
    g_free(vc);
    return 0;
}

static void test_policy_values_defaults_and_overrides(void **state)
{
    values_case *vc = *state;
    const char *pairs[] = { "spare", "7", "verbose", "yes", NULL };
    corral_service_config *config = service_with_keys(pairs);
    GError *error = NULL;
    corral_policy_value *values = corral_policy_values_parse(vc->module, config, &error);

    assert_null(error);
    assert_non_null(values);
    assert_int_equal(values[0].u, 7);
    assert_true(values[1].b);
    assert_int_equal(values[2].u, 250);       /* default "250ms" */
    assert_string_equal(values[3].s, "none"); /* default string */
    corral_policy_values_free(vc->module, values);
    free_service(config);
}

static void test_policy_values_unknown_key_names_file_group_key(void **state)
{
    values_case *vc = *state;
    const char *pairs[] = { "sparre", "7", NULL };
    corral_service_config *config = service_with_keys(pairs);
    GError *error = NULL;

    assert_null(corral_policy_values_parse(vc->module, config, &error));
    assert_non_null(error);
    assert_contains(error->message, "/etc/corral/conf.d/10-echo.conf");
    assert_contains(error->message, "[service echo]");
    assert_contains(error->message, "sparre");
    g_error_free(error);
    free_service(config);
}

static void test_policy_values_out_of_range_is_refused(void **state)
{
    values_case *vc = *state;
    const char *pairs[] = { "spare", "101", NULL };
    const char *bad_duration[] = { "tick", "5ms", NULL };
    const char *bad_bool[] = { "verbose", "perhaps", NULL };
    corral_service_config *config = service_with_keys(pairs);
    GError *error = NULL;

    assert_null(corral_policy_values_parse(vc->module, config, &error));
    assert_contains(error->message, "spare");
    g_clear_error(&error);
    free_service(config);

    config = service_with_keys(bad_duration);
    assert_null(corral_policy_values_parse(vc->module, config, &error));
    assert_contains(error->message, "tick");
    g_clear_error(&error);
    free_service(config);

    config = service_with_keys(bad_bool);
    assert_null(corral_policy_values_parse(vc->module, config, &error));
    assert_contains(error->message, "verbose");
    g_clear_error(&error);
    free_service(config);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_plugin_loads),
        cmocka_unit_test(test_wrong_abi_is_refused_naming_file_and_versions),
        cmocka_unit_test(test_older_compatible_abi_loads),
        cmocka_unit_test(test_missing_entry_symbol_is_refused),
        cmocka_unit_test(test_missing_file_is_refused),
        cmocka_unit_test(test_loader_searches_policy_path_and_shares_modules),
        cmocka_unit_test(test_unknown_policy_names_the_search_path),
        cmocka_unit_test_setup_teardown(test_policy_values_defaults_and_overrides, open_valid,
                                        close_valid),
        cmocka_unit_test_setup_teardown(test_policy_values_unknown_key_names_file_group_key,
                                        open_valid, close_valid),
        cmocka_unit_test_setup_teardown(test_policy_values_out_of_range_is_refused, open_valid,
                                        close_valid),
    };

    if (argc < 2) {
        fprintf(stderr, "usage: %s FIXTURE_POLICY_DIR\n", argv[0]);
        return 2;
    }
    fixture_dir = argv[1];
    return cmocka_run_group_tests_name("loader", tests, NULL, NULL);
}
