/* SPDX-License-Identifier: MIT */
/*
 * exec-config.h - the per-service keys that shape the child's execution
 * environment rather than the supervision: `environment`,
 * `working_directory` and `stderr_level`.
 *
 * They are protocol-neutral and meant to be reused by anything that
 * produces a service configuration (the keyfile reader today, an import
 * of Dovecot settings later).
 *
 * `environment` syntax: shell-style words (g_shell_parse_argv(): blanks
 * separate words, '...' and "..." quote, \ escapes), each either
 *   NAME=VALUE   sets NAME to VALUE in the child, or
 *   NAME         passes corrald's own NAME through, if corrald has it.
 * NAME is [A-Za-z_][A-Za-z0-9_]*.  A later word for the same NAME wins.
 * The variables that corrald sets for the worker protocol (SERVICE_NAME,
 * SOCKET_COUNT, LISTEN_FDS, ...) always win over `environment`.
 */
#ifndef CORRAL_EXEC_CONFIG_H
#define CORRAL_EXEC_CONFIG_H

#include <stdbool.h>

#include "log.h"

typedef struct corral_exec_config {
    /* "NAME=VALUE" or bare "NAME" words, NULL-terminated; NULL when unset. */
    char **environment;
    /* Absolute (relative values resolve against base_dir); NULL: corrald's. */
    char *working_directory;
    /* Level of stderr lines that carry no Dovecot log prefix. */
    corral_level stderr_level;
} corral_exec_config;

void corral_exec_config_init(corral_exec_config *exec);
void corral_exec_config_clear(corral_exec_config *exec);

/* Parses `key` when it is one of this file's keys: sets *known and returns
 * false with *problem (g_free it) on a bad value.  `base_dir` resolves a
 * relative working_directory. */
bool corral_exec_config_parse_key(corral_exec_config *exec, const char *base_dir,
                                  const char *key, const char *value, bool *known,
                                  char **problem);

/* The keys' values as the keyfile writes them, for corrald -n and -a
 * (g_free them): `environment` reads back to the same words, quoted. */
char *corral_exec_config_environment_text(const corral_exec_config *exec);
const char *corral_exec_config_level_name(corral_level level);

/* Adds the `environment` words to `envp` (a g_environ_*() vector, which it
 * returns), resolving bare names from corrald's own environment. */
char **corral_exec_config_apply_environment(const corral_exec_config *exec, char **envp);

#endif
