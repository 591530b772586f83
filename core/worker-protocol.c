/* SPDX-License-Identifier: MIT */
#include "worker-protocol.h"

#include <glib.h>
#include <string.h>

#include "config.h"

const char *corral_worker_protocol_name(corral_worker_protocol protocol)
{
    switch (protocol) {
    case CORRAL_WORKER_PROTOCOL_DOVECOT: return "dovecot";
    case CORRAL_WORKER_PROTOCOL_SYSTEMD: return "systemd";
    case CORRAL_WORKER_PROTOCOL_INETD: return "inetd";
    }
    return "dovecot";
}

void corral_protocol_config_init(corral_protocol_config *protocol)
{
    *protocol = (corral_protocol_config){ .protocol = CORRAL_WORKER_PROTOCOL_DOVECOT };
}

static bool parse_protocol(corral_protocol_config *protocol, const char *value, char **problem)
{
    static const corral_worker_protocol all[] = {
        CORRAL_WORKER_PROTOCOL_DOVECOT, CORRAL_WORKER_PROTOCOL_SYSTEMD,
        CORRAL_WORKER_PROTOCOL_INETD,
    };

    for (size_t i = 0; i < G_N_ELEMENTS(all); i++) {
        if (strcmp(value, corral_worker_protocol_name(all[i])) == 0) {
            protocol->protocol = all[i];
            return true;
        }
    }
    *problem = g_strdup_printf("'%s' is not a worker protocol (dovecot, systemd or inetd)", value);
    return false;
}

/* xinetd's form: "RATE WAIT", connections per second and the seconds the
 * service then pauses; "0" turns the limit off. */
static bool parse_cps(corral_protocol_config *protocol, const char *value, char **problem)
{
    char **words = g_strsplit_set(value, " \t", -1);
    GPtrArray *kept = g_ptr_array_new();
    guint64 rate = 0, wait = 0;
    bool ok;

    for (char **word = words; *word != NULL; word++) {
        if (**word != '\0')
            g_ptr_array_add(kept, *word);
    }
    ok = (kept->len == 1 || kept->len == 2) &&
         corral_parse_uint(g_ptr_array_index(kept, 0), 1000000, &rate, problem) &&
         (kept->len == 1 || corral_parse_uint(g_ptr_array_index(kept, 1), 3600, &wait, problem));
    if (ok && rate > 0 && wait == 0) {
        g_free(*problem);
        *problem = g_strdup("needs RATE WAIT, with WAIT from 1 to 3600 seconds");
        ok = false;
    }
    if (!ok && *problem == NULL)
        *problem = g_strdup_printf("'%s' is not RATE WAIT (connections per second, then "
                                   "seconds to pause), or 0", value);
    if (ok) {
        protocol->cps_limit = (unsigned)rate;
        protocol->cps_wait_secs = (unsigned)wait;
    }
    g_ptr_array_free(kept, TRUE); /* borrowed from words */
    g_strfreev(words);
    return ok;
}

bool corral_protocol_config_parse_key(corral_protocol_config *protocol, const char *key,
                                      const char *value, bool *known, char **problem)
{
    guint64 number;

    *known = true;
    if (strcmp(key, "worker_protocol") == 0)
        return parse_protocol(protocol, value, problem);
    if (strcmp(key, "inetd_stderr") == 0) {
        if (strcmp(value, "socket") != 0 && strcmp(value, "log") != 0) {
            *problem = g_strdup_printf("'%s' is neither socket nor log", value);
            return false;
        }
        protocol->stderr_to_log = strcmp(value, "log") == 0;
        return true;
    }
    if (strcmp(key, "per_source") == 0) {
        if (!corral_parse_uint(value, 1000000, &number, problem))
            return false;
        protocol->per_source = (unsigned)number;
        return true;
    }
    if (strcmp(key, "cps") == 0)
        return parse_cps(protocol, value, problem);
    *known = false;
    return true;
}

static bool refuse(const char **key, char **problem, const char *blamed, const char *format,
                   ...) G_GNUC_PRINTF(4, 5);

static bool refuse(const char **key, char **problem, const char *blamed, const char *format,
                   ...)
{
    va_list args;

    va_start(args, format);
    *key = blamed;
    *problem = g_strdup_vprintf(format, args);
    va_end(args);
    return false;
}

bool corral_protocol_config_check(corral_service_config *service,
                                  bool (*is_set)(const corral_service_config *service,
                                                 const char *key),
                                  const char **key, char **problem)
{
    const corral_protocol_config *protocol = &service->protocol;
    const char *name = corral_worker_protocol_name(protocol->protocol);
    static const char *const inetd_only[] = { "inetd_stderr", "per_source", "cps" };
    static const char *const preforking_policies[] = { "dynamic", "queue", "static" };

    if (protocol->protocol != CORRAL_WORKER_PROTOCOL_INETD) {
        for (size_t i = 0; i < G_N_ELEMENTS(inetd_only); i++) {
            if (is_set(service, inetd_only[i]))
                return refuse(key, problem, inetd_only[i],
                              "only for worker_protocol = inetd (this service's is %s)", name);
        }
    }
    if (protocol->protocol == CORRAL_WORKER_PROTOCOL_DOVECOT)
        return true;

    /* Neither protocol has a status pipe or the login notify file. */
    if (is_set(service, "first_status_timeout"))
        return refuse(key, problem, "first_status_timeout",
                      "worker_protocol = %s sends no status, so there is no first status to "
                      "wait for", name);
    if (is_set(service, "status_batch_interval"))
        return refuse(key, problem, "status_batch_interval",
                      "worker_protocol = %s has no status pipe", name);
    if (service->type == CORRAL_SERVICE_LOGIN)
        return refuse(key, problem, "type",
                      "type = login needs Dovecot's login notify; worker_protocol = %s has none",
                      name);
    if (service->listeners->len == 0)
        return refuse(key, problem, "worker_protocol",
                      "worker_protocol = %s needs an inet_listener or a unix_listener", name);

    if (protocol->protocol == CORRAL_WORKER_PROTOCOL_SYSTEMD) {
        if (service->service_count != 0)
            return refuse(key, problem, "service_count",
                          "worker_protocol = systemd: a socket-activated server reports no "
                          "clients, so service_count cannot be counted");
        return true;
    }

    /* inetd: each process is one connection. */
    if (is_set(service, "client_limit") && service->client_limit > 1)
        return refuse(key, problem, "client_limit",
                      "worker_protocol = inetd serves one connection per process; "
                      "client_limit must be 1 (is %u)", service->client_limit);
    if (service->service_count > 1)
        return refuse(key, problem, "service_count",
                      "worker_protocol = inetd serves one connection per process; "
                      "service_count must be 1 or unset (is %u)", service->service_count);
    if (service->process_min_avail > 0)
        return refuse(key, problem, "process_min_avail",
                      "worker_protocol = inetd starts a process per connection; there are no "
                      "idle processes to keep (process_min_avail must be 0)");
    /* These keep idle processes ready; an inetd program cannot wait idle,
     * and a spawn() with no client waiting fails, which they throttle on. */
    for (size_t i = 0; i < G_N_ELEMENTS(preforking_policies); i++) {
        if (strcmp(service->policy, preforking_policies[i]) == 0)
            return refuse(key, problem, "policy",
                          "policy %s keeps idle processes ready, and worker_protocol = inetd "
                          "starts one per connection: use dovecot or ondemand",
                          service->policy);
    }
    service->client_limit = 1;
    service->service_count = 1;
    return true;
}
