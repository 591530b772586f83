/* SPDX-License-Identifier: MIT */
/*
 * rlimits.h - checking the resource limits against what services may use.
 *
 * The process limit (RLIMIT_NPROC) must allow every service's
 * process_limit at once, and the descriptor limit (RLIMIT_NOFILE) that
 * workers inherit must allow client_limit connections in one process.
 * Soft limits are raised toward the hard ones (and hard ones too when
 * running as root); what still falls short is logged with the fix.
 */
#ifndef CORRAL_RLIMITS_H
#define CORRAL_RLIMITS_H

#include "config.h"

/* Descriptors a worker needs beyond its clients: stdio, the fixed fds 3-6,
 * listeners and a few of its own. */
#define CORRAL_WORKER_SPARE_FDS 32

void corral_limits_check(const corral_config *config);

#endif
