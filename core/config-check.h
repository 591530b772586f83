/* SPDX-License-Identifier: MIT */
/*
 * config-check.h - everything a configuration needs short of running it.
 *
 * corral_config_load() checks the files' syntax and the core's keys.  A
 * check goes on from there the way starting would, but binds, creates and
 * starts nothing: it loads each service's policy and shadow policies,
 * parses their keys, defaults included, and (as root) resolves the user
 * and group names.  `corrald -t` reports its problems; `corrald -n` and
 * `-a` print the policy keys it found.
 */
#ifndef CORRAL_CONFIG_CHECK_H
#define CORRAL_CONFIG_CHECK_H

#include <glib.h>
#include <stdbool.h>

#include "config.h"
#include "policy-loader.h"

typedef struct corral_checked_service {
    const corral_service_config *config;
    corral_policy_module *policy;   /* NULL when it could not be loaded */
    /* One per name in config->shadow_policies; NULL for one that could
     * not be loaded. */
    GPtrArray *shadows;             /* corral_policy_module* */
} corral_checked_service;

typedef struct corral_config_check {
    const corral_config *config;
    corral_policy_loader *loader;
    GPtrArray *services;            /* corral_checked_service*, in config order */
    /* Every problem, each a message naming file, line, group and key. */
    GPtrArray *problems;            /* char* */
} corral_config_check;

/* Checks every service of `config`, which must outlive the result; it
 * goes on past a problem so that all of them are reported at once. */
corral_config_check *corral_config_check_new(const corral_config *config);
bool corral_config_check_ok(const corral_config_check *check);
void corral_config_check_free(corral_config_check *check);

#endif
