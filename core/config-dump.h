/* SPDX-License-Identifier: MIT */
/*
 * config-dump.h - a configuration written back out as corral.conf text.
 *
 * `corrald -a` prints every setting, the keys of each service's policy and
 * shadow policies included; `corrald -n` only those that differ from their
 * defaults.  Either text, read back by corrald as a main file with no
 * conf.d beside it, gives the same configuration and prints the same text
 * again.  Values are the effective ones: paths absolute, "0 means the
 * default" resolved, listeners as corrald parsed them.
 */
#ifndef CORRAL_CONFIG_DUMP_H
#define CORRAL_CONFIG_DUMP_H

#include <stdbool.h>

#include "config-check.h"

typedef enum {
    CORRAL_DUMP_CHANGED, /* settings that differ from the defaults */
    CORRAL_DUMP_ALL,     /* every setting */
} corral_dump_mode;

/* The text for a check that found no problems; g_free() it. */
char *corral_config_dump(const corral_config_check *check, corral_dump_mode mode);

#endif
