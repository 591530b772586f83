/* SPDX-License-Identifier: MIT */
/*
 * idle.h - idle processes, and asking one of them to leave.
 *
 * A policy asks an idle process to leave with SIGINT.  A worker obeys
 * only when it has no client; otherwise it ignores the signal and sends
 * no record (docs/protocol.md).  So a process counts as leaving from the
 * policy's SIGINT until its next status record: either it exits first, or
 * the record shows that it took a client or refused, and it stays.
 *
 * The policies that use this send no other signal with signal(), so
 * corral_process.last_kill_usec is the time of their last SIGINT.
 */
#ifndef CORRAL_POLICY_IDLE_H
#define CORRAL_POLICY_IDLE_H

#include <corral/policy.h>

bool idle_process_is_leaving(const corral_process *proc);

/* Every slot free, and a status record saying so. */
bool idle_process_is_idle(const corral_service_state *state, const corral_process *proc);

/* Processes with a free slot, those leaving not counted. */
unsigned idle_count_available(const corral_host *host, corral_service *svc);
unsigned idle_count_leaving(const corral_host *host, corral_service *svc);

/* Sends SIGINT to the process idle the longest that is not leaving yet
 * (the oldest on a tie).  False if there is none. */
bool idle_ask_longest_idle_to_leave(const corral_host *host, corral_service *svc);

#endif
