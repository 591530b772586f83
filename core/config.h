/* SPDX-License-Identifier: MIT */
/*
 * config.h - the keyfile configuration: a main file plus conf.d/NAME.conf files.
 *
 * Loading builds a complete corral_config or fails with a GError whose
 * message names the file, the group and the key.  Nothing here opens
 * sockets or loads plugins; policy-specific keys are kept as raw strings
 * in corral_service_config.policy_keys and validated by the policy loader
 * against the keys the plugin declares.
 */
#ifndef CORRAL_CONFIG_H
#define CORRAL_CONFIG_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#include <corral/policy.h>

#include "exec-config.h"
#include "worker-protocol.h"

#define CORRAL_CONFIG_ERROR (corral_config_error_quark())
GQuark corral_config_error_quark(void);

typedef enum {
    CORRAL_CONFIG_ERROR_IO,      /* a file could not be read */
    CORRAL_CONFIG_ERROR_SYNTAX,  /* not a valid keyfile */
    CORRAL_CONFIG_ERROR_KEY,     /* unknown key or group */
    CORRAL_CONFIG_ERROR_VALUE,   /* bad value for a known key */
    CORRAL_CONFIG_ERROR_DUPLICATE,
} CorralConfigError;

/* Defaults, most of them Dovecot's (default_process_limit, default_client_limit,
 * default_idle_kill, default_vsz_limit, the unix_listener mode). */
#define CORRAL_DEFAULT_POLICY "dovecot"
#define CORRAL_DEFAULT_PROCESS_LIMIT 100u
#define CORRAL_DEFAULT_CLIENT_LIMIT 1000u
#define CORRAL_DEFAULT_IDLE_KILL_SECS 60u
#define CORRAL_DEFAULT_VSZ_LIMIT (G_GUINT64_CONSTANT(256) << 20)
#define CORRAL_DEFAULT_FIRST_STATUS_TIMEOUT_MSECS 30000u
#define CORRAL_DEFAULT_STATUS_BATCH_MSECS 5u
#define CORRAL_DEFAULT_UNIX_LISTENER_MODE 0600u
#define CORRAL_DEFAULT_RELOAD_KILL_TIMEOUT_MSECS 6000u

typedef enum {
    CORRAL_LISTENER_INET,
    CORRAL_LISTENER_UNIX,
} corral_listener_kind;

typedef struct corral_listener_config {
    corral_listener_kind kind;
    /* The SOCKET<n>_SETTINGS name: the service name for inet listeners,
     * the basename of the path for unix listeners. */
    char *name;
    /* inet: a numeric address ("127.0.0.1", "::1") or "*" / "::" for any. */
    char *address;
    guint16 port;
    /* unix: absolute path (relative ones are resolved against base_dir). */
    char *path;
    unsigned mode;       /* unix: permission bits, default 0600 */
    char *user, *group;  /* unix: owner when running as root; may be NULL */
} corral_listener_config;

typedef struct corral_service_config {
    char *name;
    char *file;              /* the file whose [service NAME] group defined it */
    char *executable;        /* command line, split on spaces at spawn */
    corral_service_type type;
    char *policy;            /* "dovecot" unless set */

    unsigned process_min_avail;
    unsigned process_limit;      /* effective: 0 in the file means 100 */
    unsigned client_limit;       /* effective: 0 means 1000, capped at service_count */
    unsigned service_count;      /* 0 = unlimited */
    unsigned idle_kill_secs;     /* effective: 0 means 60; CORRAL_IDLE_KILL_NEVER */
    guint64 vsz_limit;           /* bytes; 0 = unlimited; default 256 MiB */
    unsigned first_status_timeout_msecs; /* default 30000 */
    unsigned status_batch_msecs; /* under load, read status at most this often; 0 = always */
    int listen_backlog;          /* default process_limit * client_limit, >= 4 */

    char *user, *group, *extra_groups, *chroot; /* NULL when unset */
    bool allow_root;         /* may run as uid 0 when corrald is root */
    char **shadow_policies;  /* policies that only journal; NULL if none */
    corral_exec_config exec; /* environment, working_directory, stderr_level */
    corral_protocol_config protocol; /* worker_protocol and the inetd keys */

    GPtrArray *listeners;    /* corral_listener_config*, in file order */
    /* Keys the core does not know, for the policy: name -> value (char*). */
    GHashTable *policy_keys;
    /* Every key of the group -> its line in `file` (GUINT_TO_POINTER), so
     * that later checks, such as the policy's, can point at the line. */
    GHashTable *key_lines;
} corral_service_config;

typedef struct corral_config {
    char *main_file;         /* absolute path */
    char *dir;               /* its folder; relative paths resolve here */
    char **files;            /* every file read, in order, NULL-terminated */
    char *base_dir;          /* [corral] base_dir, absolute; default dir/run */
    char *policy_dir;        /* [corral] policy_dir, absolute; NULL if unset */
    char *log_path;          /* [corral] log_path, absolute; NULL: log to stderr */
    char *metrics_address;   /* [corral] metrics_listener address; NULL if off */
    int log_level;           /* [corral] log_level, a corral_level; default info */
    char *control_group;     /* [corral] control_group: may run corralctl's
                              * read-only commands; NULL if unset */
    guint16 metrics_port;
    unsigned reload_kill_timeout_msecs; /* old processes get SIGTERM, then
                                         * SIGKILL, this long after a reload;
                                         * default 6000 as in Dovecot */
    GPtrArray *services;     /* corral_service_config*, in order of appearance */
    /* Each [corral] key that was set -> "FILE:LINE" of the setting in force. */
    GHashTable *key_places;
} corral_config;

/* Reads `main_file` and then `conf.d/ *.conf` beside it in lexical order.
 * Returns NULL and sets `error` on the first problem found. */
corral_config *corral_config_load(const char *main_file, GError **error);
void corral_config_free(corral_config *config);

const corral_service_config *corral_config_find_service(const corral_config *config,
                                                        const char *name);

/* Where a key is set, for errors found after loading (a user that does not
 * exist, an executable that is a folder, a listener that cannot bind):
 * "FILE:LINE: [corral] KEY" and "FILE:LINE: [service NAME] KEY", without
 * ":LINE" for a key left at its default.  g_free() the result. */
char *corral_config_where(const corral_config *config, const char *key);
char *corral_service_config_where(const corral_service_config *service, const char *key);

/* The base_dir that corral_config_load() would settle on, from the
 * [corral] groups alone: for tools such as corralctl, which must find the
 * running corrald even while a service group is being edited.  NULL with
 * `error` set when a file cannot be read or parsed. */
char *corral_config_read_base_dir(const char *main_file, GError **error);

/* The listen backlog a service gets unless it sets one: room for every
 * client every process could take, at least a few. */
int corral_config_default_backlog(unsigned process_limit, unsigned client_limit);

/* Value parsers shared with the policy-key validation.
 * Durations: "60" (in `bare_unit_msecs` units), "500ms", "60s", "2m", "1h",
 * "1d"; sizes: "0", "1024", "512k", "256M", "2G" (binary units).
 * Each returns false and sets *error_text (g_free it) on bad input. */
bool corral_parse_duration_msecs(const char *text, guint64 bare_unit_msecs,
                                 guint64 *msecs, char **error_text);
bool corral_parse_size(const char *text, guint64 *bytes, char **error_text);
bool corral_parse_uint(const char *text, guint64 max, guint64 *value, char **error_text);
bool corral_parse_bool(const char *text, bool *value, char **error_text);

#endif /* CORRAL_CONFIG_H */
