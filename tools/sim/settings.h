/* SPDX-License-Identifier: MIT */
/*
 * settings.h - the simulated service's settings.
 *
 * They start from corrald's defaults, or from one service of a real
 * configuration (corral_config_load), and `--set KEY=VALUE` overrides any
 * of them.  The core's keys the simulator uses are process_limit,
 * process_min_avail, client_limit, service_count, idle_kill, type,
 * listen_backlog and policy; every other key is the policy's, checked
 * against what the policy declares by the core's own parser.
 */
#ifndef CORRAL_SIM_SETTINGS_H
#define CORRAL_SIM_SETTINGS_H

#include <glib.h>
#include <stdbool.h>

#include "config.h"

typedef struct sim_settings {
    /* Only what corral_policy_values_parse and the simulated host read
     * is filled in: no executable, no listeners. */
    corral_service_config service;
    bool have_listen_backlog;
} sim_settings;

void sim_settings_init(sim_settings *settings);
void sim_settings_clear(sim_settings *settings);

/* Takes the service `name` (NULL: the first) from the configuration
 * whose main file is `path`. */
bool sim_settings_load(sim_settings *settings, const char *path, const char *name,
                       GError **error);
/* "KEY=VALUE" */
bool sim_settings_set(sim_settings *settings, const char *assignment, GError **error);
/* Applies the core's defaults and checks, once everything is set. */
bool sim_settings_finish(sim_settings *settings, GError **error);

#endif
