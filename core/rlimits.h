/* SPDX-License-Identifier: MIT */
/*
 * rlimits.h - checking the resource limits against what services may use.
 *
 * The process limit (RLIMIT_NPROC) must allow every service's
 * process_limit at once, and the descriptor limit (RLIMIT_NOFILE) must
 * allow corrald's own descriptors and, in the workers that inherit it,
 * client_limit connections in one process.
 * Soft limits are raised toward the hard ones (and hard ones too when
 * running as root); what still falls short is logged with the fix.
 */
#ifndef CORRAL_RLIMITS_H
#define CORRAL_RLIMITS_H

#include "config.h"

/* Descriptors a worker needs beyond its clients: stdio, the fixed fds 3-6,
 * listeners and a few of its own. */
#define CORRAL_WORKER_SPARE_FDS 32

/* The master's own descriptors: stdio, signalfd, GLib's wakeup, the pid
 * and log files, /dev/null and policy modules (base); per service its
 * status, master-dead and stderr pipes (both ends) and the login notify
 * file, plus its listeners; and the three operator sockets, each with up
 * to 64 clients, its listener and a spare. */
#define CORRAL_MASTER_BASE_FDS 32
#define CORRAL_SERVICE_FDS 7
#define CORRAL_OPERATOR_FDS (3 * (64 + 2))

/* Descriptors corrald may hold at once with `config`. */
guint64 corral_limits_master_fds(const corral_config *config);

void corral_limits_check(const corral_config *config);

#endif
