/* SPDX-License-Identifier: MIT */
#include "settings.h"

#include <string.h>

/* corrald's defaults (core/config.c). */
#define DEFAULT_PROCESS_LIMIT 100u
#define DEFAULT_CLIENT_LIMIT 1000u
#define DEFAULT_IDLE_KILL_SECS 60u
#define MIN_LISTEN_BACKLOG 4u
#define DEFAULT_POLICY "dovecot"

#define SETTINGS_ERROR g_quark_from_static_string("corral-sim-settings")

void sim_settings_init(sim_settings *settings)
{
    corral_service_config *service = &settings->service;

    memset(settings, 0, sizeof(*settings));
    service->name = g_strdup("sim");
    service->file = g_strdup("command line");
    service->policy = g_strdup(DEFAULT_POLICY);
    service->policy_keys = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
}

void sim_settings_clear(sim_settings *settings)
{
    corral_service_config *service = &settings->service;

    g_free(service->name);
    g_free(service->file);
    g_free(service->policy);
    if (service->policy_keys != NULL)
        g_hash_table_destroy(service->policy_keys);
    memset(settings, 0, sizeof(*settings));
}

bool sim_settings_load(sim_settings *settings, const char *path, const char *name,
                       GError **error)
{
    corral_config *config = corral_config_load(path, error);
    const corral_service_config *found;
    corral_service_config *service = &settings->service;
    GHashTableIter iter;
    gpointer key, value;

    if (config == NULL)
        return false;
    found = name != NULL ? corral_config_find_service(config, name)
            : config->services->len > 0 ? g_ptr_array_index(config->services, 0) : NULL;
    if (found == NULL) {
        g_set_error(error, SETTINGS_ERROR, 0, "%s: no service %s", path,
                    name != NULL ? name : "at all");
        corral_config_free(config);
        return false;
    }
    g_free(service->name);
    g_free(service->file);
    g_free(service->policy);
    service->name = g_strdup(found->name);
    service->file = g_strdup(found->file);
    service->policy = g_strdup(found->policy);
    service->type = found->type;
    service->process_min_avail = found->process_min_avail;
    service->process_limit = found->process_limit;
    service->client_limit = found->client_limit;
    service->service_count = found->service_count;
    service->idle_kill_secs = found->idle_kill_secs;
    service->listen_backlog = found->listen_backlog;
    settings->have_listen_backlog = true;
    g_hash_table_remove_all(service->policy_keys);
    g_hash_table_iter_init(&iter, found->policy_keys);
    while (g_hash_table_iter_next(&iter, &key, &value))
        g_hash_table_insert(service->policy_keys, g_strdup(key), g_strdup(value));
    corral_config_free(config);
    return true;
}

static bool parse_type(const char *text, corral_service_type *type)
{
    static const struct {
        const char *name;
        corral_service_type type;
    } types[] = {
        { "", CORRAL_SERVICE_DEFAULT },
        { "login", CORRAL_SERVICE_LOGIN },
        { "worker", CORRAL_SERVICE_WORKER },
        { "startup", CORRAL_SERVICE_STARTUP },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(types); i++) {
        if (strcmp(text, types[i].name) == 0) {
            *type = types[i].type;
            return true;
        }
    }
    return false;
}

static bool parse_idle_kill(const char *text, unsigned *secs, char **problem)
{
    guint64 msecs;

    if (strcmp(text, "never") == 0 || strcmp(text, "infinite") == 0) {
        *secs = CORRAL_IDLE_KILL_NEVER;
        return true;
    }
    if (!corral_parse_duration_msecs(text, 1000, &msecs, problem))
        return false;
    if (msecs / 1000 >= CORRAL_IDLE_KILL_NEVER) {
        *problem = g_strdup("too long (use 'never')");
        return false;
    }
    *secs = (unsigned)(msecs / 1000 + (msecs % 1000 != 0));
    return true;
}

static bool parse_count(const char *text, unsigned *value, char **problem)
{
    guint64 number;

    if (!corral_parse_uint(text, G_MAXINT32, &number, problem))
        return false;
    *value = (unsigned)number;
    return true;
}

/* The core's keys; false with *known = false for a policy key. */
static bool set_core_key(sim_settings *settings, const char *key, const char *value,
                         bool *known, char **problem)
{
    corral_service_config *service = &settings->service;
    unsigned backlog;

    *known = true;
    if (strcmp(key, "process_limit") == 0)
        return parse_count(value, &service->process_limit, problem);
    if (strcmp(key, "process_min_avail") == 0)
        return parse_count(value, &service->process_min_avail, problem);
    if (strcmp(key, "client_limit") == 0)
        return parse_count(value, &service->client_limit, problem);
    if (strcmp(key, "service_count") == 0)
        return parse_count(value, &service->service_count, problem);
    if (strcmp(key, "idle_kill") == 0)
        return parse_idle_kill(value, &service->idle_kill_secs, problem);
    if (strcmp(key, "listen_backlog") == 0) {
        if (!parse_count(value, &backlog, problem))
            return false;
        service->listen_backlog = (int)backlog;
        settings->have_listen_backlog = true;
        return true;
    }
    if (strcmp(key, "type") == 0) {
        if (parse_type(value, &service->type))
            return true;
        *problem = g_strdup_printf("unknown service type '%s'", value);
        return false;
    }
    if (strcmp(key, "policy") == 0) {
        g_free(service->policy);
        service->policy = g_strdup(value);
        return true;
    }
    *known = false;
    return false;
}

bool sim_settings_set(sim_settings *settings, const char *assignment, GError **error)
{
    const char *equals = strchr(assignment, '=');
    char *key, *problem = NULL;
    const char *value;
    bool known;

    if (equals == NULL || equals == assignment) {
        g_set_error(error, SETTINGS_ERROR, 0, "--set %s: expected KEY=VALUE", assignment);
        return false;
    }
    key = g_strstrip(g_strndup(assignment, (gsize)(equals - assignment)));
    value = equals + 1;
    if (set_core_key(settings, key, value, &known, &problem)) {
        g_free(key);
        return true;
    }
    if (known) {
        g_set_error(error, SETTINGS_ERROR, 0, "--set %s: %s", assignment, problem);
        g_free(problem);
        g_free(key);
        return false;
    }
    /* The policy checks its own keys once it is loaded. */
    g_hash_table_replace(settings->service.policy_keys, key, g_strdup(value));
    return true;
}

bool sim_settings_finish(sim_settings *settings, GError **error)
{
    corral_service_config *service = &settings->service;

    if (service->process_limit == 0)
        service->process_limit = DEFAULT_PROCESS_LIMIT;
    if (service->client_limit == 0)
        service->client_limit = DEFAULT_CLIENT_LIMIT;
    if (service->service_count > 0 && service->client_limit > service->service_count)
        service->client_limit = service->service_count;
    if (service->idle_kill_secs == 0)
        service->idle_kill_secs = DEFAULT_IDLE_KILL_SECS;
    if (service->process_min_avail > service->process_limit) {
        g_set_error(error, SETTINGS_ERROR, 0,
                    "process_min_avail is higher than process_limit (%u > %u)",
                    service->process_min_avail, service->process_limit);
        return false;
    }
    if (!settings->have_listen_backlog) {
        guint64 backlog = (guint64)service->process_limit * service->client_limit;
        service->listen_backlog = (int)MIN(backlog, (guint64)G_MAXINT32);
    }
    if (service->listen_backlog < (int)MIN_LISTEN_BACKLOG)
        service->listen_backlog = MIN_LISTEN_BACKLOG;
    return true;
}
