/* SPDX-License-Identifier: MIT */
/*
 * credentials.h - who a service's processes run as.
 *
 * The user, group and extra_groups names are looked up once, when a
 * configuration is built or tested; they apply only when corrald is root.
 */
#ifndef CORRAL_CREDENTIALS_H
#define CORRAL_CREDENTIALS_H

#include <glib.h>
#include <stdbool.h>
#include <sys/types.h>

#include "config.h"

typedef struct corral_credentials {
    uid_t uid;        /* (uid_t)-1: keep corrald's */
    gid_t gid;        /* (gid_t)-1: keep corrald's */
    gid_t *groups;    /* extra groups, g_free() it; NULL if none */
    int group_count;  /* -1: keep corrald's supplementary groups */
} corral_credentials;

/* Resolves the names of `config` into ids.  As root, an unknown name, or a
 * service that would run as root without allow_root, is an error naming
 * the file, service and key.  Not root, nothing is looked up and every
 * field says "keep corrald's". */
bool corral_credentials_resolve(const corral_service_config *config,
                                corral_credentials *credentials, GError **error);

#endif
