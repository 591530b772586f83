/* SPDX-License-Identifier: MIT */
/*
 * inetd.h - the master's side of worker_protocol = inetd.
 *
 * The master accepts each connection itself and starts one process for it
 * with the connection on fds 0 and 1 (and 2 unless inetd_stderr = log), as
 * xinetd does with wait = no.  It accepts while the service is below
 * process_limit, not throttled and not stopping.  At the limit it stops
 * accepting and, while the policy has the service listening, hands a
 * waiting client to the policy's listener_readable, which decides (the
 * dovecot policy warns and lets clients wait in the backlog).  Exits go to
 * the policy as usual, so its failure rules throttle the service, and a
 * throttle stops the accepting.  A spawn that fails (logged by the
 * service) closes its connection and pauses accepting for a second.
 *
 * Per-source limits as in xinetd: per_source caps the connections served
 * at once for one client address, cps pauses accepting for WAIT seconds
 * once more than RATE connections arrived within one second.  A refused
 * connection is closed at once and counted as dropped (corralctl status,
 * corral_service_connections_dropped_total); the log says so at most once
 * a second.
 */
#ifndef CORRAL_INETD_H
#define CORRAL_INETD_H

#include <stdbool.h>
#include <sys/types.h>

struct corral_service;
typedef struct corral_inetd corral_inetd;

corral_inetd *corral_inetd_new(struct corral_service *svc);
void corral_inetd_free(corral_inetd *inetd);

/* Switches accepting on or off from the service's counts, throttle, stop
 * and the policy's wish to listen.  Call after anything changes them. */
void corral_inetd_update(corral_inetd *inetd);

/* The policy's spawn(): accepts one waiting connection and starts a
 * process for it.  False when none waits, it is refused, or the spawn
 * fails. */
bool corral_inetd_spawn_one(corral_inetd *inetd);

/* A process of the service was reaped: its source's count goes down. */
void corral_inetd_process_exited(corral_inetd *inetd, pid_t pid);

#endif
