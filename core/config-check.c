/* SPDX-License-Identifier: MIT */
#include "config-check.h"

#include <grp.h>

#include "credentials.h"

static void add_problem(corral_config_check *check, GError **error)
{
    g_ptr_array_add(check->problems, g_strdup((*error)->message));
    g_clear_error(error);
}

/* "FILE:LINE" of `key` in the service's group, or "FILE" when it is unset. */
static char *key_place(const corral_service_config *service, const char *key)
{
    unsigned line = GPOINTER_TO_UINT(g_hash_table_lookup(service->key_lines, key));

    return line != 0 ? g_strdup_printf("%s:%u", service->file, line) : g_strdup(service->file);
}

static corral_policy_module *load_policy(corral_config_check *check,
                                         const corral_service_config *service, const char *name,
                                         const char *key)
{
    GError *error = NULL;
    corral_policy_module *module = corral_policy_loader_load(check->loader, name, &error);

    if (module == NULL) {
        char *place = key_place(service, key);

        g_ptr_array_add(check->problems, g_strdup_printf("%s: [service %s] %s: %s", place,
                                                         service->name, key, error->message));
        g_free(place);
        g_error_free(error);
    }
    return module;
}

static void check_service(corral_config_check *check, corral_checked_service *checked)
{
    const corral_service_config *service = checked->config;
    corral_credentials credentials;
    corral_policy_value *values;
    GError *error = NULL;

    checked->policy = load_policy(check, service, service->policy, "policy");
    if (checked->policy != NULL) {
        values = corral_policy_values_parse(checked->policy, service, &error);
        if (values == NULL)
            add_problem(check, &error);
        corral_policy_values_free(checked->policy, values);
    }
    for (char **name = service->shadow_policies; name != NULL && *name != NULL; name++) {
        corral_policy_module *shadow = load_policy(check, service, *name, "shadow_policies");

        g_ptr_array_add(checked->shadows, shadow);
        if (shadow == NULL)
            continue;
        values = corral_policy_values_parse_prefixed(shadow, service, *name, &error);
        if (values == NULL)
            add_problem(check, &error);
        corral_policy_values_free(shadow, values);
    }
    if (corral_credentials_resolve(service, &credentials, &error))
        g_free(credentials.groups);
    else
        add_problem(check, &error);
}

static void checked_service_free(gpointer data)
{
    corral_checked_service *checked = data;

    g_ptr_array_unref(checked->shadows);
    corral_policy_module_unref(checked->policy);
    g_free(checked);
}

static void module_unref(gpointer module)
{
    corral_policy_module_unref(module);
}

corral_config_check *corral_config_check_new(const corral_config *config)
{
    corral_config_check *check = g_new0(corral_config_check, 1);

    check->config = config;
    check->loader = corral_policy_loader_new(config->policy_dir, NULL);
    check->services = g_ptr_array_new_with_free_func(checked_service_free);
    check->problems = g_ptr_array_new_with_free_func(g_free);
    if (config->control_group != NULL && getgrnam(config->control_group) == NULL)
        g_ptr_array_add(check->problems,
                        g_strdup_printf("%s: [corral] control_group: unknown group '%s'",
                                        config->main_file, config->control_group));
    for (guint i = 0; i < config->services->len; i++) {
        corral_checked_service *checked = g_new0(corral_checked_service, 1);

        checked->config = g_ptr_array_index(config->services, i);
        checked->shadows = g_ptr_array_new_with_free_func(module_unref);
        g_ptr_array_add(check->services, checked);
        check_service(check, checked);
    }
    return check;
}

bool corral_config_check_ok(const corral_config_check *check)
{
    return check->problems->len == 0;
}

void corral_config_check_free(corral_config_check *check)
{
    if (check == NULL)
        return;
    /* Modules go before the loader that opened them. */
    g_ptr_array_unref(check->services);
    corral_policy_loader_free(check->loader);
    g_ptr_array_unref(check->problems);
    g_free(check);
}
