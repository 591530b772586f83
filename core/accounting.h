/* SPDX-License-Identifier: MIT */
/*
 * accounting.h - how events change the counts a policy reads.
 *
 * corral_service_state and corral_process are kept by the host, and every
 * host keeps them the same way: corrald (service.c), the simulator
 * (tools/sim) and the policy tests' fake host.  These functions are that
 * one way.  They touch only the structures passed in: no clock, no I/O, no
 * GLib; the caller passes the time, logs and calls the policy.
 */
#ifndef CORRAL_ACCOUNTING_H
#define CORRAL_ACCOUNTING_H

#include <stdint.h>

#include <corral/policy.h>

/* A status record from `proc` saying `count` slots are free: the
 * process's count, clients served and idle time, and the service's
 * process_avail.  Returns the previous count, for status_changed. */
unsigned corral_account_status(corral_service_state *st, corral_process *proc, unsigned count,
                               uint64_t now_usec);

/* `proc` was reaped with `wait_status`: fills *exit for process_exited,
 * runs the storm rule's counters (a failure after the first status and
 * before any success counts; a success stops the rule) on whole seconds of
 * the host clock, and takes the process out of process_count and
 * process_avail. */
void corral_account_exit(corral_service_state *st, corral_process *proc, int wait_status,
                         uint64_t now_usec, corral_exit *exit);

#endif
