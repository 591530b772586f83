/* SPDX-License-Identifier: MIT */
#include "config-dump.h"

#include <inttypes.h>
#include <string.h>

#include "log.h"

typedef struct dump {
    GString *text;
    corral_dump_mode mode;
} dump;

/* GKeyFile's escapes, so that g_key_file_get_string() gives `value` back. */
static void append_escaped(GString *text, const char *value)
{
    for (const char *p = value; *p != '\0'; p++) {
        switch (*p) {
        case '\\': g_string_append(text, "\\\\"); break;
        case '\n': g_string_append(text, "\\n"); break;
        case '\t': g_string_append(text, "\\t"); break;
        case '\r': g_string_append(text, "\\r"); break;
        case ' ':
            g_string_append(text, p == value ? "\\s" : " ");
            break;
        default: g_string_append_c(text, *p); break;
        }
    }
}

/* Writes `key = value` when the mode asks for it: always with -a, and
 * with -n only if it differs from the default. */
static void put(dump *out, const char *key, const char *value, bool is_default)
{
    if (out->mode == CORRAL_DUMP_CHANGED && is_default)
        return;
    g_string_append_printf(out->text, "%s =%s", key, value != NULL && *value != '\0' ? " " : "");
    append_escaped(out->text, value != NULL ? value : "");
    g_string_append_c(out->text, '\n');
}

static void put_string(dump *out, const char *key, const char *value, const char *fallback)
{
    put(out, key, value, g_strcmp0(value, fallback) == 0);
}

static void put_uint(dump *out, const char *key, guint64 value, guint64 fallback)
{
    char text[32];

    g_snprintf(text, sizeof(text), "%" G_GUINT64_FORMAT, value);
    put(out, key, text, value == fallback);
}

/* The largest unit that states `msecs` exactly: "6s", "2m", "5ms". */
static char *format_duration(guint64 msecs)
{
    static const struct {
        const char *name;
        guint64 msecs;
    } units[] = {
        { "d", 86400000 }, { "h", 3600000 }, { "m", 60000 }, { "s", 1000 }, { "ms", 1 },
    };

    if (msecs == 0)
        return g_strdup("0");
    for (size_t i = 0; i < G_N_ELEMENTS(units); i++) {
        if (msecs % units[i].msecs == 0)
            return g_strdup_printf("%" G_GUINT64_FORMAT "%s", msecs / units[i].msecs,
                                   units[i].name);
    }
    g_assert_not_reached();
}

static void put_duration(dump *out, const char *key, guint64 msecs, guint64 fallback)
{
    char *text = format_duration(msecs);

    put(out, key, text, msecs == fallback);
    g_free(text);
}

/* "256M", "1G", "1536k" or bytes; "0" for no limit. */
static void put_size(dump *out, const char *key, guint64 bytes, guint64 fallback)
{
    static const char units[] = "TGMk";
    char *text = NULL;

    for (int i = 0; bytes != 0 && text == NULL && units[i] != '\0'; i++) {
        unsigned shift = 40 - 10 * (unsigned)i;

        if (bytes % (G_GUINT64_CONSTANT(1) << shift) == 0)
            text = g_strdup_printf("%" G_GUINT64_FORMAT "%c", bytes >> shift, units[i]);
    }
    if (text == NULL)
        text = g_strdup_printf("%" G_GUINT64_FORMAT, bytes);
    put(out, key, text, bytes == fallback);
    g_free(text);
}

static void put_bool(dump *out, const char *key, bool value, bool fallback)
{
    put(out, key, value ? "yes" : "no", value == fallback);
}

/* "ADDRESS:PORT", with an IPv6 address in brackets. */
static char *format_inet(const char *address, guint16 port)
{
    if (strchr(address, ':') != NULL)
        return g_strdup_printf("[%s]:%u", address, port);
    return g_strdup_printf("%s:%u", address, port);
}

static void dump_corral_group(dump *out, const corral_config *config)
{
    char *metrics = config->metrics_address != NULL
                        ? format_inet(config->metrics_address, config->metrics_port)
                        : NULL;

    g_string_append(out->text, "[corral]\n");
    /* Its default depends on where the file is: always written, so that the
     * text means the same wherever it is saved. */
    put(out, "base_dir", config->base_dir, false);
    put_string(out, "policy_dir", config->policy_dir, NULL);
    put_duration(out, "reload_kill_timeout", config->reload_kill_timeout_msecs,
                 CORRAL_DEFAULT_RELOAD_KILL_TIMEOUT_MSECS);
    put_string(out, "log_path", config->log_path, NULL);
    put_string(out, "metrics_listener", metrics, NULL);
    put_string(out, "log_level", corral_log_level_name((corral_level)config->log_level),
               corral_log_level_name(CORRAL_LEVEL_INFO));
    put_string(out, "control_group", config->control_group, NULL);
    g_free(metrics);
}

static const char *type_name(corral_service_type type)
{
    switch (type) {
    case CORRAL_SERVICE_LOGIN: return "login";
    case CORRAL_SERVICE_WORKER: return "worker";
    case CORRAL_SERVICE_STARTUP: return "startup";
    default: return "";
    }
}

static void dump_listeners(dump *out, const corral_service_config *service)
{
    GString *inet = g_string_new(NULL), *unix_paths = g_string_new(NULL);
    const corral_listener_config *first_unix = NULL;
    char mode[8];

    for (guint i = 0; i < service->listeners->len; i++) {
        const corral_listener_config *listener = g_ptr_array_index(service->listeners, i);
        GString *list = listener->kind == CORRAL_LISTENER_INET ? inet : unix_paths;

        if (list->len > 0)
            g_string_append(list, ";");
        if (listener->kind == CORRAL_LISTENER_INET) {
            char *item = format_inet(listener->address, listener->port);

            g_string_append(list, item);
            g_free(item);
        } else {
            g_string_append(list, listener->path);
            if (first_unix == NULL)
                first_unix = listener;
        }
    }
    put(out, "inet_listener", inet->str, inet->len == 0);
    put(out, "unix_listener", unix_paths->str, unix_paths->len == 0);
    /* Every unix listener of a service shares these three. */
    g_snprintf(mode, sizeof(mode), "%04o",
               first_unix != NULL ? first_unix->mode : CORRAL_DEFAULT_UNIX_LISTENER_MODE);
    put(out, "unix_listener_mode", mode,
        first_unix == NULL || first_unix->mode == CORRAL_DEFAULT_UNIX_LISTENER_MODE);
    put_string(out, "unix_listener_user", first_unix != NULL ? first_unix->user : NULL, NULL);
    put_string(out, "unix_listener_group", first_unix != NULL ? first_unix->group : NULL, NULL);
    g_string_free(inet, TRUE);
    g_string_free(unix_paths, TRUE);
}

static bool same_value(const corral_policy_key *key, const corral_policy_value *a,
                       const corral_policy_value *b)
{
    switch (key->type) {
    case CORRAL_KEY_BOOL: return a->b == b->b;
    case CORRAL_KEY_STRING: return strcmp(a->s, b->s) == 0;
    default: return a->u == b->u;
    }
}

static char *format_value(const corral_policy_key *key, const corral_policy_value *value)
{
    switch (key->type) {
    case CORRAL_KEY_BOOL: return g_strdup(value->b ? "yes" : "no");
    case CORRAL_KEY_STRING: return g_strdup(value->s);
    case CORRAL_KEY_DURATION: return format_duration(value->u);
    default: return g_strdup_printf("%" PRIu64, value->u);
    }
}

static void free_value(const corral_policy_key *key, corral_policy_value *value)
{
    if (key->type == CORRAL_KEY_STRING)
        g_free((char *)value->s);
}

/* The keys `module` declares, written as `prefix`KEY; a configured value
 * is parsed again so that it prints in the same form as its default. */
static void dump_policy_keys(dump *out, const corral_service_config *service,
                             const corral_policy_module *module, const char *prefix)
{
    for (const corral_policy_key *key = module->policy->keys; key != NULL && key->name != NULL;
         key++) {
        char *name = g_strconcat(prefix, key->name, NULL);
        const char *configured = g_hash_table_lookup(service->policy_keys, name);
        corral_policy_value value = { 0 }, fallback = { 0 };
        bool have_fallback =
            corral_policy_key_parse(key, corral_policy_key_default(key), &fallback, NULL);
        bool have_value = corral_policy_key_parse(
            key, configured != NULL ? configured : corral_policy_key_default(key), &value, NULL);

        if (have_value) {
            char *text = format_value(key, &value);

            put(out, name, text, have_fallback && same_value(key, &value, &fallback));
            g_free(text);
            free_value(key, &value);
        }
        if (have_fallback)
            free_value(key, &fallback);
        g_free(name);
    }
}

/* exec-config.h and worker-protocol.h: the inetd keys only where they
 * are allowed. */
static void dump_exec_keys(dump *out, const corral_service_config *service)
{
    const corral_protocol_config *protocol = &service->protocol;
    char *environment = corral_exec_config_environment_text(&service->exec);

    put_string(out, "worker_protocol", corral_worker_protocol_name(protocol->protocol),
               "dovecot");
    put_string(out, "environment", environment, "");
    put_string(out, "working_directory", service->exec.working_directory, NULL);
    put_string(out, "stderr_level", corral_exec_config_level_name(service->exec.stderr_level),
               "info");
    if (protocol->protocol == CORRAL_WORKER_PROTOCOL_INETD) {
        char cps[32];

        put_string(out, "inetd_stderr", protocol->stderr_to_log ? "log" : "socket", "socket");
        put_uint(out, "per_source", protocol->per_source, 0);
        if (protocol->cps_limit == 0)
            g_strlcpy(cps, "0", sizeof(cps));
        else
            g_snprintf(cps, sizeof(cps), "%u %u", protocol->cps_limit, protocol->cps_wait_secs);
        put_string(out, "cps", cps, "0");
    }
    g_free(environment);
}

static void dump_service(dump *out, const corral_checked_service *checked)
{
    const corral_service_config *service = checked->config;
    char *shadows = service->shadow_policies != NULL
                        ? g_strjoinv(", ", service->shadow_policies)
                        : g_strdup("");
    unsigned default_client_limit = CORRAL_DEFAULT_CLIENT_LIMIT;

    if (service->service_count > 0 && default_client_limit > service->service_count)
        default_client_limit = service->service_count;
    g_string_append_printf(out->text, "\n[service %s]\n", service->name);
    put(out, "executable", service->executable, false);
    put_string(out, "type", type_name(service->type), "");
    put_string(out, "policy", service->policy, CORRAL_DEFAULT_POLICY);
    put_string(out, "shadow_policies", shadows, "");
    put_uint(out, "process_min_avail", service->process_min_avail, 0);
    put_uint(out, "process_limit", service->process_limit, CORRAL_DEFAULT_PROCESS_LIMIT);
    put_uint(out, "client_limit", service->client_limit, default_client_limit);
    put_uint(out, "service_count", service->service_count, 0);
    if (service->idle_kill_secs == CORRAL_IDLE_KILL_NEVER)
        put(out, "idle_kill", "never", false);
    else
        put_duration(out, "idle_kill", (guint64)service->idle_kill_secs * 1000,
                     (guint64)CORRAL_DEFAULT_IDLE_KILL_SECS * 1000);
    put_size(out, "vsz_limit", service->vsz_limit, CORRAL_DEFAULT_VSZ_LIMIT);
    put_string(out, "user", service->user, NULL);
    put_string(out, "group", service->group, NULL);
    put_string(out, "extra_groups", service->extra_groups, NULL);
    put_string(out, "chroot", service->chroot, NULL);
    put_bool(out, "allow_root", service->allow_root, false);
    dump_exec_keys(out, service);
    /* Keys of the status pipe, which only the dovecot protocol has (and
     * the others refuse). */
    if (service->protocol.protocol == CORRAL_WORKER_PROTOCOL_DOVECOT) {
        put_duration(out, "first_status_timeout", service->first_status_timeout_msecs,
                     CORRAL_DEFAULT_FIRST_STATUS_TIMEOUT_MSECS);
        put_duration(out, "status_batch_interval", service->status_batch_msecs,
                     CORRAL_DEFAULT_STATUS_BATCH_MSECS);
    }
    put_uint(out, "listen_backlog", (guint64)service->listen_backlog,
             (guint64)corral_config_default_backlog(service->process_limit,
                                                    service->client_limit));
    dump_listeners(out, service);
    if (checked->policy != NULL)
        dump_policy_keys(out, service, checked->policy, "");
    for (guint i = 0; i < checked->shadows->len; i++) {
        const corral_policy_module *shadow = g_ptr_array_index(checked->shadows, i);
        char *prefix = g_strconcat(service->shadow_policies[i], ".", NULL);

        if (shadow != NULL)
            dump_policy_keys(out, service, shadow, prefix);
        g_free(prefix);
    }
    g_free(shadows);
}

char *corral_config_dump(const corral_config_check *check, corral_dump_mode mode)
{
    dump out = { g_string_new(NULL), mode };

    g_string_append(out.text, mode == CORRAL_DUMP_ALL
                                  ? "# corrald -a: every setting\n"
                                  : "# corrald -n: the settings that differ from the defaults\n");
    dump_corral_group(&out, check->config);
    for (guint i = 0; i < check->services->len; i++)
        dump_service(&out, g_ptr_array_index(check->services, i));
    return g_string_free(out.text, FALSE);
}
