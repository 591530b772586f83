/* SPDX-License-Identifier: MIT */
#include "credentials.h"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

/* "FILE:LINE" of `key` in the service's group, or "FILE" without one. */
static char *place_of(const corral_service_config *config, const char *key)
{
    unsigned line = config->key_lines != NULL
                        ? GPOINTER_TO_UINT(g_hash_table_lookup(config->key_lines, key))
                        : 0;

    return line != 0 ? g_strdup_printf("%s:%u", config->file, line) : g_strdup(config->file);
}

static bool unknown(GError **error, const corral_service_config *config, const char *key,
                    const char *what, const char *name)
{
    char *place = place_of(config, key);

    g_set_error(error, CORRAL_CONFIG_ERROR, CORRAL_CONFIG_ERROR_VALUE,
                "%s: [service %s] %s: unknown %s '%s'", place, config->name, key, what, name);
    g_free(place);
    return false;
}

static bool resolve_extra_groups(const corral_service_config *config,
                                 corral_credentials *credentials, GError **error)
{
    char **names = g_strsplit(config->extra_groups, ",", -1);
    bool ok = true;

    credentials->groups = g_new0(gid_t, g_strv_length(names) + 1);
    credentials->group_count = 0;
    for (char **name = names; ok && *name != NULL; name++) {
        const char *trimmed = g_strstrip(*name);
        struct group *gr;

        if (*trimmed == '\0')
            continue;
        gr = getgrnam(trimmed);
        if (gr == NULL)
            ok = unknown(error, config, "extra_groups", "group", trimmed);
        else
            credentials->groups[credentials->group_count++] = gr->gr_gid;
    }
    g_strfreev(names);
    return ok;
}

static bool resolve(const corral_service_config *config, corral_credentials *credentials,
                    GError **error)
{
    if (config->user != NULL) {
        struct passwd *pw = getpwnam(config->user);

        if (pw == NULL)
            return unknown(error, config, "user", "user", config->user);
        credentials->uid = pw->pw_uid;
        credentials->gid = pw->pw_gid;
        credentials->group_count = 0;
    }
    if (config->group != NULL) {
        struct group *gr = getgrnam(config->group);

        if (gr == NULL)
            return unknown(error, config, "group", "group", config->group);
        credentials->gid = gr->gr_gid;
        credentials->group_count = 0;
    }
    if (config->extra_groups != NULL && !resolve_extra_groups(config, credentials, error))
        return false;
    /* A worker is the first thing a client talks to: root must be asked
     * for, never the default. */
    if ((credentials->uid == (uid_t)-1 || credentials->uid == 0) && !config->allow_root) {
        char *place = place_of(config, config->user != NULL ? "user" : "allow_root");

        g_set_error(error, CORRAL_CONFIG_ERROR, CORRAL_CONFIG_ERROR_VALUE,
                    "%s: [service %s] user: the service would run as root; set user = NAME, "
                    "or allow_root = yes to run it as root deliberately", place, config->name);
        g_free(place);
        return false;
    }
    return true;
}

bool corral_credentials_resolve(const corral_service_config *config,
                                corral_credentials *credentials, GError **error)
{
    *credentials = (corral_credentials){ (uid_t)-1, (gid_t)-1, NULL, -1 };
    if (geteuid() != 0)
        return true;
    if (!resolve(config, credentials, error)) {
        g_clear_pointer(&credentials->groups, g_free);
        return false;
    }
    return true;
}
